/**
 * The settings of a client, shared by the Effect API and the Promise facade, and their defaults.
 *
 * @since 0.1.0
 */
import type { KinesisClientConfig as SdkClientConfig } from "@aws-sdk/client-kinesis"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import { KinesisValidationException } from "./Errors.js"
import { cacheFilename, defaultStoragePath } from "./engine/cache/RecordStorage.js"
import {
  defaultInterval,
  defaultMaxBackoff,
  defaultStrategy,
  FlushInterval,
  FlushNone,
  type FlushStrategy
} from "./FlushStrategy.js"

/** Tuning options; every one has a default. */
export interface KinesisClientOptions {
  /** The most bytes of records the local cache holds. Default 5 MiB. */
  readonly cacheMaxBytes?: number
  /** Failed attempts a record may have beyond its first before it is dropped. Default 5. */
  readonly maxRetries?: number
  /** When to flush on its own. Default `FlushInterval({ interval: "30 seconds" })`. */
  readonly flushStrategy?: FlushStrategy
  /** How long one `PutRecords` call (with the SDK's own retries) may take before it counts as no response. Default 30 seconds. */
  readonly requestTimeout?: Duration.DurationInput
  /**
   * Whether transient refusals (throttling, `InternalFailure`, `ServiceUnavailable`, any 5xx; per
   * record or for the whole request) charge a record an attempt. `false`: they charge nothing, as no
   * response doesn't, and the record stays until it is delivered or cleared. Default `true`.
   */
  readonly countThrottling?: boolean
  /**
   * Whether a flush keeps sending a stream's next batch while the previous one was accepted whole,
   * until the stream is empty. Default `false`: one batch per stream per flush.
   */
  readonly drain?: boolean
  /**
   * How many streams a flush sends to at once (each with one request in flight, up to
   * `requestsPerStream` with `drain`). Default 4.
   */
  readonly streamConcurrency?: number
  /**
   * How many batches of one stream may be in flight at once while a flush drains it (`drain`, or the
   * final flush of `close`), each made of other records: 1 to 10. With more than one, order within
   * a stream can change across retries. Default 1.
   */
  readonly requestsPerStream?: number
  /**
   * How long a record may stay cached (counted from the moment `record` returned): a flush first
   * deletes the older ones unsent, counts them in `recordsDropped` and logs a warning. A duration
   * longer than zero. Default: records never expire.
   */
  readonly recordTtl?: Duration.DurationInput
  /**
   * The lowest level of the client's own log lines that reach Effect's logger: `"None"` silences
   * them. Default `"Warning"`.
   */
  readonly logLevel?: ClientLogLevel
}

/** The levels `logLevel` takes, from silent to everything. */
export type ClientLogLevel = "None" | "Error" | "Warning" | "Info" | "Debug"

/** Everything a client needs: where to send, how to sign, where to cache. */
export interface KinesisClientConfig {
  /**
   * The AWS region of the streams, e.g. `"us-east-1"`. Also part of the cache file name. Left out
   * or empty: `AWS_REGION`, then `AWS_DEFAULT_REGION`.
   */
  readonly region?: string | undefined
  /** Credentials, or a provider of them. Default: the AWS SDK's provider chain. */
  readonly credentialsProvider?: SdkClientConfig["credentials"]
  /** The directory of the cache database, created if missing. Default: a per-user data directory. */
  readonly storagePath?: string
  readonly options?: KinesisClientOptions
  /**
   * Passed to the AWS SDK client: `endpoint`, `maxAttempts`, `retryMode`, ... Data fields cross to
   * the engine's thread as they are. A field that can't cross (a `requestHandler` instance, a
   * `logger`, any function) makes the client run its engine on the caller's thread instead.
   */
  readonly kinesisClientConfig?: Partial<SdkClientConfig>
  /**
   * The HTTP version and sockets of the engine's SDK client. Default: the SDK's own (HTTP/2 for
   * Kinesis). `{ version: "1.1" }` reaches a local Kinesis such as kinesalite without a handler instance.
   */
  readonly http?: HttpSettings
  /**
   * Where the engine (cache, flushes, SDK client) runs: `"worker"`, a thread of its own (the
   * default when the configuration can cross), or `"caller"`, the caller's thread.
   */
  readonly engine?: "worker" | "caller"
}

/** The HTTP settings of the engine's SDK client. */
export interface HttpSettings {
  /** `"1.1"` or `"2"`. Default: the SDK's own, HTTP/2 for Kinesis. */
  readonly version?: "1.1" | "2"
  /** The most sockets (HTTP/1.1) the client opens to one host. Default: the SDK's own. */
  readonly maxSockets?: number
}

/** The options with every default filled in. */
export interface ResolvedOptions {
  readonly cacheMaxBytes: number
  readonly maxRetries: number
  readonly flushStrategy: FlushStrategy
  readonly requestTimeout: Duration.Duration
  readonly countThrottling: boolean
  readonly drain: boolean
  readonly streamConcurrency: number
  readonly requestsPerStream: number
  readonly recordTtl: Duration.Duration | undefined
  readonly logLevel: LogLevel.LogLevel
}

/** The options of `close`. */
export interface CloseOptions {
  /**
   * Before closing, flush as with `drain: true` for at most this long (a duration longer than zero):
   * no request starts after it, a request in flight then is allowed to finish. Left out: no final flush.
   */
  readonly flushTimeout?: Duration.DurationInput
}

/** A configuration whose region is settled. */
export interface ResolvedClientConfig extends KinesisClientConfig {
  readonly region: string
}

/** The default cache limit: 5 MiB. */
export const defaultCacheMaxBytes = 5 * 1024 * 1024

/** The default number of retries per record. */
export const defaultMaxRetries = 5

/** The default number of streams a flush sends to at once. */
export const defaultStreamConcurrency = 4

/** The most batches of one stream in flight at once that `requestsPerStream` allows. */
export const maxRequestsPerStream = 10

const badOption = (message: string) =>
  Effect.fail(new KinesisValidationException({ message, recoverySuggestion: "Fix the client options." }))

/**
 * Fills in the defaults of the options and checks them: every key known (an unknown or misplaced
 * one is refused, naming where it belongs), `cacheMaxBytes` a positive integer,
 * `maxRetries` a non-negative integer, the flush strategy one of `FlushInterval` / `FlushNone`, the
 * flush interval, `maxBackoff` and request timeout longer than zero, `countThrottling` and `drain`
 * booleans, `streamConcurrency` a positive integer, `requestsPerStream` an integer from 1 to 10, `recordTtl` (if given) longer than zero, `logLevel`
 * one of `ClientLogLevel`.
 */
export const resolveOptions = (
  options: KinesisClientOptions | undefined
): Effect.Effect<ResolvedOptions, KinesisValidationException> => {
  const misplaced = unknownKey(options, optionKeys, "options")
  if (misplaced !== undefined) return badOption(misplaced)
  const cacheMaxBytes = options?.cacheMaxBytes ?? defaultCacheMaxBytes
  const maxRetries = options?.maxRetries ?? defaultMaxRetries
  const flushStrategy = options?.flushStrategy ?? defaultStrategy
  const requestTimeout = Duration.decodeUnknown(options?.requestTimeout ?? "30 seconds")
  // Only a missing flag or count takes the default: null is as wrong as any other value of the wrong type.
  const countThrottling: unknown = options?.countThrottling === undefined ? true : options.countThrottling
  const drain: unknown = options?.drain === undefined ? false : options.drain
  const streamConcurrency: unknown =
    options?.streamConcurrency === undefined ? defaultStreamConcurrency : options.streamConcurrency
  const requestsPerStream: unknown = options?.requestsPerStream === undefined ? 1 : options.requestsPerStream
  const recordTtl = options?.recordTtl === undefined ? undefined : Duration.decodeUnknown(options.recordTtl)
  const logLevel: unknown = options?.logLevel ?? "Warning"
  if (!Number.isSafeInteger(cacheMaxBytes) || cacheMaxBytes <= 0) {
    return badOption(`cacheMaxBytes must be a positive integer, got ${cacheMaxBytes}`)
  }
  if (!Number.isSafeInteger(maxRetries) || maxRetries < 0) {
    return badOption(`maxRetries must be a non-negative integer, got ${maxRetries}`)
  }
  if (!isPositive(requestTimeout)) {
    return badOption("requestTimeout must be a duration longer than zero")
  }
  const strategyTag: unknown = (flushStrategy as { readonly _tag?: unknown } | null)?._tag
  if (strategyTag !== "FlushInterval" && strategyTag !== "FlushNone") {
    return badOption("flushStrategy must be FlushInterval({ interval }) or FlushNone()")
  }
  if (flushStrategy._tag === "FlushInterval") {
    if (!isPositive(Duration.decodeUnknown(flushStrategy.interval))) {
      return badOption("The flush interval must be a duration longer than zero")
    }
    if (!isPositive(Duration.decodeUnknown(flushStrategy.maxBackoff ?? defaultMaxBackoff))) {
      return badOption("maxBackoff must be a duration longer than zero")
    }
  }
  if (typeof countThrottling !== "boolean") {
    return badOption(`countThrottling must be true or false, got ${String(countThrottling)}`)
  }
  if (typeof drain !== "boolean") {
    return badOption(`drain must be true or false, got ${String(drain)}`)
  }
  if (typeof streamConcurrency !== "number" || !Number.isSafeInteger(streamConcurrency) || streamConcurrency <= 0) {
    return badOption(`streamConcurrency must be a positive integer, got ${String(streamConcurrency)}`)
  }
  if (
    typeof requestsPerStream !== "number" ||
    !Number.isSafeInteger(requestsPerStream) ||
    requestsPerStream < 1 ||
    requestsPerStream > maxRequestsPerStream
  ) {
    return badOption(
      `requestsPerStream must be an integer from 1 to ${maxRequestsPerStream}, got ${String(requestsPerStream)}`
    )
  }
  if (recordTtl !== undefined && !isPositive(recordTtl)) {
    return badOption("recordTtl must be a duration longer than zero")
  }
  if (typeof logLevel !== "string" || !logLevels.includes(logLevel)) {
    return badOption(`logLevel must be one of ${logLevels.join(", ")}, got ${String(logLevel)}`)
  }
  return Effect.succeed({
    cacheMaxBytes,
    maxRetries,
    flushStrategy,
    requestTimeout: requestTimeout.value,
    countThrottling,
    drain,
    streamConcurrency,
    requestsPerStream,
    recordTtl: recordTtl?.value,
    logLevel: LogLevel.fromLiteral(logLevel as ClientLogLevel)
  })
}

/**
 * Checks the options of `close`: the final flush's time limit, if one is given, or
 * `KinesisValidationException` when `flushTimeout` is not a duration longer than zero.
 */
export const resolveCloseOptions = (
  options: CloseOptions | undefined
): Effect.Effect<Option.Option<Duration.Duration>, KinesisValidationException> => {
  if (options?.flushTimeout === undefined) return Effect.succeed(Option.none())
  const flushTimeout = Duration.decodeUnknown(options.flushTimeout)
  return isPositive(flushTimeout)
    ? Effect.succeed(flushTimeout)
    : Effect.fail(
        new KinesisValidationException({
          message: `flushTimeout must be a duration longer than zero, got ${String(options.flushTimeout)}`,
          recoverySuggestion: 'Pass a duration such as "10 seconds", or leave flushTimeout out.'
        })
      )
}

const isPositive = (duration: Option.Option<Duration.Duration>): duration is Option.Some<Duration.Duration> =>
  Option.isSome(duration) && Duration.greaterThan(duration.value, Duration.zero)

const logLevels: ReadonlyArray<string> = ["None", "Error", "Warning", "Info", "Debug"]

/** A lowercase DNS label: letters, digits and inner hyphens, at most 63 characters. */
const regionPattern = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

const fromEnvironment = (name: string): Effect.Effect<Option.Option<string>> =>
  Config.option(Config.string(name)).pipe(
    Effect.map(Option.filter((value) => value !== "")),
    Effect.orElseSucceed(() => Option.none<string>())
  )

/**
 * Settles the region: the one given, else `AWS_REGION`, else `AWS_DEFAULT_REGION` (read through
 * Effect's `ConfigProvider`, the environment by default). Fails with `KinesisValidationException`
 * when there is none or it is not a lowercase DNS label.
 */
export const resolveRegion = (region: unknown): Effect.Effect<string, KinesisValidationException> =>
  Effect.gen(function* () {
    let value: unknown = region
    if (value === undefined || value === "") {
      const fromRegion = yield* fromEnvironment("AWS_REGION")
      const found = Option.isSome(fromRegion) ? fromRegion : yield* fromEnvironment("AWS_DEFAULT_REGION")
      value = Option.getOrUndefined(found)
    }
    if (value === undefined) {
      return yield* new KinesisValidationException({
        message: "No region: none was given and neither AWS_REGION nor AWS_DEFAULT_REGION is set",
        recoverySuggestion: 'Pass region (e.g. "us-east-1") or set AWS_REGION.'
      })
    }
    if (typeof value !== "string" || !regionPattern.test(value)) {
      return yield* new KinesisValidationException({
        message: `region must be a lowercase DNS label such as "us-east-1", got ${typeof value === "string" ? JSON.stringify(value) : typeof value}`,
        recoverySuggestion: "Fix the region."
      })
    }
    return value
  })

/** The keys of a client configuration. */
const topLevelKeys: ReadonlySet<string> = new Set([
  "region",
  "credentialsProvider",
  "storagePath",
  "options",
  "kinesisClientConfig",
  "http",
  "engine"
])

/** The keys of `options`. */
const optionKeys: ReadonlySet<string> = new Set([
  "cacheMaxBytes",
  "maxRetries",
  "flushStrategy",
  "requestTimeout",
  "countThrottling",
  "drain",
  "streamConcurrency",
  "requestsPerStream",
  "recordTtl",
  "logLevel"
])

/** Settings of the AWS SDK client that users put in the wrong place most often. */
const sdkKeys: ReadonlySet<string> = new Set([
  "endpoint",
  "requestHandler",
  "maxAttempts",
  "retryMode",
  "retryStrategy",
  "logger",
  "useFipsEndpoint",
  "useDualstackEndpoint",
  "customUserAgent"
])

/** Where a key found in the wrong place belongs, or undefined when it belongs nowhere. */
const homeOf = (key: string): string | undefined => {
  if (optionKeys.has(key)) return `options.${key}`
  if (topLevelKeys.has(key)) return `${key} at the top level of the configuration`
  if (key === "credentials") return "credentialsProvider at the top level (or kinesisClientConfig.credentials)"
  if (sdkKeys.has(key)) return `kinesisClientConfig.${key}`
  return undefined
}

/** The message for the first key of `object` not in `known`, or undefined when there is none. */
const unknownKey = (object: unknown, known: ReadonlySet<string>, where: string): string | undefined => {
  if (typeof object !== "object" || object === null) return undefined
  const key = Object.keys(object).find((name) => !known.has(name))
  if (key === undefined) return undefined
  const home = homeOf(key)
  return home === undefined
    ? `Unknown key "${key}" in ${where}: the keys are ${[...known].join(", ")}`
    : `"${key}" does not belong in ${where}: it belongs in ${home}`
}

/** Why an endpoint given as text is not an absolute http(s) URL, or undefined when it is (or is not text). */
const badEndpoint = (endpoint: unknown): string | undefined => {
  const text = endpoint instanceof URL ? endpoint.href : endpoint
  if (typeof text !== "string") return undefined
  const protocol = URL.canParse(text) ? new URL(text).protocol : undefined
  return protocol === "http:" || protocol === "https:"
    ? undefined
    : `kinesisClientConfig.endpoint must be an absolute http(s) URL such as "https://kinesis.us-east-1.amazonaws.com" or "http://127.0.0.1:4567", got ${JSON.stringify(text)}`
}

/** The configuration with its region settled (see `resolveRegion`) and its `engine` and `http` checked. */
export const resolveConfig = (
  config: KinesisClientConfig
): Effect.Effect<ResolvedClientConfig, KinesisValidationException> =>
  Effect.zipRight(
    checkPlacement(config),
    Effect.map(resolveRegion(config?.region), (region) => ({ ...config, region }))
  )

const badSetting = (message: string) =>
  Effect.fail(new KinesisValidationException({ message, recoverySuggestion: "Fix the client configuration." }))

/**
 * Checks the configuration's keys (each one known, and in its place: an unknown or misplaced key is
 * refused, naming where it belongs), the endpoint (an absolute http(s) URL when given as text),
 * where the engine runs (`engine` is `"worker"` or `"caller"`) and how it speaks HTTP
 * (`http.version` is `"1.1"` or `"2"`; `http.maxSockets` a positive integer).
 */
const checkPlacement = (config: KinesisClientConfig): Effect.Effect<void, KinesisValidationException> => {
  const misplaced = unknownKey(config, topLevelKeys, "the client configuration")
  if (misplaced !== undefined) return badSetting(misplaced)
  const endpoint = badEndpoint(config?.kinesisClientConfig?.endpoint)
  if (endpoint !== undefined) return badSetting(endpoint)
  const engine: unknown = config?.engine
  if (engine !== undefined && engine !== "worker" && engine !== "caller") {
    return badSetting(`engine must be "worker" or "caller", got ${JSON.stringify(engine)}`)
  }
  const http: unknown = config?.http
  if (http === undefined) return Effect.void
  if (typeof http !== "object" || http === null) return badSetting(`http must be an object such as { version: "1.1" }`)
  const { version, maxSockets } = http as Record<string, unknown>
  if (version !== undefined && version !== "1.1" && version !== "2") {
    return badSetting(`http.version must be "1.1" or "2", got ${JSON.stringify(version)}`)
  }
  if (
    maxSockets !== undefined &&
    (typeof maxSockets !== "number" || !Number.isSafeInteger(maxSockets) || maxSockets < 1)
  ) {
    return badSetting(`http.maxSockets must be a positive integer, got ${String(maxSockets)}`)
  }
  return Effect.void
}

/** The cache file a configuration points at. */
export const resolveCacheFile = (config: ResolvedClientConfig): string =>
  cacheFilename(config.storagePath ?? defaultStoragePath(), config.region)

const optionalString = (name: string): Config.Config<string | undefined> =>
  Config.string(name).pipe(
    Config.option,
    Config.map((value) => Option.getOrUndefined(Option.filter(value, (text) => text !== "")))
  )

const optionalInteger = (name: string): Config.Config<number | undefined> =>
  Config.integer(name).pipe(Config.option, Config.map(Option.getOrUndefined))

const optionalBoolean = (name: string): Config.Config<boolean | undefined> =>
  Config.boolean(name).pipe(Config.option, Config.map(Option.getOrUndefined))

/** The flush strategy the variables ask for: an interval (default 30 seconds) with its backoff cap, `none`, or the default. */
const strategyFromEnv = (interval: string | undefined, maxBackoff: string | undefined): FlushStrategy | undefined => {
  if (interval?.toLowerCase() === "none") return FlushNone()
  if (interval === undefined && maxBackoff === undefined) return undefined
  const fields = { interval: (interval ?? defaultInterval) as Duration.DurationInput }
  return FlushInterval(
    maxBackoff === undefined ? fields : { ...fields, maxBackoff: maxBackoff as Duration.DurationInput }
  )
}

const withoutUndefined = <A extends object>(value: A): A =>
  Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as A

/**
 * The configuration read from the environment (through Effect's `ConfigProvider`):
 *
 * | variable | setting |
 * |---|---|
 * | `AWS_REGION`, then `AWS_DEFAULT_REGION` | `region` (read when the client is made) |
 * | `AWS_ENDPOINT_URL_KINESIS`, then `AWS_ENDPOINT_URL` | `kinesisClientConfig.endpoint`, with `http: { version: "1.1" }` |
 * | `EFFECT_KINESIS_STORAGE_PATH` | `storagePath` |
 * | `EFFECT_KINESIS_FLUSH_INTERVAL` | `flushStrategy`: a duration such as `30 seconds`, or `none` for `FlushNone()` |
 * | `EFFECT_KINESIS_MAX_BACKOFF` | the flush interval's `maxBackoff`, a duration (the interval stays 30 seconds unless set above) |
 * | `EFFECT_KINESIS_CACHE_MAX_BYTES` | `options.cacheMaxBytes` (an integer) |
 * | `EFFECT_KINESIS_MAX_RETRIES` | `options.maxRetries` (an integer) |
 * | `EFFECT_KINESIS_REQUEST_TIMEOUT` | `options.requestTimeout`, a duration such as `10 seconds` |
 * | `EFFECT_KINESIS_COUNT_THROTTLING` | `options.countThrottling` (`true` or `false`) |
 * | `EFFECT_KINESIS_DRAIN` | `options.drain` (`true` or `false`) |
 * | `EFFECT_KINESIS_STREAM_CONCURRENCY` | `options.streamConcurrency` (an integer) |
 * | `EFFECT_KINESIS_REQUESTS_PER_STREAM` | `options.requestsPerStream` (an integer) |
 * | `EFFECT_KINESIS_RECORD_TTL` | `options.recordTtl`, a duration such as `1 hour` |
 * | `EFFECT_KINESIS_LOG_LEVEL` | `options.logLevel` |
 *
 * Unset or empty variables leave the default. Credentials come from the AWS SDK's own chain
 * (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`, ...). An endpoint from the environment gets HTTP/1.1
 * because local Kinesis servers (kinesalite) speak only HTTP/1.1; AWS takes it as well.
 * A malformed integer or flag fails with a `ConfigError`; other bad values with
 * `KinesisValidationException` when the client is made. `EFFECT_KINESIS_MAX_BACKOFF` with a flush
 * interval of `none` is ignored: there is no automatic flush to back off.
 */
export const fromEnv: Config.Config<KinesisClientConfig> = Config.all({
  kinesisEndpoint: optionalString("AWS_ENDPOINT_URL_KINESIS"),
  endpoint: optionalString("AWS_ENDPOINT_URL"),
  storagePath: optionalString("EFFECT_KINESIS_STORAGE_PATH"),
  flushInterval: optionalString("EFFECT_KINESIS_FLUSH_INTERVAL"),
  maxBackoff: optionalString("EFFECT_KINESIS_MAX_BACKOFF"),
  cacheMaxBytes: optionalInteger("EFFECT_KINESIS_CACHE_MAX_BYTES"),
  maxRetries: optionalInteger("EFFECT_KINESIS_MAX_RETRIES"),
  requestTimeout: optionalString("EFFECT_KINESIS_REQUEST_TIMEOUT"),
  countThrottling: optionalBoolean("EFFECT_KINESIS_COUNT_THROTTLING"),
  drain: optionalBoolean("EFFECT_KINESIS_DRAIN"),
  streamConcurrency: optionalInteger("EFFECT_KINESIS_STREAM_CONCURRENCY"),
  requestsPerStream: optionalInteger("EFFECT_KINESIS_REQUESTS_PER_STREAM"),
  recordTtl: optionalString("EFFECT_KINESIS_RECORD_TTL"),
  logLevel: optionalString("EFFECT_KINESIS_LOG_LEVEL")
}).pipe(
  Config.map((env): KinesisClientConfig => {
    const endpoint = env.kinesisEndpoint ?? env.endpoint
    const flushStrategy = strategyFromEnv(env.flushInterval, env.maxBackoff)
    return withoutUndefined({
      storagePath: env.storagePath,
      options: withoutUndefined({
        flushStrategy,
        cacheMaxBytes: env.cacheMaxBytes,
        maxRetries: env.maxRetries,
        requestTimeout: env.requestTimeout as Duration.DurationInput | undefined,
        countThrottling: env.countThrottling,
        drain: env.drain,
        streamConcurrency: env.streamConcurrency,
        requestsPerStream: env.requestsPerStream,
        recordTtl: env.recordTtl as Duration.DurationInput | undefined,
        logLevel: env.logLevel as ClientLogLevel | undefined
      }),
      kinesisClientConfig: endpoint === undefined ? undefined : { endpoint },
      http: endpoint === undefined ? undefined : { version: "1.1" as const }
    })
  })
)

/**
 * Lays `overrides` over `base`: each field of `overrides` wins; `options` and
 * `kinesisClientConfig` are merged field by field.
 */
export const merge = (base: KinesisClientConfig, overrides: KinesisClientConfig): KinesisClientConfig => ({
  ...base,
  ...overrides,
  options: { ...base.options, ...overrides.options },
  kinesisClientConfig: { ...base.kinesisClientConfig, ...overrides.kinesisClientConfig },
  ...(base.http === undefined && overrides.http === undefined ? {} : { http: { ...base.http, ...overrides.http } })
})
