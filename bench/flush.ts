/**
 * Benchmark 2: flushing 1 KiB records to a server that acknowledges every record at once, next to
 * raw SDK `PutRecords` of the same 500-record batches to the same server, and to the same requests
 * sent from a cache file by hand (better-sqlite3 and the SDK, no library). Only the flushing is
 * timed: the cache is filled first.
 */
import * as path from "node:path"
import { PutRecordsCommand, KinesisClient as SdkClient } from "@aws-sdk/client-kinesis"
import type { ValidRecord } from "../src/RecordInput.js"
import { startAckServer } from "./ackServer.js"
import { flushUntilEmpty, measureClient, rawPutRecords, recordAll } from "./client.js"
import { sdkConfig } from "./kinesalite.js"
import { openRaw, prepareInsert } from "./rawSqlite.js"
import { best, type Line, type Measurement, makeRecords, printTable, tempDir, timed } from "./report.js"

/** The most bytes of record sizes in one `PutRecords` request. */
const maxRequestBytes = 10 * 1024 * 1024

/**
 * A durable flush written by hand: the records in a cache file of the library's layout, sent in
 * 500-record batches, each read (ids and sizes, then rows, as the library does to respect the
 * 10 MiB cap), sent with the SDK, then deleted. The least work any durable cache does per batch.
 */
const rawDurableFlush = async (endpoint: string, filename: string, records: ReadonlyArray<ValidRecord>) => {
  const db = await openRaw(filename)
  const sdk = new SdkClient(sdkConfig(endpoint))
  try {
    const insert = prepareInsert(db)
    db.transaction(() => {
      for (const record of records) insert(record, Date.now())
    })()
    const stream = records[0]!.streamName
    const sizes = db.prepare<[string], { id: number; size: number }>(
      "SELECT id, size FROM records WHERE stream_name = ? ORDER BY id LIMIT 500"
    )
    const rows = db.prepare<[string, number, number], { partition_key: string; data: Uint8Array }>(
      "SELECT partition_key, data FROM records WHERE stream_name = ? AND id <= ? ORDER BY id LIMIT ?"
    )
    const remove = db.prepare("DELETE FROM records WHERE stream_name = ? AND id BETWEEN ? AND ?")
    return await timed("raw durable flush: better-sqlite3 + SDK", records.length, async () => {
      for (;;) {
        let taken = 0
        let bytes = 0
        const candidates = sizes.all(stream)
        for (const { size } of candidates) {
          if (bytes + size > maxRequestBytes) break
          bytes += size
          taken++
        }
        if (taken === 0) return
        const lastId = candidates[taken - 1]!.id
        const batch = rows.all(stream, lastId, taken)
        const response = await sdk.send(
          new PutRecordsCommand({
            StreamName: stream,
            Records: batch.map((row) => ({ PartitionKey: row.partition_key, Data: row.data }))
          })
        )
        if ((response.FailedRecordCount ?? 0) > 0) throw new Error("PutRecords did not take every record")
        remove.run(stream, candidates[0]!.id, lastId)
      }
    })
  } finally {
    sdk.destroy()
    db.close()
  }
}

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
    await rawDurableFlush(server.endpoint, path.join(temp.dir, `${run++}`), warm)
    await flushRun(server.endpoint, path.join(temp.dir, `${run++}`), warm)
    const raw: Array<Measurement> = []
    const durable: Array<Measurement> = []
    const flushed: Array<Measurement> = []
    for (let round = 0; round < options.rounds; round++) {
      raw.push(await rawPutRecords("raw SDK PutRecords, 500 per call", server.endpoint, records))
      durable.push(await rawDurableFlush(server.endpoint, path.join(temp.dir, `${run++}`), records))
      flushed.push(await flushRun(server.endpoint, path.join(temp.dir, `${run++}`), records))
    }
    const lines: Array<Line> = [
      { kind: "baseline", run: best(raw) },
      { kind: "measured", run: best(durable), baseline: best(raw) },
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
