/**
 * The options the commands share (where the cache is, which region and endpoint), duration options,
 * and the client configuration they make together with the environment.
 *
 * @since 0.1.0
 */

import * as path from "node:path"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { isInUse } from "../engine/cache/cacheFile.js"
import { defaultStoragePath } from "../engine/cache/RecordStorage.js"
import { FlushNone } from "../FlushStrategy.js"
import * as KinesisClient from "../KinesisClient.js"
import * as KinesisClientConfig from "../KinesisClientConfig.js"
import { BadInput, CacheInUse } from "./CliError.js"
import * as Durations from "./Durations.js"

const invalid = (message: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(message)))

/** A duration option written `500ms`, `2s`, `1m`, `1h`, with its default. */
export const duration = (name: string, fallback: string, description: string): Options.Options<Duration.Duration> =>
  Options.text(name).pipe(
    Options.withPseudoName("DURATION"),
    Options.withDescription(`${description} Written 500ms, 2s, 1m, 1h. Default ${fallback}.`),
    Options.withDefault(fallback),
    Options.mapEffect((text) =>
      Option.match(Durations.parse(text), {
        onNone: () =>
          invalid(`--${name} takes a duration of 1ms or more such as 500ms, 2s or 1m, got ${JSON.stringify(text)}`),
        onSome: Effect.succeed
      })
    )
  )

/**
 * An option that takes a text value and may be left out: `--name VALUE`. `problem` tells what is
 * wrong with a value, if anything: the command line is refused with it.
 */
export const optionalText = (
  name: string,
  value: string,
  description: string,
  problem: (text: string) => string | undefined = (text) => (text === "" ? "may not be empty" : undefined)
): Options.Options<Option.Option<string>> =>
  Options.text(name).pipe(
    Options.withPseudoName(value),
    Options.withDescription(description),
    Options.mapEffect((text) => {
      const wrong = problem(text)
      return wrong === undefined ? Effect.succeed(text) : invalid(`--${name} ${wrong}, got ${JSON.stringify(text)}`)
    }),
    Options.optional
  )

/** Why `text` is not an http(s) URL, if it is not. */
const endpointProblem = (text: string): string | undefined => {
  try {
    const url = new URL(text)
    return url.protocol === "http:" || url.protocol === "https:" ? undefined : "takes an http:// or https:// URL"
  } catch {
    return "takes a URL such as http://127.0.0.1:4567"
  }
}

/** Where the cache is and which region it serves. */
export interface CacheSettings {
  readonly cache: Option.Option<string>
  readonly region: Option.Option<string>
}

/** Where records go: a cache, and the endpoint to send to. */
export interface ConnectionSettings extends CacheSettings {
  readonly endpoint: Option.Option<string>
}

/** `--cache DIR` and `--region`: every command that opens a cache takes them. */
export const cacheSettings = {
  cache: optionalText(
    "cache",
    "DIR",
    "The cache directory. Default: EFFECT_KINESIS_STORAGE_PATH, else the cli folder of the library's per-user data directory."
  ),
  region: optionalText(
    "region",
    "REGION",
    "The AWS region of the streams; also part of the cache file's name. Default: AWS_REGION, then AWS_DEFAULT_REGION."
  )
}

/** The cache settings, and `--endpoint` for the commands that send. */
export const connectionSettings = {
  ...cacheSettings,
  endpoint: optionalText(
    "endpoint",
    "URL",
    "Send to this Kinesis endpoint (a local one such as kinesalite, over HTTP/1.1) instead of AWS. Default: AWS_ENDPOINT_URL_KINESIS, then AWS_ENDPOINT_URL.",
    endpointProblem
  )
}

/** The cache directory the command line uses when neither `--cache` nor `EFFECT_KINESIS_STORAGE_PATH` names one. */
const defaultCacheDirectory = (): string => path.join(defaultStoragePath(), "cli")

/** The cache limit of the command line, unless `EFFECT_KINESIS_CACHE_MAX_BYTES` says otherwise: 256 MiB. */
export const defaultCacheMaxBytes = 256 * 1024 * 1024

/**
 * The client configuration of a command: the environment (`KinesisClientConfig.fromEnv`) with the
 * command line's options over it. The command drives every flush itself (`FlushNone`), one batch per
 * stream at a time (`drain: false`), so its counts move batch by batch.
 */
export const clientConfig = (
  settings: ConnectionSettings | CacheSettings
): Effect.Effect<KinesisClientConfig.KinesisClientConfig, ConfigError.ConfigError | BadInput> =>
  Effect.flatMap(KinesisClientConfig.fromEnv, (env) => {
    const endpoint = "endpoint" in settings ? Option.getOrUndefined(settings.endpoint) : undefined
    const fromEnvironment = env.kinesisClientConfig?.endpoint
    const problem = typeof fromEnvironment === "string" ? endpointProblem(fromEnvironment) : undefined
    if (endpoint === undefined && problem !== undefined) {
      return new BadInput({
        message: `The endpoint of AWS_ENDPOINT_URL_KINESIS or AWS_ENDPOINT_URL ${problem}, got ${JSON.stringify(fromEnvironment)}`
      })
    }
    return Effect.succeed(
      KinesisClientConfig.merge(
        { ...env, storagePath: env.storagePath ?? defaultCacheDirectory() },
        {
          ...(Option.isSome(settings.region) ? { region: settings.region.value } : {}),
          ...(Option.isSome(settings.cache) ? { storagePath: settings.cache.value } : {}),
          options: {
            cacheMaxBytes: env.options?.cacheMaxBytes ?? defaultCacheMaxBytes,
            flushStrategy: FlushNone(),
            drain: false
          },
          kinesisClientConfig: endpoint === undefined ? {} : { endpoint },
          ...(endpoint === undefined ? {} : { http: { version: "1.1" as const } })
        }
      )
    )
  })

/** The cache file a configuration points at, and the region it settles on. */
export const cacheFileOf = (config: KinesisClientConfig.KinesisClientConfig) =>
  Effect.map(KinesisClientConfig.resolveConfig(config), (resolved) => ({
    cacheFile: KinesisClientConfig.resolveCacheFile(resolved),
    region: resolved.region
  }))

/** Opens the client; a cache another process holds fails with `CacheInUse` (exit 3), before any input is read. */
export const openClient = (config: KinesisClientConfig.KinesisClientConfig, cacheFile: string) =>
  KinesisClient.make(config).pipe(
    Effect.catchIf(
      (error) => error._tag === "KinesisStorageException" && isInUse(error),
      () =>
        new CacheInUse({
          message: `The cache ${cacheFile} is in use by another process: wait for it, or give this command another --cache`
        })
    )
  )
