/**
 * The error classes: real `Error`s with their class name as `_tag`, usable with `instanceof`, and
 * recognised by `isAmplifyKinesisException` (and nothing else is).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  ClientClosedException,
  isAmplifyKinesisException,
  KinesisLimitExceededException,
  KinesisStorageException,
  KinesisUnknownException,
  KinesisValidationException
} from "../src/Errors.js"

const classes = [
  KinesisValidationException,
  KinesisLimitExceededException,
  KinesisStorageException,
  KinesisUnknownException,
  ClientClosedException
] as const

describe("Errors", () => {
  for (const ErrorClass of classes) {
    it(`${ErrorClass.name} is an Error with its name as _tag, a message, a suggestion and a cause`, () => {
      const cause = new Error("underneath")
      const error = new ErrorClass({ message: "what happened", recoverySuggestion: "what to do", cause })
      expect(error).toBeInstanceOf(Error)
      expect(error).toBeInstanceOf(ErrorClass)
      expect(error._tag).toBe(ErrorClass.name)
      expect(error.name).toBe(ErrorClass.name)
      expect(error.message).toBe("what happened")
      expect(error.recoverySuggestion).toBe("what to do")
      expect(error.cause).toBe(cause)
      expect(isAmplifyKinesisException(error)).toBe(true)
    })
  }

  it.effect("each is yieldable as a typed failure", () =>
    Effect.gen(function* () {
      const failure = yield* Effect.flip(
        Effect.gen(function* () {
          return yield* new KinesisLimitExceededException({ message: "full" })
        })
      )
      expect(failure).toBeInstanceOf(KinesisLimitExceededException)
    })
  )

  it("isAmplifyKinesisException refuses look-alikes and other errors", () => {
    expect(isAmplifyKinesisException(new Error("plain"))).toBe(false)
    expect(isAmplifyKinesisException({ _tag: "KinesisStorageException", message: "not an Error" })).toBe(false)
    expect(isAmplifyKinesisException(Object.assign(new Error("tagged"), { _tag: "SqlError" }))).toBe(false)
    expect(isAmplifyKinesisException(null)).toBe(false)
  })
})
