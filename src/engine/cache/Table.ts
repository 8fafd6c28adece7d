/**
 * The records table: every SQL statement the cache runs on it, and the multi-row INSERTs a group
 * commit is written with.
 *
 * @internal
 */

import type { SqlError } from "@effect/sql/SqlError"
import type * as Effect from "effect/Effect"
import type { ValidRecord } from "../../RecordInput.js"

/** Runs one statement on the cache's connection and gives its rows. */
export type Run = <A extends object>(
  sql: string,
  params?: ReadonlyArray<unknown>
) => Effect.Effect<ReadonlyArray<A>, SqlError>

/** The statements of the cache, other than the INSERTs (see `inserts`). */
export const statements = {
  totals: "SELECT COUNT(*) AS records, COALESCE(SUM(size), 0) AS bytes FROM records",
  oldest: "SELECT created_at FROM records ORDER BY id LIMIT 1",
  // A skip scan over the index: one probe per stream rather than a pass over every record.
  streams: `WITH RECURSIVE next(name) AS (
      SELECT MIN(stream_name) FROM records
      UNION ALL
      SELECT (SELECT MIN(stream_name) FROM records WHERE stream_name > next.name) FROM next WHERE next.name IS NOT NULL
    )
    SELECT name FROM next WHERE name IS NOT NULL`,
  // Reads only the covering index (stream_name, id, size).
  sizes: "SELECT id, size FROM records WHERE stream_name = ? AND id > ? ORDER BY id LIMIT ?",
  rows: `SELECT id, partition_key, data, size, retry_count FROM records
    WHERE stream_name = ? AND id BETWEEN ? AND ? ORDER BY id`,
  deleteRange: "DELETE FROM records WHERE stream_name = ? AND id BETWEEN ? AND ? RETURNING size",
  deleteRangeExcept: `DELETE FROM records WHERE stream_name = ? AND id BETWEEN ? AND ?
    AND id NOT IN (SELECT value FROM json_each(?)) RETURNING size`,
  deleteIds: "DELETE FROM records WHERE id IN (SELECT value FROM json_each(?)) RETURNING size",
  idsInRange: "SELECT id FROM records WHERE stream_name = ? AND id BETWEEN ? AND ?",
  chargeRange: `UPDATE records SET retry_count = retry_count + 1
    WHERE stream_name = ? AND id BETWEEN ? AND ? AND id NOT IN (SELECT value FROM json_each(?))
    RETURNING id, retry_count`,
  chargeIds: `UPDATE records SET retry_count = retry_count + 1
    WHERE id IN (SELECT value FROM json_each(?)) RETURNING id, retry_count`,
  dropIds: "DELETE FROM records WHERE id IN (SELECT value FROM json_each(?)) RETURNING stream_name, size",
  // Ids grow with created_at, so the expired records are the lowest ids: a walk by id up to the
  // first record still fresh, then a delete of the id range below it. No index on created_at (every
  // insert would pay for it); `oldest` tells beforehand, in one probe, whether anything expired.
  expire: `DELETE FROM records WHERE id < COALESCE(
      (SELECT id FROM records WHERE created_at >= ? ORDER BY id LIMIT 1), 9223372036854775807)
    RETURNING id, stream_name, size`,
  clear: "DELETE FROM records",
  pages: `SELECT (SELECT freelist_count FROM pragma_freelist_count()) AS free,
    (SELECT page_count FROM pragma_page_count()) AS total`,
  // Each step of this statement gives one free page back; `run` steps a statement once.
  vacuumPage: "PRAGMA incremental_vacuum",
  vacuum: "VACUUM",
  checkpoint: "PRAGMA wal_checkpoint(TRUNCATE)"
} as const

/**
 * A group is written as multi-row INSERTs of these sizes (largest first), so that only a handful of
 * distinct statements exist and each stays in the prepared-statement cache.
 */
const chunkSizes = [256, 128, 64, 32, 16, 8, 4, 2, 1] as const

const columnsPerRow = 5

const insertStatements = new Map(
  chunkSizes.map((rows) => [
    rows,
    `INSERT INTO records (stream_name, partition_key, data, size, created_at) VALUES ${Array.from(
      { length: rows },
      () => "(?, ?, ?, ?, ?)"
    ).join(", ")}`
  ])
)

/** One multi-row INSERT: its statement and its bound values. */
export interface Insert {
  readonly sql: string
  readonly params: ReadonlyArray<unknown>
}

/** The INSERTs that write `records`, stored at `createdAt`, in order: the largest chunks first. */
export const inserts = (records: ReadonlyArray<ValidRecord>, createdAt: number): ReadonlyArray<Insert> => {
  const written: Array<Insert> = []
  let offset = 0
  for (const rows of chunkSizes) {
    while (records.length - offset >= rows) {
      const params: Array<unknown> = new Array(rows * columnsPerRow)
      for (let row = 0, at = 0; row < rows; row++) {
        const record = records[offset + row]!
        params[at++] = record.streamName
        params[at++] = record.partitionKey
        params[at++] = record.data
        params[at++] = record.size
        params[at++] = createdAt
      }
      written.push({ sql: insertStatements.get(rows)!, params })
      offset += rows
    }
  }
  return written
}
