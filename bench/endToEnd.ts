/**
 * Benchmark `e2e`: end to end to an acknowledging server in a process of its own. The library records
 * 1 KiB records with 64 calls in flight (each answered once its record is committed), then flushes
 * until the cache is empty; next to raw SDK `PutRecords` of 500-record batches, one call in flight,
 * to the same server, and to the same work done by hand on one thread (better-sqlite3 + SDK). Each
 * run has a process of its own: its peak RSS, CPU time, event-loop delay and the busy time of its
 * caller's thread (event-loop utilisation) are its own.
 */
import { startAckServerProcess } from "./ackServer.js"
import { type CountedRun, type Job, type RunResult, runCounted } from "./jobs.js"
import { type Check, type Line, mebibytes, median, middle, printChecks, printTable, rate } from "./report.js"

/** Runs the benchmark; returns whether its targets were met. */
export const run = async (options: { readonly records: number; readonly rounds: number }): Promise<boolean> => {
  const server = await startAckServerProcess()
  let stream = 0
  const runOf = async (kind: Job["kind"] & ("rawSdk" | "rawDurable" | "library")) => {
    const name = `e2e-${stream++}`
    const job: Extract<Job, { readonly kind: typeof kind }> =
      kind === "library"
        ? { kind, endpoint: server.endpoint, stream: name, count: options.records, inFlight: 64 }
        : { kind, endpoint: server.endpoint, stream: name, count: options.records }
    return runCounted(job, server.count)
  }
  try {
    const raw: Array<RunResult> = []
    const durable: Array<RunResult> = []
    const library: Array<CountedRun> = []
    for (let round = 0; round < options.rounds; round++) {
      raw.push(await runOf("rawSdk"))
      durable.push(await runOf("rawDurable"))
      library.push(await runOf("library"))
    }
    const rawMedian = median(raw)
    const shares = (runs: ReadonlyArray<RunResult>) => runs.map((r, i) => rate(r) / rate(raw[i]!))
    const lines: Array<Line> = [
      { kind: "baseline", run: rawMedian },
      { kind: "measured", run: median(durable), baseline: rawMedian, runs: shares(durable) },
      { kind: "measured", run: median(library), baseline: rawMedian, target: 0.33, runs: shares(library) }
    ]
    const title = `e2e. End to end to an acknowledging server in its own process: ${options.records.toLocaleString("en-US")} records of 1 KiB (median of ${options.rounds})`
    const rateMet = printTable(title, lines)

    const cpuPerRecord = (r: RunResult) => r.cpuMicros / r.records
    const rawCpu = middle(raw.map(cpuPerRecord))
    const libraryCpu = middle(library.map(cpuPerRecord))
    const cpuRatios = library.map((r, i) => cpuPerRecord(r) / cpuPerRecord(raw[i]!))
    // The caller's thread busy from the first record until the last is delivered, per delivered record
    const busyPerRecord = (r: RunResult) => (r.eluActiveMs * 1000) / r.records
    const busyRatios = library.map((r, i) => busyPerRecord(r) / busyPerRecord(raw[i]!))
    const busyRatio = middle(busyRatios)
    const peak = middle(library.map((r) => r.peakRssBytes))
    const lost = Math.max(...library.map((r) => r.lost))
    const checks: Array<Check> = [
      {
        figure: "peak RSS (median; range)",
        value: `${mebibytes(peak)} (${mebibytes(Math.min(...library.map((r) => r.peakRssBytes)))}-${mebibytes(Math.max(...library.map((r) => r.peakRssBytes)))})`,
        baseline: `raw SDK ${mebibytes(middle(raw.map((r) => r.peakRssBytes)))}, by hand ${mebibytes(middle(durable.map((r) => r.peakRssBytes)))}`,
        target: "<= 180 MiB",
        pass: peak <= 180 * 1024 * 1024
      },
      {
        figure: "CPU per delivered record, all threads",
        value: `${libraryCpu.toFixed(1)} µs = ${(libraryCpu / rawCpu).toFixed(2)}x (${cpuRatios.map((r) => r.toFixed(2)).join(", ")})`,
        baseline: `raw SDK ${rawCpu.toFixed(1)} µs, by hand ${middle(durable.map(cpuPerRecord)).toFixed(1)} µs`,
        target: "<= 4x",
        pass: libraryCpu / rawCpu <= 4
      },
      {
        figure: "caller's thread busy (ELU active) per delivered record",
        value: `${middle(library.map(busyPerRecord)).toFixed(1)} µs = ${busyRatio.toFixed(2)}x (${busyRatios.map((r) => r.toFixed(2)).join(", ")})`,
        baseline: `raw SDK ${middle(raw.map(busyPerRecord)).toFixed(1)} µs, by hand ${middle(durable.map(busyPerRecord)).toFixed(1)} µs`,
        target: "<= 0.3x",
        pass: busyRatio <= 0.3
      },
      {
        figure: "records lost (most of any run)",
        value: `${lost} (duplicates: ${Math.max(...library.map((r) => r.duplicates))})`,
        baseline: "",
        target: "0",
        pass: lost === 0
      },
      {
        figure: "record phase / whole run (median run)",
        value: `${median(library).recordSeconds.toFixed(2)} s / ${median(library).seconds.toFixed(2)} s`,
        baseline: `by hand ${median(durable).recordSeconds.toFixed(2)} s / ${median(durable).seconds.toFixed(2)} s`,
        target: ""
      },
      {
        figure: "event-loop delay, max (median)",
        value: `${middle(library.map((r) => r.eventLoopMaxMs)).toFixed(1)} ms`,
        baseline: `raw SDK ${middle(raw.map((r) => r.eventLoopMaxMs)).toFixed(1)} ms`,
        target: ""
      }
    ]
    return printChecks(checks) && rateMet
  } finally {
    await server.close()
  }
}
