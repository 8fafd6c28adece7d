/**
 * A row of the records table read back, and whether it can be turned into a record.
 *
 * The schema declares the types of the columns, but SQLite stores what it is given: a file written
 * by another program, or by hand, can hold text where the bytes of a record should be. Such a row is
 * unreadable: the cache sets it aside (see `RecordStorage.batch`) rather than hand it out.
 *
 * @internal
 */

import type { StoredRecord } from "./RecordStorage.js"

/** A row of `statements.sizes`. The columns are `unknown` until checked. */
export interface SizeRow {
  readonly id: number
  readonly size: unknown
}

/** A row of `statements.rows`. The columns are `unknown` until checked. */
export interface RecordRow {
  readonly id: number
  readonly partition_key: unknown
  readonly data: unknown
  readonly size: unknown
  readonly retry_count: unknown
}

const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0

/** Whether a `size` column holds a size: a whole number of bytes. */
export const isSize = isCount

/** What SQLite handed back, by kind, never by value. */
const kindOf = (value: unknown): string =>
  value === null
    ? "null"
    : value instanceof Uint8Array
      ? "bytes"
      : typeof value === "string"
        ? "text"
        : typeof value === "number"
          ? "a number"
          : typeof value

/** What is wrong with a `size` column that is not a size. */
export const sizeProblem = (size: unknown): string => `size is ${kindOf(size)}, not a whole number of bytes`

/**
 * Why `row` can't be turned into a record, in words that name its columns and the kinds of value
 * found there (never the values themselves); undefined when it can.
 */
export const problemOf = (row: RecordRow): string | undefined => {
  if (!(row.data instanceof Uint8Array)) return `data is ${kindOf(row.data)}, not bytes`
  if (typeof row.partition_key !== "string") return `partition_key is ${kindOf(row.partition_key)}, not text`
  if (!isSize(row.size)) return sizeProblem(row.size)
  if (!isCount(row.retry_count)) return `retry_count is ${kindOf(row.retry_count)}, not a whole number`
  return undefined
}

/** The record of a row that `problemOf` found nothing wrong with. */
export const toRecord = (streamName: string, row: RecordRow): StoredRecord => ({
  id: row.id,
  streamName,
  partitionKey: row.partition_key as string,
  data: row.data as Uint8Array,
  size: row.size as number,
  retryCount: row.retry_count as number
})
