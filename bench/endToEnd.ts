/**
 * Benchmark 3: end to end to kinesalite. The library records 1 KiB records (256 callers at once)
 * while a flush loop sends them, until every record is recorded and the cache is empty; next to raw
 * SDK `PutRecords` of the same 500-record batches. Kinesalite runs in a child process, as a remote
 * Kinesis would, a fresh one for each measurement.
 */
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { measureClient, rawPutRecords, recordAll } from "./client.js"
import { startKinesalite } from "./kinesalite.js"
import { type Line, type Measurement, makeRecords, median, printTable, tempDir } from "./report.js"

const endToEnd = (endpoint: string, storagePath: string, records: ReturnType<typeof makeRecords>) =>
  measureClient("record (256 callers) + flush until empty", endpoint, storagePath, records, {
    measure: (client) =>
      Effect.gen(function* () {
        const producer = yield* Effect.fork(recordAll(client, records, 256))
        let flushed = 0
        for (;;) {
          const { recordsFlushed } = yield* client.flush()
          flushed += recordsFlushed
          if (recordsFlushed > 0) continue
          if (flushed >= records.length) break
          // Nothing cached right now: let the producer run
          yield* Effect.sleep("1 millis")
        }
        yield* Fiber.join(producer)
        return flushed
      })
  })

/**
 * Runs `measure` against a kinesalite of its own, started for it and warmed up first: every
 * measurement meets a server in the same state (kinesalite's LevelDB slows down as it fills).
 */
const onFreshServer = async (
  measure: (endpoint: string, streamName: string) => Promise<Measurement>
): Promise<Measurement> => {
  const server = await startKinesalite()
  try {
    await server.createStream("warm-up")
    await rawPutRecords("warm-up", server.endpoint, makeRecords(2_000, "warm-up"))
    await server.createStream("bench")
    return await measure(server.endpoint, "bench")
  } finally {
    await server.stop()
  }
}

/**
 * Runs benchmark 3; returns whether its target was met. Each figure is the median of `rounds` runs:
 * kinesalite's speed varies from run to run far more than the client's, so the fastest run of each
 * line says more about kinesalite's luck than about either client.
 */
export const run = async (options: { readonly records: number; readonly rounds: number }): Promise<boolean> => {
  const temp = tempDir("effect-kinesis-bench-e2e-")
  try {
    await onFreshServer((endpoint, stream) =>
      endToEnd(endpoint, path.join(temp.dir, "warm"), makeRecords(2_000, stream))
    )
    const raw: Array<Measurement> = []
    const library: Array<Measurement> = []
    for (let round = 0; round < options.rounds; round++) {
      raw.push(
        await onFreshServer((endpoint, stream) =>
          rawPutRecords("raw SDK PutRecords, 500 per call", endpoint, makeRecords(options.records, stream))
        )
      )
      library.push(
        await onFreshServer((endpoint, stream) =>
          endToEnd(endpoint, path.join(temp.dir, `${round}`), makeRecords(options.records, stream))
        )
      )
    }
    const lines: Array<Line> = [
      { kind: "baseline", run: median(raw) },
      { kind: "measured", run: median(library), baseline: median(raw), target: 0.9 }
    ]
    return printTable(`3. End to end to kinesalite, 1 KiB records (median of ${options.rounds})`, lines)
  } finally {
    temp.remove()
  }
}
