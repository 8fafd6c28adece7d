/**
 * The records the benchmarks send, made one at a time as they are needed (a million of them never
 * sit in memory at once). Every record's data starts with its index, so the acknowledging server
 * can count distinct records and tell a lost record from a duplicate.
 */
import { randomBytes } from "node:crypto"

/** A record as a caller passes it to `record()`. */
export interface BenchRecord {
  readonly streamName: string
  readonly partitionKey: string
  readonly data: Uint8Array
}

/** The size of a benchmark record's data unless a line says otherwise: 1 KiB. */
export const kib = 1024

/** 1 MiB. */
export const mib = 1024 * 1024

const keys = Array.from({ length: 1000 }, (_, i) => `key-${i}`)

/**
 * A source of `count` records of `dataBytes` bytes for `streamName`: `at(i)` makes record `i` (a new
 * copy of one of 16 random payloads, with `i` in its first 4 bytes, big-endian).
 */
export const recordSource = (streamName: string, count: number, dataBytes = kib) => {
  const payloads = Array.from({ length: 16 }, () => new Uint8Array(randomBytes(dataBytes)))
  return {
    count,
    at: (i: number): BenchRecord => {
      const data = payloads[i % payloads.length]!.slice()
      new DataView(data.buffer, data.byteOffset, data.byteLength).setUint32(0, i)
      return { streamName, partitionKey: keys[i % keys.length]!, data }
    }
  }
}

/** A source of records, as `recordSource` makes them. */
export type RecordSource = ReturnType<typeof recordSource>

/** The index a record of `recordSource` carries, read from its data. */
export const recordIndex = (data: Uint8Array): number =>
  new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0)
