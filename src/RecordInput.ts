/**
 * What `record()` takes, and the checks it passes before anything is stored.
 *
 * @since 0.1.0
 */
import { Buffer } from "node:buffer"
import * as Effect from "effect/Effect"
import { KinesisValidationException } from "./Errors.js"

/** One record for one stream, as the caller hands it to `record()`. */
export interface RecordInput {
  readonly data: Uint8Array
  readonly partitionKey: string
  readonly streamName: string
}

/** A record that passed validation, with its size counted. */
export interface ValidRecord {
  readonly streamName: string
  readonly partitionKey: string
  readonly data: Uint8Array
  /** `data.byteLength` plus the UTF-8 byte length of the partition key. */
  readonly size: number
}

/** The largest record Kinesis takes: data plus partition key, 10 MiB. */
export const maxRecordBytes = 10 * 1024 * 1024

/** The longest partition key, in Unicode code points. */
export const maxPartitionKeyCodePoints = 256

/** Stream names: 1 to 128 characters of letters, digits, `_`, `.` and `-`. */
export const streamNamePattern = /^[a-zA-Z0-9_.-]{1,128}$/

/** Half of a surrogate pair on its own: not a Unicode character, and SQLite would store it as U+FFFD. */
const loneSurrogate = /\p{Cs}/u

/** The size a record counts for against the cache and batch limits. */
export const recordSize = (partitionKey: string, data: Uint8Array): number =>
  data.byteLength + Buffer.byteLength(partitionKey, "utf8")

const invalid = (message: string, recoverySuggestion: string) =>
  Effect.fail(new KinesisValidationException({ message, recoverySuggestion }))

/**
 * Whether the bytes' buffer was detached: a transferred ArrayBuffer can no longer be read (or
 * sliced). A view of a detached buffer has no bytes, so only an empty view needs the check.
 */
const isDetached = (data: Uint8Array): boolean => {
  if (data.byteLength > 0) return false
  try {
    data.buffer.slice(0, 0)
    return false
  } catch {
    return true
  }
}

const codePointCount = (s: string): number => {
  let count = 0
  for (const _ of s) count++
  return count
}

/**
 * Checks untrusted `record()` input against the Kinesis limits.
 *
 * Fails with `KinesisValidationException` when a field is missing or of the wrong type, the
 * partition key is empty, longer than 256 code points or not well-formed Unicode (a lone
 * surrogate), the stream name is not 1-128 characters of `[a-zA-Z0-9_.-]`, or data plus key exceed
 * 10 MiB.
 */
export const validate = (input: unknown): Effect.Effect<ValidRecord, KinesisValidationException> => {
  if (typeof input !== "object" || input === null) {
    return invalid("The record must be an object", "Pass { data, partitionKey, streamName }.")
  }
  const { data, partitionKey, streamName } = input as Record<string, unknown>
  if (!(data instanceof Uint8Array)) {
    return invalid("data must be a Uint8Array", "Encode the payload as bytes, e.g. new TextEncoder().encode(text).")
  }
  if (isDetached(data)) {
    return invalid(
      "data is a view of a detached ArrayBuffer (transferred or resized away): it holds no bytes to store",
      "Pass the bytes before transferring their buffer, or copy them first."
    )
  }
  if (typeof partitionKey !== "string") {
    return invalid("partitionKey must be a string", "Pass a partition key of 1 to 256 characters.")
  }
  if (typeof streamName !== "string") {
    return invalid("streamName must be a string", "Pass the name of the target Kinesis stream.")
  }
  const keyLength = codePointCount(partitionKey)
  if (keyLength < 1 || keyLength > maxPartitionKeyCodePoints) {
    return invalid(
      `partitionKey must be 1 to ${maxPartitionKeyCodePoints} characters, got ${keyLength}`,
      "Shorten the partition key or hash it."
    )
  }
  if (loneSurrogate.test(partitionKey)) {
    return invalid(
      "partitionKey must be well-formed Unicode: it contains a lone surrogate",
      "Check how the key is built; a string cut in the middle of an emoji leaves half of it behind."
    )
  }
  if (!streamNamePattern.test(streamName)) {
    return invalid(
      "streamName must be 1 to 128 characters of letters, digits, '_', '.' and '-'",
      "Check the stream name against the one in Kinesis."
    )
  }
  const size = recordSize(partitionKey, data)
  if (size > maxRecordBytes) {
    return invalid(
      `The record is ${size} bytes, over the limit of ${maxRecordBytes} (data plus partition key)`,
      "Split the payload into smaller records."
    )
  }
  // A copy: the caller may reuse or change its buffer as soon as `record()` is called.
  return Effect.succeed({ streamName, partitionKey, data: copyOf(data), size })
}

/** Records up to this size are copied into a shared slab; larger ones get a buffer of their own. */
const slabbedBytes = 4 * 1024

/** The size of a slab: room for 64 records of the largest slabbed size, or 256 of 1 KiB. */
const slabBytes = 64 * slabbedBytes

let slab = new Uint8Array(0)
let slabUsed = 0

/**
 * Copies the caller's bytes. Small records are copied side by side into slabs, so that recording
 * makes one allocation per slab rather than one per record: each `ArrayBuffer` costs an allocation
 * outside the JavaScript heap and work for the garbage collector. A slab is freed once no copy in it
 * is referenced any more.
 */
const copyOf = (data: Uint8Array): Uint8Array => {
  if (data.byteLength > slabbedBytes) return new Uint8Array(data)
  if (slabUsed + data.byteLength > slab.byteLength) {
    slab = new Uint8Array(slabBytes)
    slabUsed = 0
  }
  const copy = slab.subarray(slabUsed, slabUsed + data.byteLength)
  copy.set(data)
  slabUsed += data.byteLength
  return copy
}
