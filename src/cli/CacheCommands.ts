/**
 * The commands on a cache directory: `status` (how much it holds), `flush` (send it until it is
 * empty or the time limit) and `clear` (delete every record). None creates a cache that isn't there.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import { NotDelivered } from "./CliError.js"
import * as CliOptions from "./CliOptions.js"
import * as Delivery from "./Delivery.js"
import * as Format from "./Format.js"
import * as StatusLine from "./StatusLine.js"

/** The configuration of the settings given, its cache file, and whether that file exists. */
const locate = (settings: CliOptions.CacheSettings) =>
  Effect.gen(function* () {
    const config = yield* CliOptions.clientConfig(settings)
    const { cacheFile } = yield* CliOptions.cacheFileOf(config)
    const exists = yield* Effect.orElseSucceed((yield* FileSystem.FileSystem).exists(cacheFile), () => false)
    return { config, cacheFile, exists }
  })

const stderr = (line: string) => Effect.sync(() => process.stderr.write(`${line}\n`))

/** `status`: the cache file, its records and bytes, and the age of the oldest record, on stdout. */
export const status = Command.make("status", CliOptions.cacheSettings, (settings) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { config, cacheFile, exists } = yield* locate(settings)
      const cache = exists
        ? yield* Effect.flatMap(CliOptions.openClient(config, cacheFile), (client) => client.cacheStatus())
        : { records: 0, bytes: 0, oldestRecordAgeMs: undefined }
      const lines = [
        `cache: ${cacheFile}${exists ? "" : " (not created yet)"}`,
        `records: ${Format.count(cache.records)}`,
        `size: ${Format.bytes(cache.bytes)}`,
        ...(cache.oldestRecordAgeMs === undefined ? [] : [`oldest: ${Format.age(cache.oldestRecordAgeMs)} ago`])
      ]
      yield* Effect.sync(() => process.stdout.write(`${lines.join("\n")}\n`))
    })
  )
).pipe(Command.withDescription("Show how many records a cache holds, and how old the oldest is (on stdout)."))

const flushOptions = {
  ...CliOptions.connectionSettings,
  flushTimeout: CliOptions.duration("flush-timeout", "30s", "How long to go on flushing until the cache is empty.")
}

/** `flush`: sends the cache until it is empty or `--flush-timeout` has passed; records left mean exit 1. */
export const flush = Command.make("flush", flushOptions, (args) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { config, cacheFile, exists } = yield* locate(args)
      if (!exists) return yield* stderr(`flush: nothing to send, there is no cache at ${cacheFile}`)
      const client = yield* CliOptions.openClient(config, cacheFile)
      const counts = yield* Ref.make(Delivery.noCounts)
      const progress = yield* StatusLine.start(
        process.stderr,
        Effect.map(Ref.get(counts), (current) => `delivered ${Format.count(current.delivered)}`),
        Duration.seconds(10)
      )
      const started = yield* Clock.currentTimeMillis
      yield* Effect.timeoutOption(
        Delivery.untilEmpty(client, (update) => Ref.update(counts, update)),
        args.flushTimeout
      )
      const left = yield* client.cacheStatus()
      yield* progress.stop
      const final = yield* Ref.get(counts)
      const millis = (yield* Clock.currentTimeMillis) - started
      yield* stderr(`flush: delivered ${Format.count(final.delivered)} in ${Format.seconds(millis)}`)
      const shortfall = Delivery.shortfall(left.records, cacheFile, args.flushTimeout, final)
      if (shortfall) return yield* new NotDelivered({ message: shortfall })
    })
  )
).pipe(Command.withDescription("Send what a cache holds until it is empty or the time limit."))

/** `clear`: deletes every record of the cache, unsent. */
export const clear = Command.make("clear", CliOptions.cacheSettings, (settings) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { config, cacheFile, exists } = yield* locate(settings)
      if (!exists) return yield* stderr(`clear: nothing to delete, there is no cache at ${cacheFile}`)
      const client = yield* CliOptions.openClient(config, cacheFile)
      const { recordsCleared } = yield* client.clearCache()
      yield* stderr(`clear: deleted ${Format.plural(recordsCleared, "record", "records")} from ${cacheFile}`)
    })
  )
).pipe(Command.withDescription("Delete every record of a cache without sending it."))
