/**
 * better-sqlite3 on its own, on a cache file laid out by the library: the baselines' side of the
 * storage and flush benchmarks.
 */
import Sqlite from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Database from "../src/internal/database.js"
import type { ValidRecord } from "../src/RecordInput.js"

/** Opens a database file the way the library does (schema by its migrations), then closes it. */
const createSchema = (filename: string) => Effect.runPromise(Effect.scoped(Database.open(filename)))

/** A raw better-sqlite3 connection to a new cache file, with the pragmas of `database.ts`. */
export const openRaw = async (filename: string): Promise<Sqlite.Database> => {
  await createSchema(filename)
  const db = new Sqlite(filename)
  db.pragma("journal_mode = WAL")
  db.pragma("synchronous = NORMAL")
  db.pragma("locking_mode = EXCLUSIVE")
  return db
}

/** The library's INSERT of one record, as a prepared statement. */
export const prepareInsert = (db: Sqlite.Database) => {
  const statement = db.prepare(
    "INSERT INTO records (stream_name, partition_key, data, size, created_at) VALUES (?, ?, ?, ?, ?)"
  )
  return (record: ValidRecord, createdAt: number) =>
    statement.run(record.streamName, record.partitionKey, record.data, record.size, createdAt)
}
