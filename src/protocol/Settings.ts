/**
 * What the engine is built from when it runs on a thread of its own: plain data only, made from the
 * client's configuration on the caller's thread (`toSettings`) and turned back into options in the
 * worker (`optionsOf`). A configuration holding anything that can't be copied to another thread (a
 * request handler instance, middleware, a logger, a function) has no settings: `toSettings` names
 * the field, and the client runs its engine on the caller's thread.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { KinesisValidationException } from "../Errors.js"
import { defaultMaxBackoff, FlushInterval, FlushNone } from "../FlushStrategy.js"
import {
  type ClientLogLevel,
  type HttpSettings,
  type ResolvedClientConfig,
  type ResolvedOptions,
  resolveOptions
} from "../KinesisClientConfig.js"
import type { CredentialsIdentity } from "./Messages.js"

/** The options as plain data: durations in milliseconds, the log level by name. */
export interface OptionSettings {
  readonly cacheMaxBytes: number
  readonly maxRetries: number
  readonly flushStrategy:
    | { readonly _tag: "FlushNone" }
    | { readonly _tag: "FlushInterval"; readonly intervalMillis: number; readonly maxBackoffMillis: number }
  readonly requestTimeoutMillis: number
  readonly countThrottling: boolean
  readonly drain: boolean
  readonly streamConcurrency: number
  readonly requestsPerStream: number
  readonly recordTtlMillis: number | undefined
  readonly logLevel: ClientLogLevel
}

/** The SDK client's settings as plain data. */
export interface SdkSettings {
  readonly region: string
  /** The data fields of `kinesisClientConfig`. */
  readonly clientConfig: Readonly<Record<string, unknown>>
  readonly http?: HttpSettings | undefined
  /** Static credentials, `"ask"` (the caller's provider function is asked), or undefined for the SDK's default chain. */
  readonly credentials?: CredentialsIdentity | "ask" | undefined
}

/** Everything a worker needs to build the engine. */
export interface EngineSettings {
  /** The cache file. */
  readonly filename: string
  readonly options: OptionSettings
  readonly sdk: SdkSettings
}

/** Whether a value is plain data that crosses to another thread as it is. */
const isData = (value: unknown): boolean => {
  if (value === null || ["string", "number", "boolean", "bigint", "undefined"].includes(typeof value)) return true
  if (Array.isArray(value)) return value.every(isData)
  if (typeof value !== "object") return false
  const prototype = Object.getPrototypeOf(value)
  return (prototype === Object.prototype || prototype === null) && Object.values(value).every(isData)
}

/** The configuration's SDK settings, or the name of the first field that can't cross. */
const sdkSettings = (config: ResolvedClientConfig): SdkSettings | string => {
  const clientConfig: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(config.kinesisClientConfig ?? {})) {
    // A URL endpoint crosses as its text.
    const field = value instanceof URL ? value.href : value
    if (!isData(field)) return `kinesisClientConfig.${key}`
    clientConfig[key] = field
  }
  const provider: unknown = config.credentialsProvider
  let credentials: SdkSettings["credentials"]
  if (typeof provider === "function") credentials = "ask"
  else if (provider === undefined) credentials = undefined
  else if (typeof provider === "object" && provider !== null && isData(provider)) {
    credentials = provider as CredentialsIdentity
  } else return "credentialsProvider"
  return { region: config.region, clientConfig, http: config.http, credentials }
}

/**
 * The settings a worker builds the engine from, or the reason the configuration can't cross: the
 * name of the first field that is not plain data.
 */
export const toSettings = (
  config: ResolvedClientConfig,
  options: ResolvedOptions,
  filename: string
): EngineSettings | { readonly cannotCross: string } => {
  const sdk = sdkSettings(config)
  if (typeof sdk === "string") return { cannotCross: sdk }
  const strategy = options.flushStrategy
  return {
    filename,
    sdk,
    options: {
      cacheMaxBytes: options.cacheMaxBytes,
      maxRetries: options.maxRetries,
      flushStrategy:
        strategy._tag === "FlushNone"
          ? { _tag: "FlushNone" }
          : {
              _tag: "FlushInterval",
              intervalMillis: Duration.toMillis(strategy.interval),
              maxBackoffMillis: Duration.toMillis(strategy.maxBackoff ?? defaultMaxBackoff)
            },
      requestTimeoutMillis: Duration.toMillis(options.requestTimeout),
      countThrottling: options.countThrottling,
      drain: options.drain,
      streamConcurrency: options.streamConcurrency,
      requestsPerStream: options.requestsPerStream,
      recordTtlMillis: options.recordTtl === undefined ? undefined : Duration.toMillis(options.recordTtl),
      logLevel: options.logLevel._tag as ClientLogLevel
    }
  }
}

/** The options the settings were made from. */
const optionsOf = (settings: OptionSettings): Effect.Effect<ResolvedOptions, KinesisValidationException> => {
  const strategy = settings.flushStrategy
  return resolveOptions({
    cacheMaxBytes: settings.cacheMaxBytes,
    maxRetries: settings.maxRetries,
    flushStrategy:
      strategy._tag === "FlushNone"
        ? FlushNone()
        : FlushInterval({ interval: strategy.intervalMillis, maxBackoff: strategy.maxBackoffMillis }),
    requestTimeout: settings.requestTimeoutMillis,
    countThrottling: settings.countThrottling,
    drain: settings.drain,
    streamConcurrency: settings.streamConcurrency,
    requestsPerStream: settings.requestsPerStream,
    ...(settings.recordTtlMillis === undefined ? {} : { recordTtl: settings.recordTtlMillis }),
    logLevel: settings.logLevel
  })
}

/** `optionsOf` for the worker, where settings made by `toSettings` are valid by construction. */
export const optionsOrDie = (settings: OptionSettings): Effect.Effect<ResolvedOptions> =>
  Effect.orDie(optionsOf(settings))
