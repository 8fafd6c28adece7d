/**
 * Benchmark `eld`: how long the caller's event loop waits while the library records at a steady rate
 * and its automatic flush sends to an acknowledging server in a process of its own: 1 KiB records at
 * 10,000/s, and 1 MiB records (40 of them). Next to the same records sent by the SDK alone from
 * memory on the same schedule: what any producer that calls the SDK on this thread costs it. The
 * targets are on the median of the runs' maximum delay, and for 1 KiB records on the median p99.
 */
import { startAckServerProcess } from "./ackServer.js"
import { type Job, type RunResult, runIsolated } from "./jobs.js"
import { kib, mib } from "./records.js"
import { middle, printChecks, printRows } from "./report.js"

interface Load {
  readonly title: string
  readonly count: number
  readonly dataBytes: number
  readonly perSecond: number
  readonly intervalMs: number
  /** The target of the longest delay (median of the runs), ms. */
  readonly targetMs: number
  /** The target of the p99 delay (median of the runs), ms, if the line has one. */
  readonly p99TargetMs?: number
}

/** Runs the benchmark (`rounds` runs of each line); returns whether its targets were met. */
export const run = async (options: { readonly seconds: number; readonly rounds: number }): Promise<boolean> => {
  const loads: ReadonlyArray<Load> = [
    {
      title: `1 KiB records at 10,000/s for ${options.seconds} s`,
      count: 10_000 * options.seconds,
      dataBytes: kib,
      perSecond: 10_000,
      intervalMs: 20,
      targetMs: 15,
      p99TargetMs: 5
    },
    { title: "40 records of 1 MiB at 20/s", count: 40, dataBytes: mib, perSecond: 20, intervalMs: 20, targetMs: 15 }
  ]
  const server = await startAckServerProcess()
  let stream = 0
  try {
    let met = true
    for (const load of loads) {
      const runs: Record<"rawSdk" | "library", Array<RunResult & { readonly lost: number }>> = {
        rawSdk: [],
        library: []
      }
      for (let round = 0; round < options.rounds; round++) {
        for (const client of ["rawSdk", "library"] as const) {
          const name = `eld-${stream++}`
          const job: Job = { kind: "paced", client, endpoint: server.endpoint, stream: name, ...load }
          const result = await runIsolated(job)
          runs[client].push({ ...result, lost: load.count - (await server.count(name)).distinct })
        }
      }
      const row = (results: ReadonlyArray<RunResult & { readonly lost: number }>) => {
        const maxes = results.map((r) => r.eventLoopMaxMs)
        return [
          results[0]!.name,
          `${middle(maxes).toFixed(1)} ms`,
          maxes.map((m) => m.toFixed(1)).join(", "),
          `${middle(results.map((r) => r.eventLoopP99Ms)).toFixed(1)} ms`,
          `${middle(results.map((r) => r.seconds)).toFixed(2)} s`,
          `${Math.max(...results.map((r) => r.lost))}`
        ]
      }
      printRows(
        `eld. Event-loop delay of the caller's thread, ${load.title}, automatic flush every ${load.intervalMs} ms (${options.rounds} runs)`,
        ["name", "max (median)", "max of each run", "p99", "run", "lost"],
        [row(runs.rawSdk), row(runs.library)]
      )
      const max = middle(runs.library.map((r) => r.eventLoopMaxMs))
      const p99 = middle(runs.library.map((r) => r.eventLoopP99Ms))
      met =
        printChecks([
          {
            figure: "event-loop delay, max (median of the runs)",
            value: `${max.toFixed(1)} ms`,
            baseline: `SDK alone ${middle(runs.rawSdk.map((r) => r.eventLoopMaxMs)).toFixed(1)} ms`,
            target: `<= ${load.targetMs} ms`,
            pass: max <= load.targetMs
          },
          {
            figure: "event-loop delay, p99 (median of the runs)",
            value: `${p99.toFixed(1)} ms`,
            baseline: `SDK alone ${middle(runs.rawSdk.map((r) => r.eventLoopP99Ms)).toFixed(1)} ms`,
            target: load.p99TargetMs === undefined ? "" : `<= ${load.p99TargetMs} ms`,
            ...(load.p99TargetMs === undefined ? {} : { pass: p99 <= load.p99TargetMs })
          }
        ]) && met
    }
    return met
  } finally {
    await server.close()
  }
}
