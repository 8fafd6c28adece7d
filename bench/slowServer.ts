/**
 * Benchmark `slow`: end to end to an acknowledging server in a process of its own that answers each
 * request 25 ms after receiving it (a remote service's round trip). The library records 1 KiB
 * records with 64 calls in flight while its automatic flush (every 100 ms, `drain: true`) sends
 * them, until the server has acknowledged every one; with its default options (one batch of a
 * stream in flight) and with `requestsPerStream: 4`. Next to raw SDK `PutRecords` of 500-record
 * batches, one call in flight, to the same server. Each run has a process of its own.
 */
import { startAckServerProcess } from "./ackServer.js"
import { type CountedRun, type Job, type RunResult, runCounted } from "./jobs.js"
import { type Check, type Line, median, printChecks, printTable, rate } from "./report.js"

/** How long the server waits before it answers a request, ms. */
const delayMs = 25

/** Runs the benchmark; returns whether its targets were met. */
export const run = async (options: { readonly records: number; readonly rounds: number }): Promise<boolean> => {
  const server = await startAckServerProcess({ delayMs })
  let stream = 0
  const runOf = async (requestsPerStream: number | undefined | "rawSdk") => {
    const name = `slow-${stream++}`
    const job: Job =
      requestsPerStream === "rawSdk"
        ? { kind: "rawSdk", endpoint: server.endpoint, stream: name, count: options.records }
        : {
            kind: "autoFlush",
            endpoint: server.endpoint,
            stream: name,
            count: options.records,
            inFlight: 64,
            intervalMs: 100,
            ...(requestsPerStream === undefined ? {} : { requestsPerStream })
          }
    return runCounted(job, server.count)
  }
  try {
    type Run = CountedRun
    const raw: Array<Run> = []
    const byDefault: Array<Run> = []
    const fourPerStream: Array<Run> = []
    for (let round = 0; round < options.rounds; round++) {
      raw.push(await runOf("rawSdk"))
      byDefault.push(await runOf(undefined))
      fourPerStream.push(await runOf(4))
    }
    const rawMedian = median(raw)
    const shares = (runs: ReadonlyArray<RunResult>) => runs.map((r, i) => rate(r) / rate(raw[i]!))
    const lines: Array<Line> = [
      { kind: "baseline", run: rawMedian },
      { kind: "measured", run: median(byDefault), baseline: rawMedian, target: 0.9, runs: shares(byDefault) },
      { kind: "measured", run: median(fourPerStream), baseline: rawMedian, target: 2, runs: shares(fourPerStream) }
    ]
    const title = `slow. End to end to an acknowledging server that answers after ${delayMs} ms: ${options.records.toLocaleString("en-US")} records of 1 KiB (median of ${options.rounds})`
    const rateMet = printTable(title, lines)
    const lostCheck = (what: string, runs: ReadonlyArray<Run>): Check => {
      const lost = Math.max(...runs.map((r) => r.lost))
      return {
        figure: `records lost (most of any run), ${what}`,
        value: `${lost} (duplicates: ${Math.max(...runs.map((r) => r.duplicates))})`,
        baseline: "",
        target: "0",
        pass: lost === 0
      }
    }
    const checks = printChecks([
      lostCheck("default options", byDefault),
      lostCheck("requestsPerStream 4", fourPerStream)
    ])
    return rateMet && checks
  } finally {
    await server.close()
  }
}
