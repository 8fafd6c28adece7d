/**
 * Benchmark 2: flushing 1 KiB records to a server that acknowledges every record at once, next to
 * raw SDK `PutRecords` of the same 500-record batches to the same server. Only the flushing is
 * timed: the cache is filled first.
 */
import * as path from "node:path"
import { startAckServer } from "./ackServer.js"
import { flushUntilEmpty, measureClient, rawPutRecords, recordAll } from "./client.js"
import { best, type Line, type Measurement, makeRecords, printTable, tempDir } from "./report.js"

const flushRun = (endpoint: string, storagePath: string, records: ReturnType<typeof makeRecords>) =>
  measureClient("KinesisClient.flush until empty", endpoint, storagePath, records, {
    prepare: (client) => recordAll(client, records, 256),
    measure: flushUntilEmpty
  })

/** Runs benchmark 2 (each figure the best of `rounds`); returns whether its target was met. */
export const run = async (options: { readonly records: number; readonly rounds: number }): Promise<boolean> => {
  const server = await startAckServer()
  const temp = tempDir("effect-kinesis-bench-flush-")
  let run = 0
  try {
    const records = makeRecords(options.records, "bench")
    const warm = records.slice(0, 5_000)
    await rawPutRecords("warm-up", server.endpoint, warm)
    await flushRun(server.endpoint, path.join(temp.dir, `${run++}`), warm)
    const raw: Array<Measurement> = []
    const flushed: Array<Measurement> = []
    for (let round = 0; round < options.rounds; round++) {
      raw.push(await rawPutRecords("raw SDK PutRecords, 500 per call", server.endpoint, records))
      flushed.push(await flushRun(server.endpoint, path.join(temp.dir, `${run++}`), records))
    }
    const lines: Array<Line> = [
      { kind: "baseline", run: best(raw) },
      { kind: "measured", run: best(flushed), baseline: best(raw), target: 0.6 }
    ]
    return printTable(
      `2. Flush to an acknowledging server, 1 KiB records, 500 per call (best of ${options.rounds}; flushing only)`,
      lines
    )
  } finally {
    await server.close()
    temp.remove()
  }
}
