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

/** The local database failed: it can't be opened, is owned by another client, the disk is full or the file is corrupt. */
export class KinesisStorageException extends Data.TaggedError("KinesisStorageException")<ErrorFields> {}

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
