/**
 * The baselines, written by hand with no library: better-sqlite3 on the cache's layout and pragmas,
 * the AWS SDK's `PutRecords`, and the two together as the least work a durable producer on one
 * thread does.
 */
import { PutRecordsCommand, type PutRecordsRequestEntry, KinesisClient as SdkClient } from "@aws-sdk/client-kinesis"
import Sqlite from "better-sqlite3"
import type { BenchRecord, RecordSource } from "./records.js"
import { sdkConfig } from "./sdk.js"

/**
 * A new cache file with the layout of effect-kinesis's cache (its `records` table and the covering
 * index on `(stream_name, id, size)`) and its pragmas: WAL, `synchronous = NORMAL`, an exclusive lock.
 */
export const openRaw = (filename: string): Sqlite.Database => {
  const db = new Sqlite(filename)
  db.pragma("journal_mode = WAL")
  db.pragma("synchronous = NORMAL")
  db.pragma("locking_mode = EXCLUSIVE")
  db.exec(`CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_name TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    data BLOB NOT NULL,
    size INTEGER NOT NULL,
    retry_count INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
  )`)
  db.exec("CREATE INDEX records_stream_id_size ON records (stream_name, id, size)")
  return db
}

/** One prepared `INSERT` of a record, as the cache stores it. */
export const prepareInsert = (db: Sqlite.Database) => {
  const statement = db.prepare(
    "INSERT INTO records (stream_name, partition_key, data, size, created_at) VALUES (?, ?, ?, ?, ?)"
  )
  return (record: BenchRecord, createdAt: number) =>
    statement.run(
      record.streamName,
      record.partitionKey,
      record.data,
      record.data.byteLength + Buffer.byteLength(record.partitionKey),
      createdAt
    )
}

/** Inserts records `from` to `to` of `source`, `perTransaction` in each transaction. */
export const rawInsert = (
  db: Sqlite.Database,
  source: RecordSource,
  perTransaction: number,
  from = 0,
  to = source.count
) => {
  const insert = prepareInsert(db)
  if (perTransaction === 1) {
    for (let i = from; i < to; i++) insert(source.at(i), Date.now())
    return
  }
  const insertMany = db.transaction((first: number, last: number) => {
    const now = Date.now()
    for (let i = first; i < last; i++) insert(source.at(i), now)
  })
  for (let i = from; i < to; i += perTransaction) insertMany(i, Math.min(to, i + perTransaction))
}

/** An SDK client for the server at `endpoint`: HTTP/1.1 with keep-alive, no retries. */
export const rawSdk = (endpoint: string) => new SdkClient(sdkConfig(endpoint))

/** One `PutRecords` call; throws unless the service took every record. */
export const putRecords = async (sdk: SdkClient, stream: string, entries: Array<PutRecordsRequestEntry>) => {
  const response = await sdk.send(new PutRecordsCommand({ StreamName: stream, Records: entries }))
  if ((response.FailedRecordCount ?? 0) > 0 || response.Records?.length !== entries.length) {
    throw new Error("PutRecords did not take every record")
  }
}

/** The most bytes of record sizes in one `PutRecords` request. */
const maxRequestBytes = 10 * 1024 * 1024

/**
 * Sends records `from` to `to` of `source` in `PutRecords` calls of at most 500 records and 10 MiB,
 * one call at a time.
 */
export const rawPutRecords = async (sdk: SdkClient, source: RecordSource, from = 0, to = source.count) => {
  let i = from
  while (i < to) {
    const entries: Array<PutRecordsRequestEntry> = []
    let bytes = 0
    for (; i < to && entries.length < 500; i++) {
      const record = source.at(i)
      const size = record.data.byteLength + Buffer.byteLength(record.partitionKey)
      if (entries.length > 0 && bytes + size > maxRequestBytes) break
      bytes += size
      entries.push({ PartitionKey: record.partitionKey, Data: record.data })
    }
    await putRecords(sdk, source.at(from).streamName, entries)
  }
}

/**
 * Sends a stream's cached records oldest first, as a durable flush does: per batch its ids and
 * sizes (to keep within 500 records and 10 MiB), then its rows, the request, then one ranged
 * `DELETE`. Returns how many records were sent.
 */
export const rawDurableFlush = async (db: Sqlite.Database, sdk: SdkClient, stream: string): Promise<number> => {
  const sizes = db.prepare<[string], { id: number; size: number }>(
    "SELECT id, size FROM records WHERE stream_name = ? ORDER BY id LIMIT 500"
  )
  const rows = db.prepare<[string, number, number], { partition_key: string; data: Uint8Array }>(
    "SELECT partition_key, data FROM records WHERE stream_name = ? AND id <= ? ORDER BY id LIMIT ?"
  )
  const remove = db.prepare("DELETE FROM records WHERE stream_name = ? AND id BETWEEN ? AND ?")
  let sent = 0
  for (;;) {
    let taken = 0
    let bytes = 0
    const candidates = sizes.all(stream)
    for (const { size } of candidates) {
      if (taken > 0 && bytes + size > maxRequestBytes) break
      bytes += size
      taken++
    }
    if (taken === 0) return sent
    const lastId = candidates[taken - 1]!.id
    const batch = rows.all(stream, lastId, taken)
    await putRecords(
      sdk,
      stream,
      batch.map((row) => ({ PartitionKey: row.partition_key, Data: row.data }))
    )
    remove.run(stream, candidates[0]!.id, lastId)
    sent += taken
  }
}
