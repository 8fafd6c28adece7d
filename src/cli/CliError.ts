/**
 * The ways a command ends badly, each with its exit status, and the one line it prints.
 *
 * | status | meaning |
 * |---|---|
 * | 1 | not everything was delivered (records left in the cache, or dropped after their retries), or the cache failed |
 * | 2 | bad input or usage: an unreadable file, skipped lines, a malformed option or environment variable, a stream that does not exist, no credentials |
 * | 3 | another process holds the cache: nothing was read |
 * | 130 | interrupted (Ctrl-C): what was cached stays cached |
 *
 * @since 0.1.0
 */
import * as ValidationError from "@effect/cli/ValidationError"
import * as ConfigError from "effect/ConfigError"
import * as Data from "effect/Data"
import { isAmplifyKinesisException } from "../Errors.js"

/** Input the command can't take: a file it can't read, lines it skipped, options that don't go together. */
export class BadInput extends Data.TaggedError("BadInput")<{ readonly message: string }> {}

/** The command ended with records not delivered: still in the cache, or dropped after their last retry. */
export class NotDelivered extends Data.TaggedError("NotDelivered")<{ readonly message: string }> {}

/** Another process holds the cache: the command took no input and changed nothing. */
export class CacheInUse extends Data.TaggedError("CacheInUse")<{ readonly message: string }> {}

/** The exit status of a run that failed with `error`. */
export const exitStatus = (error: unknown): number => {
  if (error instanceof CacheInUse) return 3
  if (error instanceof BadInput || ValidationError.isValidationError(error)) return 2
  if (isAmplifyKinesisException(error) && error._tag === "KinesisValidationException") return 2
  if (ConfigError.isConfigError(error)) return 2
  return 1
}

/** The exit status of an interrupted run (the shell's convention for SIGINT). */
export const interruptedStatus = 130

/**
 * The line that tells the user what went wrong, or undefined when @effect/cli already printed it
 * (a malformed command line). A library error carries its cause.
 */
export const describe = (error: unknown): string | undefined => {
  if (ValidationError.isValidationError(error)) return undefined
  if (isAmplifyKinesisException(error)) {
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : ""
    return `${error.message}${cause}`
  }
  if (error instanceof Error) return error.message
  return String(error)
}
