/**
 * `effect-kinesis put --stream NAME [FILE...]`: a durable pipe from lines to a stream. Each line is
 * committed to the cache before the next is taken; batches go out while input still arrives; at the
 * end of the input the cache is flushed until it is empty or `--flush-timeout` has passed. A run that
 * dies leaves its records in the cache, and the next run on that cache sends them first (oldest first).
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import type * as KinesisClient from "../KinesisClient.js"
import * as RecordInput from "../RecordInput.js"
import { BadInput, NotDelivered } from "./CliError.js"
import * as CliOptions from "./CliOptions.js"
import * as Delivery from "./Delivery.js"
import * as Format from "./Format.js"
import * as Inputs from "./Inputs.js"
import * as LineIntake from "./LineIntake.js"
import * as PartitionKeys from "./PartitionKeys.js"
import * as StatusLine from "./StatusLine.js"
import * as StreamCheck from "./StreamCheck.js"

/** What `put` has done so far. */
interface PutStats {
  /** Reading input, or flushing after its end. */
  readonly phase: "reading" | "flushing"
  /** Lines taken from the input (blank lines are not records and are not counted). */
  readonly read: number
  /** Lines committed to the cache. */
  readonly cached: number
  /** Lines left out: over the record limit, without their key, or refused by validation. */
  readonly skipped: number
  readonly delivery: Delivery.DeliveryCounts
}

const noStats: PutStats = { phase: "reading", read: 0, cached: 0, skipped: 0, delivery: Delivery.noCounts }

/** Skipped lines after which they are only counted, not each printed. */
const printedSkips = 10

const options = {
  stream: Options.text("stream").pipe(
    Options.withAlias("s"),
    Options.withPseudoName("NAME"),
    Options.withDescription("The Kinesis stream the lines go to.")
  ),
  partitionKey: CliOptions.optionalText(
    "partition-key",
    "KEY",
    "The partition key of every line. Default: a random key per line."
  ),
  partitionKeyField: CliOptions.optionalText(
    "partition-key-field",
    "PATH",
    "Each line is a JSON object: its key is the value at PATH (dot-separated, e.g. user.id). A line without it is skipped.",
    (path) => (path.split(".").includes("") ? "takes names separated by single dots, such as user.id" : undefined)
  ),
  strict: Options.boolean("strict").pipe(
    Options.withDescription("Stop at the first line that can't be a record instead of skipping it.")
  ),
  flushTimeout: CliOptions.duration(
    "flush-timeout",
    "30s",
    "At the end of the input, how long to go on flushing until the cache is empty; also the longest wait for room in a full cache."
  ),
  flushInterval: CliOptions.duration("flush-interval", "1s", "How often to flush while input arrives."),
  progressInterval: CliOptions.duration(
    "progress-interval",
    "10s",
    "How often to print a progress line when stderr is not a terminal (a terminal gets a live status line)."
  ),
  ...CliOptions.connectionSettings,
  files: Args.text({ name: "FILE" }).pipe(
    Args.withDescription("Files to read, one record per line, in order. Default (or -): stdin."),
    Args.repeated
  )
}

/** The options and arguments of `put`, as parsed. */
export type PutArgs = Command.Command.ParseConfig<typeof options>

const keySource = (args: PutArgs): Effect.Effect<PartitionKeys.KeySource, BadInput> => {
  if (Option.isSome(args.partitionKey) && Option.isSome(args.partitionKeyField)) {
    return Effect.fail(new BadInput({ message: "Give --partition-key or --partition-key-field, not both" }))
  }
  if (Option.isSome(args.partitionKey)) return Effect.succeed(PartitionKeys.fixed(args.partitionKey.value))
  if (Option.isSome(args.partitionKeyField)) return Effect.succeed(PartitionKeys.field(args.partitionKeyField.value))
  return Effect.succeed(PartitionKeys.random)
}

/** Refuses a malformed stream name or fixed key before any input is read. */
const checkTarget = (stream: string, keys: PartitionKeys.KeySource) =>
  RecordInput.validate({
    streamName: stream,
    partitionKey: keys._tag === "Fixed" ? keys.key : "key",
    data: new Uint8Array(1)
  }).pipe(Effect.mapError((error) => new BadInput({ message: error.message })))

const statusLine = (
  stats: PutStats,
  cache: KinesisClient.CacheStatus | undefined,
  elapsedMillis: number,
  rate: string
) =>
  [
    ...(stats.phase === "flushing" ? ["flushing:"] : []),
    `read ${Format.count(stats.read)}`,
    `cached ${Format.count(stats.cached)}`,
    ...(stats.skipped > 0 ? [`skipped ${Format.count(stats.skipped)}`] : []),
    `delivered ${Format.count(stats.delivery.delivered)}`,
    rate,
    cache === undefined ? "cache ?" : `in cache ${Format.count(cache.records)} (${Format.bytes(cache.bytes)})`,
    Format.seconds(elapsedMillis),
    ...(stats.delivery.lastFailure ? [`last failure: ${stats.delivery.lastFailure}`] : [])
  ].join("  ")

const summary = (stats: PutStats, elapsedMillis: number) =>
  `put: read ${Format.plural(stats.read, "line", "lines")}, cached ${Format.count(stats.cached)}` +
  `${stats.skipped > 0 ? `, skipped ${Format.count(stats.skipped)}` : ""}; delivered ` +
  `${Format.count(stats.delivery.delivered)} in ${Format.seconds(elapsedMillis)} (${Format.rate(stats.delivery.delivered, elapsedMillis)})` +
  `${stats.delivery.dropped > 0 ? `; dropped ${Format.count(stats.delivery.dropped)} after their last retry` : ""}`

/**
 * How the run ends: the reading's failure, skipped lines (exit 2) or what was not delivered (exit 1),
 * each told together with what was not delivered; or success.
 */
const outcome = (
  reading: Either.Either<void, LineIntake.IntakeError>,
  stats: PutStats,
  shortfall: string | undefined
): Effect.Effect<void, LineIntake.IntakeError> => {
  const withShortfall = (message: string) => (shortfall ? `${message}; ${shortfall}` : message)
  const skipped = stats.skipped > 0 ? `${Format.plural(stats.skipped, "line was", "lines were")} skipped` : undefined
  if (Either.isLeft(reading)) {
    const error = reading.left
    if (error._tag === "BadInput") return new BadInput({ message: withShortfall(error.message) })
    if (error._tag === "NotDelivered") {
      return skipped
        ? new BadInput({ message: withShortfall(`${skipped}; ${error.message}`) })
        : new NotDelivered({ message: withShortfall(error.message) })
    }
    return Effect.fail(error)
  }
  if (skipped) return new BadInput({ message: withShortfall(skipped) })
  return shortfall ? new NotDelivered({ message: shortfall }) : Effect.void
}

/** Runs `put` with parsed arguments. */
export const put = (args: PutArgs) =>
  Effect.scoped(
    Effect.gen(function* () {
      const keys = yield* keySource(args)
      yield* checkTarget(args.stream, keys)
      const inputs = yield* Inputs.check(args.files)
      const config = yield* CliOptions.clientConfig(args)
      const { cacheFile, region } = yield* CliOptions.cacheFileOf(config)
      const client = yield* CliOptions.openClient(config, cacheFile)
      const finding = yield* StreamCheck.check(client.kinesisClient, args.stream, region).pipe(
        Effect.onInterrupt(() => Effect.sync(() => StatusLine.note(process.stderr, "put: interrupted before reading")))
      )
      const stats = yield* Ref.make(noStats)
      const startedAt = yield* Clock.currentTimeMillis
      const elapsed = Effect.map(Clock.currentTimeMillis, (now) => now - startedAt)

      const recentRate = StatusLine.recentRate()
      const status = yield* StatusLine.start(
        process.stderr,
        Effect.all([Ref.get(stats), Effect.option(client.cacheStatus()), elapsed]).pipe(
          Effect.map(([current, cache, millis]) =>
            statusLine(current, Option.getOrUndefined(cache), millis, recentRate(millis, current.delivery.delivered))
          )
        ),
        args.progressInterval
      )
      if (Option.isSome(finding)) yield* status.note(finding.value)
      const earlier = yield* client.cacheStatus()
      if (earlier.records > 0) {
        yield* status.note(`put: ${Format.plural(earlier.records, "record", "records")} left in ${cacheFile} go first`)
      }
      if (inputs.some((input) => input.name === "stdin") && process.stdin.isTTY) {
        yield* status.note("put: reading lines from the terminal; Ctrl-D ends the input")
      }

      const inputEnded = yield* Deferred.make<void>()
      const wake = yield* Queue.sliding<void>(1)
      const delivery = yield* Effect.forkScoped(
        Delivery.run(client, {
          interval: args.flushInterval,
          maxBackoff: Delivery.longestWait,
          inputEnded,
          wake: Queue.take(wake),
          report: (update) => Ref.update(stats, (current) => ({ ...current, delivery: update(current.delivery) }))
        })
      )

      const intake = LineIntake.make({
        client,
        stream: args.stream,
        keys,
        strict: args.strict,
        cacheMaxBytes: config.options?.cacheMaxBytes ?? CliOptions.defaultCacheMaxBytes,
        fullCacheWait: args.flushTimeout,
        read: (lines) => Ref.update(stats, (current) => ({ ...current, read: current.read + lines })),
        // Each full batch cached wakes the delivery loop: sending starts while lines still arrive.
        cached: (records) =>
          Ref.modify(stats, (current) => {
            const cached = current.cached + records
            const batchFilled =
              Math.floor(cached / Delivery.fullBatch) > Math.floor(current.cached / Delivery.fullBatch)
            return [batchFilled, { ...current, cached }] as const
          }).pipe(Effect.flatMap((batchFilled) => (batchFilled ? Queue.offer(wake, undefined) : Effect.void))),
        skipped: (where, reason) =>
          Effect.gen(function* () {
            const { skipped } = yield* Ref.updateAndGet(stats, (current) => ({
              ...current,
              skipped: current.skipped + 1
            }))
            if (skipped <= printedSkips) yield* status.note(`put: skipped ${where}: ${reason}`)
            if (skipped === printedSkips) yield* status.note("put: further skipped lines are counted, not printed")
          }),
        cacheFull: Queue.offer(wake, undefined)
      })

      const run = Effect.gen(function* () {
        const reading = yield* Effect.either(Effect.forEach(inputs, intake.take, { discard: true }))
        yield* Deferred.succeed(inputEnded, undefined)
        // A cache that stayed full has had --flush-timeout of failed deliveries already: no second wait.
        if (Either.isRight(reading) || reading.left._tag !== "NotDelivered") {
          yield* Ref.update(stats, (current) => ({ ...current, phase: "flushing" as const }))
          yield* Effect.timeoutOption(Fiber.join(delivery), args.flushTimeout)
        }
        yield* Fiber.interrupt(delivery)
        return reading
      })
      const reading = yield* run.pipe(
        Effect.onInterrupt(() =>
          Effect.gen(function* () {
            const current = yield* Ref.get(stats)
            const cache = yield* Effect.option(client.cacheStatus())
            const held = Option.match(cache, {
              onNone: () => "",
              onSome: ({ records }) => `; ${Format.plural(records, "record", "records")} wait in ${cacheFile}`
            })
            yield* status.stop
            yield* status.note(`put: interrupted after ${Format.plural(current.cached, "line", "lines")} cached${held}`)
          })
        )
      )
      const left = yield* client.cacheStatus()
      yield* status.stop
      const final = yield* Ref.get(stats)
      yield* status.note(summary(final, yield* elapsed))
      return yield* outcome(
        reading,
        final,
        Delivery.shortfall(left.records, cacheFile, args.flushTimeout, final.delivery)
      )
    })
  )

/** The `put` command. */
export const command = Command.make("put", options, put).pipe(
  Command.withDescription(
    "Send lines to a Kinesis stream through a durable cache: one record per line of the files, or of stdin."
  )
)
