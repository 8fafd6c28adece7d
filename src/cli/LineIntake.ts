/**
 * How `put` takes the lines of an input into the cache: a chunk of input at a time, each line checked
 * in order, the good ones committed together when they fit (the cache commits them in one
 * transaction, in order), and only then the next chunk read. A line that can't be a record is skipped and reported, or with
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
const groupSize = 256

/** The pause between tries to commit a line while the cache is full. */
const fullCacheRetry = Duration.millis(50)

/** What the intake needs: where records go, how they are keyed, and whom to tell. */
export interface IntakeSettings {
  readonly client: KinesisClient
  readonly stream: string
  readonly keys: PartitionKeys.KeySource
  readonly strict: boolean
  /** The cache limit the client was made with: groups that don't fit go in one line at a time. */
  readonly cacheMaxBytes: number
  /** How long a line may wait for room while the cache is full before the input is given up. */
  readonly fullCacheWait: Duration.Duration
  /** Lines were taken from the input. */
  readonly read: (lines: number) => Effect.Effect<void>
  /** Records were committed to the cache. */
  readonly cached: (records: number) => Effect.Effect<void>
  /** A line was skipped; `where` is `name:line`. */
  readonly skipped: (where: string, reason: string) => Effect.Effect<void>
  /** A line found the cache full: sending now makes room sooner. */
  readonly cacheFull: Effect.Effect<void>
}

/** Why the intake stopped early. */
export type IntakeError = BadInput | NotDelivered | AmplifyKinesisException

interface Pending {
  readonly where: string
  readonly record: RecordInput.RecordInput
  readonly size: number
}

const limit = Format.bytes(RecordInput.maxRecordBytes)

/** The record a line makes, or why it can't make one. */
const pendingOf = (
  settings: IntakeSettings,
  where: string,
  line: LineSplitter.Line
): Effect.Effect<Either.Either<Pending, string>> => {
  if (line._tag === "Oversized") {
    return Effect.succeed(Either.left(`${Format.count(line.byteLength)} bytes, over the record limit of ${limit}`))
  }
  const key = PartitionKeys.keyOf(settings.keys, line.bytes)
  if (Either.isLeft(key)) return Effect.succeed(Either.left(key.left))
  const size = RecordInput.recordSize(key.right, line.bytes)
  if (size > RecordInput.maxRecordBytes) {
    return Effect.succeed(Either.left(`${Format.count(size)} bytes with its key, over the record limit of ${limit}`))
  }
  if (size > settings.cacheMaxBytes) {
    return Effect.succeed(
      Either.left(
        `${Format.count(size)} bytes with its key, more than the whole cache holds (${Format.bytes(settings.cacheMaxBytes)})`
      )
    )
  }
  const pending = { where, size, record: { data: line.bytes, partitionKey: key.right, streamName: settings.stream } }
  if (settings.keys._tag !== "Field") return Effect.succeed(Either.right(pending))
  // A key taken from the line may still be too long or malformed: checked with a byte of data, not the line.
  return RecordInput.validate({ ...pending.record, data: new Uint8Array(1) }).pipe(
    Effect.match({ onFailure: (error) => Either.left(error.message), onSuccess: () => Either.right(pending) })
  )
}

/**
 * Commits one record, waiting for room while the cache is full, at most `fullCacheWait`. Each try and
 * its count are one step: an interruption can't fall between a commit and its count.
 */
const commitWhenRoom = (settings: IntakeSettings, pending: Pending) =>
  Effect.uninterruptible(Effect.tap(settings.client.record(pending.record), () => settings.cached(1))).pipe(
    Effect.tapError((error) => (error._tag === "KinesisLimitExceededException" ? settings.cacheFull : Effect.void)),
    Effect.retry({
      while: (error) => error._tag === "KinesisLimitExceededException",
      schedule: Schedule.spaced(fullCacheRetry).pipe(Schedule.upTo(settings.fullCacheWait))
    }),
    Effect.catchTags({
      KinesisLimitExceededException: (error) =>
        new NotDelivered({
          message: `The cache stayed full for ${Durations.format(settings.fullCacheWait)}: stopped at ${pending.where}. ${error.message}`
        }),
      KinesisValidationException: (error) => settings.skipped(pending.where, error.message)
    })
  )

/** Commits records that all fit in the cache together, in order, in one step with their count. */
const commitTogether = (settings: IntakeSettings, records: ReadonlyArray<Pending>) =>
  Effect.gen(function* () {
    const outcomes = yield* Effect.uninterruptible(
      Effect.forEach(records, (pending) => Effect.either(settings.client.record(pending.record)), {
        concurrency: "unbounded"
      }).pipe(Effect.tap((all) => settings.cached(all.filter(Either.isRight).length)))
    )
    for (const [index, outcome] of outcomes.entries()) {
      if (Either.isRight(outcome)) continue
      if (outcome.left._tag === "KinesisValidationException") {
        yield* settings.skipped(records[index]!.where, outcome.left.message)
      } else {
        return yield* Effect.fail(outcome.left)
      }
    }
  })

/**
 * The intake of one `put`: `take(input)` takes every line of an input into the cache, and reads the
 * next chunk only once this one's lines are in. It keeps a lower bound of the room left in the cache
 * (the cache has one owner, this process, and only deliveries change it otherwise, which make room):
 * a group that fits goes in together; one that may not goes in a line at a time, in order, each
 * waiting for room, so that a full cache never lets a later line in before an earlier one.
 */
export const make = (settings: IntakeSettings) => {
  let room = 0

  const commit = (records: ReadonlyArray<Pending>) =>
    Effect.gen(function* () {
      const bytes = records.reduce((sum, pending) => sum + pending.size, 0)
      if (bytes > room) room = settings.cacheMaxBytes - (yield* settings.client.cacheStatus()).bytes
      if (bytes <= room) {
        room -= bytes
        return yield* commitTogether(settings, records)
      }
      for (const pending of records) yield* commitWhenRoom(settings, pending)
      room = 0
    })

  /** Checks a group of lines in order, then commits the good ones; `strict` stops at the first bad one. */
  const takeGroup = (input: Inputs.Input, lines: ReadonlyArray<LineSplitter.Line>) =>
    Effect.gen(function* () {
      yield* settings.read(lines.length)
      const good: Array<Pending> = []
      for (const line of lines) {
        const where = `${input.name}:${line.number}`
        const pending = yield* pendingOf(settings, where, line)
        if (Either.isRight(pending)) {
          good.push(pending.right)
        } else if (settings.strict) {
          yield* commit(good)
          return yield* new BadInput({ message: `${where}: ${pending.left} (--strict stops here)` })
        } else {
          yield* settings.skipped(where, pending.left)
        }
      }
      yield* commit(good)
    })

  return {
    take: (input: Inputs.Input): Effect.Effect<void, IntakeError> => {
      const splitter = LineSplitter.make(RecordInput.maxRecordBytes)
      return input.chunks.pipe(
        Stream.map(splitter.push),
        Stream.concat(Stream.sync(splitter.end)),
        Stream.runForEach((lines) =>
          Effect.forEach(groupsOf(lines), (group) => takeGroup(input, group), { discard: true })
        )
      )
    }
  }
}

const groupsOf = <A>(items: ReadonlyArray<A>): ReadonlyArray<ReadonlyArray<A>> => {
  const groups: Array<ReadonlyArray<A>> = []
  for (let start = 0; start < items.length; start += groupSize) groups.push(items.slice(start, start + groupSize))
  return groups
}
