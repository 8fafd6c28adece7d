/**
 * KinesisClient.layerFromEnv: the usual environment, read through Effect's ConfigProvider, with
 * overrides laid over it. An endpoint from the environment gets an HTTP/1.1 handler, so a local
 * kinesalite works with nothing else set.
 */
import * as fs from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Cause, ConfigError, ConfigProvider, Context, Duration, Effect, Exit, Layer, LogLevel, Option } from "effect"
import { FlushNone, KinesisClient, KinesisClientConfig, KinesisValidationException } from "effect-kinesis"
import { credentials, LocalKinesis } from "effect-kinesis/testing"
import { resolveOptions } from "../src/KinesisClientConfig.js"
import { scopedTempDir } from "./support/tempDir.js"

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("KinesisClientConfig.fromEnv", () => {
  it.effect("reads every variable it documents", () =>
    Effect.gen(function* () {
      const config = yield* KinesisClientConfig.fromEnv.pipe(
        withEnv({
          AWS_ENDPOINT_URL_KINESIS: "http://127.0.0.1:4567",
          AWS_ENDPOINT_URL: "http://127.0.0.1:1",
          EFFECT_KINESIS_STORAGE_PATH: "/var/lib/app/kinesis",
          EFFECT_KINESIS_FLUSH_INTERVAL: "10 seconds",
          EFFECT_KINESIS_CACHE_MAX_BYTES: "1048576",
          EFFECT_KINESIS_MAX_RETRIES: "2",
          EFFECT_KINESIS_REQUEST_TIMEOUT: "3 seconds",
          EFFECT_KINESIS_LOG_LEVEL: "Info"
        })
      )
      expect(config.storagePath).toBe("/var/lib/app/kinesis")
      expect(config.kinesisClientConfig?.endpoint).toBe("http://127.0.0.1:4567")
      expect(config.http).toEqual({ version: "1.1" })
      const options = yield* resolveOptions(config.options)
      expect(options.cacheMaxBytes).toBe(1048576)
      expect(options.maxRetries).toBe(2)
      expect(Duration.toMillis(options.requestTimeout)).toBe(3000)
      expect(options.logLevel).toBe(LogLevel.Info)
      expect(options.flushStrategy).toMatchObject({ _tag: "FlushInterval", interval: "10 seconds" })
    })
  )

  it.effect("reads the delivery options: backoff cap, countThrottling, drain, streamConcurrency, recordTtl", () =>
    Effect.gen(function* () {
      const config = yield* KinesisClientConfig.fromEnv.pipe(
        withEnv({
          EFFECT_KINESIS_FLUSH_INTERVAL: "10 seconds",
          EFFECT_KINESIS_MAX_BACKOFF: "2 minutes",
          EFFECT_KINESIS_COUNT_THROTTLING: "false",
          EFFECT_KINESIS_DRAIN: "true",
          EFFECT_KINESIS_STREAM_CONCURRENCY: "8",
          EFFECT_KINESIS_RECORD_TTL: "1 hour"
        })
      )
      const options = yield* resolveOptions(config.options)
      expect(options.flushStrategy).toMatchObject({
        _tag: "FlushInterval",
        interval: "10 seconds",
        maxBackoff: "2 minutes"
      })
      expect(options.countThrottling).toBe(false)
      expect(options.drain).toBe(true)
      expect(options.streamConcurrency).toBe(8)
      expect(options.recordTtl === undefined ? undefined : Duration.toMillis(options.recordTtl)).toBe(3_600_000)
    })
  )

  it.effect("a backoff cap alone keeps the default interval; with no automatic flush it is ignored", () =>
    Effect.gen(function* () {
      const alone = yield* KinesisClientConfig.fromEnv.pipe(withEnv({ EFFECT_KINESIS_MAX_BACKOFF: "1 minute" }))
      expect(alone.options?.flushStrategy).toMatchObject({
        _tag: "FlushInterval",
        interval: "30 seconds",
        maxBackoff: "1 minute"
      })
      const none = yield* KinesisClientConfig.fromEnv.pipe(
        withEnv({ EFFECT_KINESIS_FLUSH_INTERVAL: "none", EFFECT_KINESIS_MAX_BACKOFF: "1 minute" })
      )
      expect(none.options?.flushStrategy?._tag).toBe("FlushNone")
    })
  )

  it.effect("a flag that is not a boolean is a ConfigError; a bad concurrency fails when the client is made", () =>
    Effect.gen(function* () {
      const flag = yield* Effect.flip(KinesisClientConfig.fromEnv.pipe(withEnv({ EFFECT_KINESIS_DRAIN: "maybe" })))
      expect(ConfigError.isConfigError(flag)).toBe(true)
      const config = yield* KinesisClientConfig.fromEnv.pipe(withEnv({ EFFECT_KINESIS_STREAM_CONCURRENCY: "0" }))
      const error = yield* Effect.flip(resolveOptions(config.options))
      expect(error).toBeInstanceOf(KinesisValidationException)
    })
  )

  it.effect("with nothing set, everything keeps its default; AWS_ENDPOINT_URL is the fallback endpoint", () =>
    Effect.gen(function* () {
      expect(yield* KinesisClientConfig.fromEnv.pipe(withEnv({}))).toEqual({ options: {} })
      const generic = yield* KinesisClientConfig.fromEnv.pipe(
        withEnv({ AWS_ENDPOINT_URL: "http://127.0.0.1:1", EFFECT_KINESIS_FLUSH_INTERVAL: "none" })
      )
      expect(generic.kinesisClientConfig?.endpoint).toBe("http://127.0.0.1:1")
      expect(generic.options?.flushStrategy?._tag).toBe("FlushNone")
    })
  )

  it.effect("a malformed integer is a ConfigError", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        KinesisClientConfig.fromEnv.pipe(withEnv({ EFFECT_KINESIS_MAX_RETRIES: "many" }))
      )
      expect(ConfigError.isConfigError(error)).toBe(true)
    })
  )
})

describe("KinesisClient.layerFromEnv", () => {
  it.scopedLive("a client for the region, storage path and local endpoint of the environment delivers", () =>
    Effect.gen(function* () {
      const local = yield* LocalKinesis.make({ streams: ["from-env"] })
      const dir = yield* scopedTempDir("effect-kinesis-env-")
      const client = yield* Layer.build(
        // Credentials: the SDK's own chain reads them from the process environment; here they are an override.
        KinesisClient.layerFromEnv({ credentialsProvider: credentials, options: { flushStrategy: FlushNone() } })
      ).pipe(
        Effect.map(Context.get(KinesisClient.KinesisClient)),
        withEnv({
          AWS_REGION: "eu-north-1",
          AWS_ENDPOINT_URL_KINESIS: local.endpoint,
          EFFECT_KINESIS_STORAGE_PATH: dir
        })
      )
      yield* client.record({ data: new Uint8Array([7]), partitionKey: "p", streamName: "from-env" })
      expect((yield* client.flush()).recordsFlushed).toBe(1)
      expect((yield* local.readStream("from-env")).map((record) => [...record.data])).toEqual([[7]])
      expect(fs.readdirSync(dir)).toContain("kinesis-records-eu-north-1.db")
    })
  )

  it.effect("an environment with no region fails with KinesisValidationException", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.scoped(Layer.build(KinesisClient.layerFromEnv())).pipe(withEnv({}), Effect.exit)
      const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
      expect(Option.getOrUndefined(failure)).toBeInstanceOf(KinesisValidationException)
    })
  )
})
