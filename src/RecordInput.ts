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

/** Any UTF-16 surrogate, paired or not. */
const anySurrogate = /[\uD800-\uDFFF]/

/** The size a record counts for against the cache and batch limits. */
export const recordSize = (partitionKey: string, data: Uint8Array): number =>
  data.byteLength + Buffer.byteLength(partitionKey, "utf8")

const invalid = (message: string, recoverySuggestion: string) =>
  new KinesisValidationException({ message, recoverySuggestion })

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
 * Checks untrusted `record()` input against the Kinesis limits, copying nothing: the record's `data`
 * is the caller's own view, to be copied before the call returns.
 *
 * Gives `KinesisValidationException` when a field is missing or of the wrong type, the partition
 * key is empty, longer than 256 code points or not well-formed Unicode (a lone surrogate), the
 * stream name is not 1-128 characters of `[a-zA-Z0-9_.-]`, or data plus key exceed 10 MiB.
 */
export const check = (input: unknown): ValidRecord | KinesisValidationException => {
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
  // Without surrogates (most keys), code points are UTF-16 units and no half pair can be alone.
  const surrogates = anySurrogate.test(partitionKey)
  const keyLength = surrogates ? codePointCount(partitionKey) : partitionKey.length
  if (keyLength < 1 || keyLength > maxPartitionKeyCodePoints) {
    return invalid(
      `partitionKey must be 1 to ${maxPartitionKeyCodePoints} characters, got ${keyLength}`,
      "Shorten the partition key or hash it."
    )
  }
  if (surrogates && loneSurrogate.test(partitionKey)) {
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
  return { streamName, partitionKey, data, size }
}

/**
 * `check` as an effect, with the bytes copied: the caller may reuse or change its buffer as soon as
 * the record is handed over. For code that stores records directly in a `RecordStorage`.
 */
export const validate = (input: unknown): Effect.Effect<ValidRecord, KinesisValidationException> => {
  const checked = check(input)
  return checked instanceof KinesisValidationException
    ? Effect.fail(checked)
    : Effect.succeed({ ...checked, data: new Uint8Array(checked.data) })
}
