/**
 * Benchmark 3: end to end to kinesalite. The library records 1 KiB records (256 callers at once)
 * while a flush loop sends them, until every record is recorded and the cache is empty; next to raw
 * SDK `PutRecords` of the same 500-record batches to the same server. Kinesalite runs in a child
 * process, as a remote Kinesis would.
 */
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { measureClient, rawPutRecords, recordAll } from "./client.js"
import { startKinesalite } from "./kinesalite.js"
import { best, type Line, type Measurement, makeRecords, printTable, tempDir } from "./report.js"

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

/** Runs benchmark 3 (each figure the best of `rounds`); returns whether its target was met. */
export const run = async (options: { readonly records: number; readonly rounds: number }): Promise<boolean> => {
  const server = await startKinesalite()
  const temp = tempDir("effect-kinesis-bench-e2e-")
  let stream = 0
  try {
    const fresh = async () => {
      const name = `bench-${stream++}`
      await server.createStream(name)
      return name
    }
    const warm = makeRecords(2_000, await fresh())
    await rawPutRecords("warm-up", server.endpoint, warm)
    await endToEnd(server.endpoint, path.join(temp.dir, "warm"), makeRecords(2_000, await fresh()))
    const raw: Array<Measurement> = []
    const library: Array<Measurement> = []
    for (let round = 0; round < options.rounds; round++) {
      raw.push(
        await rawPutRecords(
          "raw SDK PutRecords, 500 per call",
          server.endpoint,
          makeRecords(options.records, await fresh())
        )
      )
      library.push(
        await endToEnd(server.endpoint, path.join(temp.dir, `${round}`), makeRecords(options.records, await fresh()))
      )
    }
    const lines: Array<Line> = [
      { kind: "baseline", run: best(raw) },
      { kind: "measured", run: best(library), baseline: best(raw), target: 0.9 }
    ]
    return printTable(`3. End to end to kinesalite, 1 KiB records (best of ${options.rounds})`, lines)
  } finally {
    await server.stop()
    temp.remove()
  }
}
