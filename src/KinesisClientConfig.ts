/**
 * The settings of a client, shared by the Effect API and the Promise facade, and their defaults.
 *
 * @since 0.1.0
 */
import type { KinesisClientConfig as SdkClientConfig } from "@aws-sdk/client-kinesis"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { KinesisValidationException } from "./Errors.js"
import { defaultStrategy, type FlushStrategy } from "./FlushStrategy.js"
import { cacheFilename, defaultStoragePath } from "./RecordStorage.js"

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
}

/** Everything a client needs: where to send, how to sign, where to cache. */
export interface KinesisClientConfig {
  /** The AWS region of the streams, e.g. `"us-east-1"`. Also part of the cache file name. */
  readonly region: string
  /** Credentials, or a provider of them. Default: the AWS SDK's provider chain. */
  readonly credentialsProvider?: SdkClientConfig["credentials"]
  /** The directory of the cache database, created if missing. Default: a per-user data directory. */
  readonly storagePath?: string
  readonly options?: KinesisClientOptions
  /** Passed to the AWS SDK client as is: `endpoint`, `requestHandler`, `maxAttempts`, ... */
  readonly kinesisClientConfig?: Partial<SdkClientConfig>
}

/** The options with every default filled in. */
export interface ResolvedOptions {
  readonly cacheMaxBytes: number
  readonly maxRetries: number
  readonly flushStrategy: FlushStrategy
  readonly requestTimeout: Duration.Duration
}

/** The default cache limit: 5 MiB. */
export const defaultCacheMaxBytes = 5 * 1024 * 1024

/** The default number of retries per record. */
export const defaultMaxRetries = 5

const badOption = (message: string) =>
  Effect.fail(new KinesisValidationException({ message, recoverySuggestion: "Fix the client options." }))

/**
 * Fills in the defaults of the options and checks them: `cacheMaxBytes` a positive integer,
 * `maxRetries` a non-negative integer, the flush strategy one of `FlushInterval` / `FlushNone`, the
 * flush interval and request timeout longer than zero.
 */
export const resolveOptions = (
  options: KinesisClientOptions | undefined
): Effect.Effect<ResolvedOptions, KinesisValidationException> => {
  const cacheMaxBytes = options?.cacheMaxBytes ?? defaultCacheMaxBytes
  const maxRetries = options?.maxRetries ?? defaultMaxRetries
  const flushStrategy = options?.flushStrategy ?? defaultStrategy
  const requestTimeout = Duration.decodeUnknown(options?.requestTimeout ?? "30 seconds")
  if (!Number.isSafeInteger(cacheMaxBytes) || cacheMaxBytes <= 0) {
    return badOption(`cacheMaxBytes must be a positive integer, got ${cacheMaxBytes}`)
  }
  if (!Number.isSafeInteger(maxRetries) || maxRetries < 0) {
    return badOption(`maxRetries must be a non-negative integer, got ${maxRetries}`)
  }
  if (requestTimeout._tag === "None" || !Duration.greaterThan(requestTimeout.value, Duration.zero)) {
    return badOption("requestTimeout must be a duration longer than zero")
  }
  const strategyTag: unknown = (flushStrategy as { readonly _tag?: unknown } | null)?._tag
  if (strategyTag !== "FlushInterval" && strategyTag !== "FlushNone") {
    return badOption("flushStrategy must be FlushInterval({ interval }) or FlushNone()")
  }
  if (flushStrategy._tag === "FlushInterval") {
    const interval = Duration.decodeUnknown(flushStrategy.interval)
    if (interval._tag === "None" || !Duration.greaterThan(interval.value, Duration.zero)) {
      return badOption("The flush interval must be a duration longer than zero")
    }
  }
  return Effect.succeed({ cacheMaxBytes, maxRetries, flushStrategy, requestTimeout: requestTimeout.value })
}

/** The cache file a configuration points at. */
export const resolveCacheFile = (config: KinesisClientConfig): string =>
  cacheFilename(config.storagePath ?? defaultStoragePath(), config.region)
