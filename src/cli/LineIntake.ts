/**
 * How `put` takes the lines of an input into the cache: a chunk of input at a time, each line checked
 * in order, the good ones committed together (the cache commits them in one transaction, in order),
 * and only then the next chunk read. A line that can't be a record is skipped and reported, or with
 * `strict` ends the input after the lines before it are committed.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type { AmplifyKinesisException } from "../Errors.js"
import type { KinesisClient } from "../KinesisClient.js"
import * as RecordInput from "../RecordInput.js"
import { BadInput, NotDelivered } from "./CliError.js"
import * as Durations from "./Durations.js"
import * as Format from "./Format.js"
import type * as Inputs from "./Inputs.js"
import * as LineSplitter from "./LineSplitter.js"
import * as PartitionKeys from "./PartitionKeys.js"

/** The most lines committed at once. */
export const groupSize = 256

/** The pause between tries to commit a line while the cache is full. */
const fullCacheRetry = Duration.millis(50)

/** What the intake needs: where records go, how they are keyed, and whom to tell. */
export interface IntakeSettings {
  readonly client: KinesisClient
  readonly stream: string
  readonly keys: PartitionKeys.KeySource
  readonly strict: boolean
  /** How long a line may wait for room while the cache is full before the input is given up. */
  readonly fullCacheWait: Duration.Duration
  /** A line was skipped; `where` is `name:line`. */
  readonly skipped: (where: string, reason: string) => Effect.Effect<void>
  /** A group was taken: `read` lines, `cached` of them committed. */
  readonly taken: (read: number, cached: number) => Effect.Effect<void>
}

/** Why the intake stopped early. */
export type IntakeError = BadInput | NotDelivered | AmplifyKinesisException

interface Pending {
  readonly where: string
  readonly record: RecordInput.RecordInput
}

const limit = Format.bytes(RecordInput.maxRecordBytes)

/** The record a line makes, or why it can't make one. */
const recordOf = (
  settings: IntakeSettings,
  line: LineSplitter.Line
): Effect.Effect<Either.Either<RecordInput.RecordInput, string>> => {
  if (line._tag === "Oversized") {
    return Effect.succeed(Either.left(`${Format.count(line.byteLength)} bytes, over the record limit of ${limit}`))
  }
  const key = PartitionKeys.keyOf(settings.keys, line.bytes)
  if (Either.isLeft(key)) return Effect.succeed(Either.left(key.left))
  const size = RecordInput.recordSize(key.right, line.bytes)
  if (size > RecordInput.maxRecordBytes) {
    return Effect.succeed(Either.left(`${Format.count(size)} bytes with its key, over the record limit of ${limit}`))
  }
  const record = { data: line.bytes, partitionKey: key.right, streamName: settings.stream }
  if (settings.keys._tag !== "Field") return Effect.succeed(Either.right(record))
  // A key taken from the line may still be too long or malformed: checked with a byte of data, not the line.
  return RecordInput.validate({ ...record, data: new Uint8Array(1) }).pipe(
    Effect.match({ onFailure: (error) => Either.left(error.message), onSuccess: () => Either.right(record) })
  )
}

/** Commits one record, waiting for room while the cache is full, at most `fullCacheWait`. */
const commitWhenRoom = (settings: IntakeSettings, pending: Pending) =>
  settings.client.record(pending.record).pipe(
    Effect.retry({
      while: (error) => error._tag === "KinesisLimitExceededException",
      schedule: Schedule.spaced(fullCacheRetry).pipe(Schedule.upTo(settings.fullCacheWait))
    }),
    Effect.catchTag(
      "KinesisLimitExceededException",
      (error) =>
        new NotDelivered({
          message: `The cache stayed full for ${Durations.format(settings.fullCacheWait)}: stopped at ${pending.where}. ${error.message}`
        })
    )
  )

/**
 * Commits the records together, in order, and counts them. Those refused for a full cache are tried
 * again one at a time, in order, once the others are in.
 */
const commitAll = (settings: IntakeSettings, records: ReadonlyArray<Pending>) =>
  Effect.gen(function* () {
    const outcomes = yield* Effect.forEach(
      records,
      (pending) => Effect.either(settings.client.record(pending.record)),
      {
        concurrency: "unbounded"
      }
    )
    let cached = 0
    for (const [index, outcome] of outcomes.entries()) {
      const pending = records[index]!
      if (Either.isRight(outcome)) {
        cached += 1
      } else if (outcome.left._tag === "KinesisLimitExceededException") {
        yield* commitWhenRoom(settings, pending)
        cached += 1
      } else if (outcome.left._tag === "KinesisValidationException") {
        yield* settings.skipped(pending.where, outcome.left.message)
      } else {
        return yield* Effect.fail(outcome.left)
      }
    }
    return cached
  })

/** Checks a group of lines in order, then commits the good ones; `strict` stops at the first bad one. */
const takeGroup = (settings: IntakeSettings, input: Inputs.Input, lines: ReadonlyArray<LineSplitter.Line>) =>
  Effect.gen(function* () {
    const good: Array<Pending> = []
    for (const [index, line] of lines.entries()) {
      const where = `${input.name}:${line.number}`
      const record = yield* recordOf(settings, line)
      if (Either.isRight(record)) {
        good.push({ where, record: record.right })
      } else if (settings.strict) {
        yield* settings.taken(index + 1, yield* commitAll(settings, good))
        return yield* new BadInput({ message: `${where}: ${record.left} (--strict stops here)` })
      } else {
        yield* settings.skipped(where, record.left)
      }
    }
    yield* settings.taken(lines.length, yield* commitAll(settings, good))
  })

const groupsOf = <A>(items: ReadonlyArray<A>): ReadonlyArray<ReadonlyArray<A>> => {
  const groups: Array<ReadonlyArray<A>> = []
  for (let start = 0; start < items.length; start += groupSize) groups.push(items.slice(start, start + groupSize))
  return groups
}

/** Takes every line of `input` into the cache; the next chunk is read only once this one's lines are in. */
export const take =
  (settings: IntakeSettings) =>
  (input: Inputs.Input): Effect.Effect<void, IntakeError> => {
    const splitter = LineSplitter.make(RecordInput.maxRecordBytes)
    return input.chunks.pipe(
      Stream.map(splitter.push),
      Stream.concat(Stream.sync(splitter.end)),
      Stream.runForEach((lines) =>
        Effect.forEach(groupsOf(lines), (group) => takeGroup(settings, input, group), { discard: true })
      )
    )
  }
