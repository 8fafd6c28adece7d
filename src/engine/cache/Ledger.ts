/**
 * The actor's account of the table: how many records and bytes it holds, the cache limit checked
 * against them, and the delivered records whose delete failed. Only the actor changes it, right
 * after the statement that changed the table, so it matches the table without asking it.
 *
 * @internal
 */

import { KinesisLimitExceededException } from "../../Errors.js"
import type { DroppedRecords } from "./RecordStorage.js"

/** How many records the table holds and the sum of their sizes. */
export interface Totals {
  readonly records: number
  readonly bytes: number
}

/**
 * A size as a number. A size column that holds something else counts as 0, as it does in
 * `statements.totals` (SQLite's SUM).
 */
const sizeOf = (size: unknown): number => (typeof size === "number" && Number.isFinite(size) ? size : 0)

/** The sum of the sizes of `rows`. */
const sumSizes = (rows: ReadonlyArray<{ readonly size: unknown }>): number =>
  rows.reduce<number>((total, row) => total + sizeOf(row.size), 0)

/** The counts, the cache limit and the undeleted records of one cache. */
export class Ledger {
  /** Records in the table. */
  records: number
  /** The sum of their sizes: what the cache limit is checked against. */
  bytes: number
  /** Records the service accepted whose delete failed: never sent again, deleted when the database allows. */
  undeleted = new Set<number>()

  constructor(
    /** The most bytes of record sizes the cache may hold. */
    readonly cacheMaxBytes: number,
    totals: Totals | undefined
  ) {
    this.records = totals?.records ?? 0
    this.bytes = totals?.bytes ?? 0
  }

  /**
   * Splits a group, in order, into the records that fit under the limit together with what the
   * cache holds, and those that don't. Changes no count: `added` does once the rows are written.
   */
  admit<A extends { readonly record: { readonly size: number } }>(
    group: ReadonlyArray<A>
  ): { readonly accepted: ReadonlyArray<A>; readonly refused: ReadonlyArray<A> } {
    const accepted: Array<A> = []
    const refused: Array<A> = []
    let budget = this.cacheMaxBytes - this.bytes
    for (const item of group) {
      if (item.record.size <= budget) {
        accepted.push(item)
        budget -= item.record.size
      } else {
        refused.push(item)
      }
    }
    return { accepted, refused }
  }

  /** The error for a record of `size` bytes that does not fit. */
  limitExceeded(size: number): KinesisLimitExceededException {
    return new KinesisLimitExceededException({
      message: `The cache holds ${this.bytes} of ${this.cacheMaxBytes} bytes; a record of ${size} bytes does not fit`,
      recoverySuggestion: "Call flush() or clearCache() to make room, or raise cacheMaxBytes."
    })
  }

  /** Counts rows written. */
  added(rows: ReadonlyArray<{ readonly size: number }>): void {
    this.records += rows.length
    this.bytes += sumSizes(rows)
  }

  /** Counts rows deleted (as `RETURNING size` gave them). */
  removed(rows: ReadonlyArray<{ readonly size: unknown }>): void {
    this.records -= rows.length
    this.bytes -= sumSizes(rows)
  }

  /** The table was emptied. */
  cleared(): void {
    this.records = 0
    this.bytes = 0
    this.undeleted = new Set()
  }

  /** Takes the counts from the table again (after a defect, when they may no longer match it). */
  reset(totals: Totals | undefined): void {
    this.records = totals?.records ?? 0
    this.bytes = totals?.bytes ?? 0
  }
}

/** Deleted rows counted by stream. */
export const droppedOf = (rows: ReadonlyArray<{ readonly stream_name: string }>): DroppedRecords => {
  const byStream = new Map<string, number>()
  for (const { stream_name } of rows) byStream.set(stream_name, (byStream.get(stream_name) ?? 0) + 1)
  return { count: rows.length, byStream }
}
