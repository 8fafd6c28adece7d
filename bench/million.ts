/**
 * Benchmark `million`: a million records of 1 KiB recorded into the cache (64 calls in flight, no
 * automatic flush, `cacheMaxBytes` large enough), then flushed until empty, to an acknowledging
 * server in a process of its own. Reports the growth of the resident set over the run, the time of
 * each phase and the size of the cache's files at the end; next to the same done by hand on one
 * thread (better-sqlite3 500 per transaction, then the durable flush). Also the RSS at rest: an
 * open client that sent one record (delivered) after a pause of `settleMs`, next to an SDK client
 * that sent one record; each in a process of its own.
 */
import { startAckServerProcess } from "./ackServer.js"
import { type Job, type RunResult, runIsolated } from "./jobs.js"
import { mebibytes, printChecks, printRows } from "./report.js"

/** How long a client at rest waits after its record is delivered before its RSS is read, ms. */
const settleMs = 2_000

/** Runs the benchmark; returns whether its target was met. */
export const run = async (options: { readonly records: number }): Promise<boolean> => {
  const server = await startAckServerProcess()
  try {
    const atRest = async (client: "rawSdk" | "library") => {
      const stream = `million-rest-${client}`
      const result = await runIsolated({ kind: "rest", client, endpoint: server.endpoint, stream, settleMs })
      return { rss: result.endRssBytes, delivered: (await server.count(stream)).distinct === 1 }
    }
    const rawAtRest = await atRest("rawSdk")
    const libraryAtRest = await atRest("library")
    const measured = async (kind: "rawDurable" | "library", stream: string) => {
      const job: Job =
        kind === "library"
          ? { kind, endpoint: server.endpoint, stream, count: options.records, inFlight: 64 }
          : { kind, endpoint: server.endpoint, stream, count: options.records }
      const result = await runIsolated(job)
      const received = await server.count(stream)
      return {
        ...result,
        lost: options.records - received.distinct,
        duplicates: received.acknowledged - received.distinct
      }
    }
    const byHand = await measured("rawDurable", "million-by-hand")
    const library = await measured("library", "million")
    const growth = (r: RunResult) => r.peakRssBytes - r.startRssBytes
    const row = (r: RunResult & { readonly lost: number; readonly duplicates: number }) => [
      r.name,
      `${r.recordSeconds.toFixed(1)} s`,
      `${(r.seconds - r.recordSeconds).toFixed(1)} s`,
      mebibytes(growth(r)),
      mebibytes(r.peakRssBytes),
      mebibytes(r.cacheBytes),
      `${r.eventLoopMaxMs.toFixed(0)} ms`,
      `${r.lost} / ${r.duplicates}`
    ]
    printRows(
      `million. ${options.records.toLocaleString("en-US")} records of 1 KiB recorded into the cache, then flushed until empty`,
      ["name", "record", "flush", "RSS growth", "peak RSS", "cache files at end", "event loop max", "lost / dup"],
      [row(byHand), row(library)]
    )
    return printChecks([
      {
        figure: "RSS growth (peak - at start)",
        value: mebibytes(growth(library)),
        baseline: `by hand ${mebibytes(growth(byHand))}`,
        target: "<= 100 MiB",
        pass: growth(library) <= 100 * 1024 * 1024
      },
      {
        figure: "records lost",
        value: `${library.lost}`,
        baseline: "",
        target: "0",
        pass: library.lost === 0
      },
      {
        figure: `RSS at rest: open client, one record delivered, after ${settleMs / 1000} s`,
        value: `${mebibytes(libraryAtRest.rss)}${libraryAtRest.delivered ? "" : " (not delivered)"}`,
        baseline: `raw SDK ${mebibytes(rawAtRest.rss)}`,
        target: "<= 140 MiB",
        pass: libraryAtRest.delivered && libraryAtRest.rss <= 140 * 1024 * 1024
      }
    ])
  } finally {
    await server.close()
  }
}
