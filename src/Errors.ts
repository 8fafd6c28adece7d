/**
 * The typed failures of effect-kinesis: one class per failure mode.
 *
 * Every class is a real `Error` subclass (`instanceof` works), carries a `_tag` equal to its class
 * name, a `message`, an optional `recoverySuggestion` and, where one exists, the underlying `cause`.
 * Each is yieldable inside `Effect.gen`: `return yield* new KinesisValidationException({ message })`.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/** The fields every effect-kinesis error carries. */
export interface ErrorFields {
  readonly message: string
  readonly recoverySuggestion?: string
  readonly cause?: unknown
}

/** The input of `record()` breaks a limit: oversized record, bad partition key or stream name, data that is not bytes. */
export class KinesisValidationException extends Data.TaggedError("KinesisValidationException")<ErrorFields> {}

/** The record would push the local cache over `cacheMaxBytes`. Flush or clear the cache to make room. */
export class KinesisLimitExceededException extends Data.TaggedError("KinesisLimitExceededException")<ErrorFields> {}

/**
 * The local database failed: it can't be opened, is owned by another client (`inUse: true`), the
 * disk is full or the file is corrupt.
 */
export class KinesisStorageException extends Data.TaggedError("KinesisStorageException")<
  ErrorFields & {
    /** Set when another open client owns the cache file. */
    readonly inUse?: boolean
  }
> {}

/** Anything else, such as the network being down or credentials that can't be resolved. */
export class KinesisUnknownException extends Data.TaggedError("KinesisUnknownException")<ErrorFields> {}

/** The client was closed and can't be used any more. */
export class ClientClosedException extends Data.TaggedError("ClientClosedException")<ErrorFields> {}

/** Every failure an effect-kinesis operation can report. */
export type AmplifyKinesisException =
  | KinesisValidationException
  | KinesisLimitExceededException
  | KinesisStorageException
  | KinesisUnknownException
  | ClientClosedException

const tags: ReadonlySet<string> = new Set([
  "KinesisValidationException",
  "KinesisLimitExceededException",
  "KinesisStorageException",
  "KinesisUnknownException",
  "ClientClosedException"
])

/** Whether a value is one of the effect-kinesis error classes. */
export const isAmplifyKinesisException = (u: unknown): u is AmplifyKinesisException =>
  u instanceof Error && "_tag" in u && typeof u._tag === "string" && tags.has(u._tag)

/**
 * An error as it crosses between threads: its class by tag, message, recovery suggestion, a
 * description of its cause, and whether the cache file was in use.
 */
export interface WireError {
  readonly _tag: AmplifyKinesisException["_tag"]
  readonly message: string
  readonly recoverySuggestion?: string
  readonly cause?: string
  readonly inUse?: true
}

/**
 * A short description of a cause: its name and message for an `Error`, then those of the errors
 * behind it (a driver's error behind a SQL error), its text otherwise.
 */
const describe = (cause: unknown, depth = 0): string => {
  if (!(cause instanceof Error)) return typeof cause === "string" ? cause : String(cause)
  const own = `${cause.name}: ${cause.message}`.trim()
  return cause.cause === undefined || depth >= 3 ? own : `${own} (${describe(cause.cause, depth + 1)})`
}

/**
 * The wire form of an error; anything that is not an effect-kinesis error (a defect) becomes a
 * `KinesisUnknownException`, as it does in the Promise facade.
 */
export const toWire = (error: unknown): WireError => {
  if (!isAmplifyKinesisException(error)) {
    return { _tag: "KinesisUnknownException", message: `The engine failed: ${describe(error)}`, cause: describe(error) }
  }
  return {
    _tag: error._tag,
    message: error.message,
    ...(error.recoverySuggestion === undefined ? {} : { recoverySuggestion: error.recoverySuggestion }),
    ...(error.cause === undefined ? {} : { cause: describe(error.cause) }),
    ...(error._tag === "KinesisStorageException" && error.inUse ? { inUse: true as const } : {})
  }
}

const classes = {
  KinesisValidationException,
  KinesisLimitExceededException,
  KinesisStorageException,
  KinesisUnknownException,
  ClientClosedException
} as const

/** The error a wire form stands for, of the same class; its `cause` is the description that crossed. */
export const fromWire = (wire: WireError): AmplifyKinesisException => {
  const { _tag, ...fields } = wire
  return new classes[_tag](fields)
}
