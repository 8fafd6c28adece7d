/**
 * What the caller's thread and the cache worker say to each other, and how records travel between
 * them: packed into one `ArrayBuffer` per group, which is transferred (moved, not copied).
 *
 * @internal
 */
import type { ErrorFields } from "../Errors.js"
import type { BatchAnswer, BatchLimits, StoredRecord } from "../engine/cache/RecordStorage.js"
import type { ValidRecord } from "../RecordInput.js"

/** Where the worker opens the cache. */
export interface WorkerOptions {
  readonly filename: string
  readonly cacheMaxBytes: number
}

/** A request to the worker. `id` pairs it with its reply. */
export type Request =
  | { readonly _tag: "Insert"; readonly id: number; readonly records: ArrayBuffer }
  | { readonly _tag: "Streams"; readonly id: number }
  | { readonly _tag: "Batch"; readonly id: number; readonly streamName: string; readonly limits: BatchLimits }
  | { readonly _tag: "Settle"; readonly id: number; readonly answer: BatchAnswer; readonly maxAttempts: number }
  | { readonly _tag: "Expire"; readonly id: number; readonly olderThan: number }
  | { readonly _tag: "Clear"; readonly id: number }
  | { readonly _tag: "Status"; readonly id: number }
  | { readonly _tag: "Close"; readonly id: number }

/** An effect-kinesis error as it crosses the thread boundary (errors are rebuilt on the other side). */
export interface ErrorMessage extends ErrorFields {
  readonly _tag: "KinesisLimitExceededException" | "KinesisStorageException"
}

/** One insert that failed, by its place in the group. */
export interface InsertFailure {
  readonly index: number
  readonly error: ErrorMessage
}

/** A message from the worker. */
export type Reply =
  | { readonly _tag: "Ready" }
  | { readonly _tag: "OpenFailed"; readonly error: ErrorMessage }
  | { readonly _tag: "Inserted"; readonly id: number; readonly failures: ReadonlyArray<InsertFailure> }
  | { readonly _tag: "Batch"; readonly id: number; readonly streamName: string; readonly records: ArrayBuffer }
  | { readonly _tag: "Done"; readonly id: number; readonly value: unknown }
  | { readonly _tag: "Failed"; readonly id: number; readonly error: ErrorMessage }

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Bytes of the fixed part of a packed insert: stream name, partition key and data lengths. */
const insertHeader = 12

/**
 * Packs validated records into one buffer. Each record: three 32-bit lengths (stream name, partition
 * key, data), then their bytes. Stream names are ASCII and `size` is data plus the key's UTF-8 bytes,
 * so the buffer is sized exactly before anything is encoded.
 */
export const packInserts = (records: ReadonlyArray<ValidRecord>): ArrayBuffer => {
  let total = 0
  for (const record of records) total += insertHeader + record.streamName.length + record.size
  const buffer = new ArrayBuffer(total)
  const view = new DataView(buffer)
  const bytes = new Uint8Array(buffer)
  let at = 0
  for (const record of records) {
    const keyBytes = record.size - record.data.byteLength
    view.setUint32(at, record.streamName.length, true)
    view.setUint32(at + 4, keyBytes, true)
    view.setUint32(at + 8, record.data.byteLength, true)
    at += insertHeader
    at += encoder.encodeInto(record.streamName, bytes.subarray(at)).written
    at += encoder.encodeInto(record.partitionKey, bytes.subarray(at, at + keyBytes)).written
    bytes.set(record.data, at)
    at += record.data.byteLength
  }
  return buffer
}

/** The records of a packed buffer; their data are views of it. */
export const unpackInserts = (buffer: ArrayBuffer): ReadonlyArray<ValidRecord> => {
  const view = new DataView(buffer)
  const records: Array<ValidRecord> = []
  for (let at = 0; at < buffer.byteLength; ) {
    const streamBytes = view.getUint32(at, true)
    const keyBytes = view.getUint32(at + 4, true)
    const dataBytes = view.getUint32(at + 8, true)
    at += insertHeader
    const streamName = decoder.decode(new Uint8Array(buffer, at, streamBytes))
    at += streamBytes
    const partitionKey = decoder.decode(new Uint8Array(buffer, at, keyBytes))
    at += keyBytes
    records.push({ streamName, partitionKey, data: new Uint8Array(buffer, at, dataBytes), size: keyBytes + dataBytes })
    at += dataBytes
  }
  return records
}

/** Bytes of the fixed part of a packed stored record: id, size, retry count, key and data lengths. */
const storedHeader = 24

/** Packs a batch read from the cache (one stream) into one buffer: fixed fields, key, data. */
export const packBatch = (records: ReadonlyArray<StoredRecord>): ArrayBuffer => {
  const keys = records.map((record) => encoder.encode(record.partitionKey))
  let total = 0
  for (const [i, record] of records.entries()) total += storedHeader + keys[i]!.byteLength + record.data.byteLength
  const buffer = new ArrayBuffer(total)
  const view = new DataView(buffer)
  const bytes = new Uint8Array(buffer)
  let at = 0
  for (const [i, record] of records.entries()) {
    const key = keys[i]!
    view.setFloat64(at, record.id, true)
    view.setUint32(at + 8, record.size, true)
    view.setUint32(at + 12, record.retryCount, true)
    view.setUint32(at + 16, key.byteLength, true)
    view.setUint32(at + 20, record.data.byteLength, true)
    at += storedHeader
    bytes.set(key, at)
    at += key.byteLength
    bytes.set(record.data, at)
    at += record.data.byteLength
  }
  return buffer
}

/** The records of a packed batch of `streamName`; their data are views of the buffer. */
export const unpackBatch = (streamName: string, buffer: ArrayBuffer): ReadonlyArray<StoredRecord> => {
  const view = new DataView(buffer)
  const records: Array<StoredRecord> = []
  for (let at = 0; at < buffer.byteLength; ) {
    const id = view.getFloat64(at, true)
    const size = view.getUint32(at + 8, true)
    const retryCount = view.getUint32(at + 12, true)
    const keyBytes = view.getUint32(at + 16, true)
    const dataBytes = view.getUint32(at + 20, true)
    at += storedHeader
    const partitionKey = decoder.decode(new Uint8Array(buffer, at, keyBytes))
    at += keyBytes
    records.push({ id, streamName, partitionKey, data: new Uint8Array(buffer, at, dataBytes), size, retryCount })
    at += dataBytes
  }
  return records
}
