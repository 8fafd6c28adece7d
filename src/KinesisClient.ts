/**
 * The public client: record into the durable cache, flush it to Kinesis on demand or on a timer,
 * clear it, see how much it holds, pause and resume collection, close.
 *
 * @example
 * import { Effect } from "effect"
 * import { KinesisClient } from "effect-kinesis"
 *
 * const program = Effect.gen(function* () {
 *   const kinesis = yield* KinesisClient.KinesisClient
 *   yield* kinesis.record({ data: new TextEncoder().encode("hello"), partitionKey: "p1", streamName: "events" })
 *   const { recordsFlushed } = yield* kinesis.flush()
 * })
 *
 * program.pipe(Effect.provide(KinesisClient.layer({ region: "us-east-1" })), Effect.scoped, Effect.runPromise)
 *
 * @since 0.1.0
 */
import type { KinesisClient as SdkClient } from "@aws-sdk/client-kinesis"
import * as Chunk from "effect/Chunk"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Sink from "effect/Sink"
import {
  type ClientClosedException,
  type KinesisLimitExceededException,
  KinesisStorageException,
  type KinesisUnknownException,
  KinesisValidationException
} from "./Errors.js"
import * as CacheFile from "./engine/cache/cacheFile.js"
import * as RecordStorage from "./engine/cache/RecordStorage.js"
import * as Engine from "./engine/Engine.js"
import type * as FlushEngine from "./engine/flush/FlushEngine.js"
import * as RecordSender from "./engine/send/RecordSender.js"
import {
  type CloseOptions,
  fromEnv,
  type KinesisClientConfig,
  merge,
  type ResolvedClientConfig,
  type ResolvedOptions,
  resolveCacheFile,
  resolveCloseOptions,
  resolveConfig,
  resolveOptions
} from "./KinesisClientConfig.js"
import * as Bridge from "./producer/Bridge.js"
import { type Connect, inThreadConnect, workerConnect } from "./producer/Connection.js"
import { type CallAnswer, Producer } from "./producer/Producer.js"
import type { Call } from "./protocol/Messages.js"
import { toSettings } from "./protocol/Settings.js"
import type { RecordInput } from "./RecordInput.js"

export type { CacheStatus } from "./engine/Engine.js"
export type { FlushData } from "./engine/flush/FlushEngine.js"
export type {
  ClientLogLevel,
  CloseOptions,
  HttpSettings,
  KinesisClientConfig,
  KinesisClientOptions
} from "./KinesisClientConfig.js"
export type { RecordInput } from "./RecordInput.js"

/** What a successful `record()` returns: nothing more than the fact that the record is stored. */
export type RecordData = Record<string, never>

/** What `clearCache()` returns. */
export interface ClearCacheData {
  /** How many records were deleted. */
  readonly recordsCleared: number
}

/** Why one record was not stored. */
export type RecordError =
  | KinesisValidationException
  | KinesisLimitExceededException
  | KinesisStorageException
  | KinesisUnknownException
  | ClientClosedException

/** The client service. Every operation fails with a typed error; none rejects with a defect. */
export interface KinesisClient {
  /**
   * Validates the record and commits it to the local cache. Disabled: succeeds and drops the record.
   * Fails with `KinesisValidationException` (bad input), `KinesisLimitExceededException` (cache
   * full), `KinesisStorageException` (the cache failed, or its engine stopped before it answered:
   * the record may then have been stored) or `ClientClosedException`. No fiber is started: the
   * calling fiber waits for the answer.
   */
  readonly record: (input: RecordInput) => Effect.Effect<RecordData, RecordError>
  /**
   * Hands many records over at once and gives one outcome per input, in input order: `Right` when
   * it is stored, `Left` with the reason otherwise. An invalid record, or one over the cache limit,
   * fails alone: the others are stored. Disabled: every outcome is `Right` and nothing is stored.
   */
  readonly recordAll: (
    inputs: Iterable<RecordInput>
  ) => Effect.Effect<ReadonlyArray<Either.Either<RecordData, RecordError>>>
  /**
   * A sink of records for Effect streams: each chunk is handed over with `recordAll`, the next one
   * pulled only once it is stored (backpressure). It fails with the first record refused, once the
   * chunk it came in is settled: the records before it are stored, and so are the others of that
   * chunk that were not refused.
   */
  readonly sink: Sink.Sink<void, RecordInput, never, RecordError>
  /**
   * Sends one batch per stream now (with `drain`, each stream's batches until it is empty), up to
   * `streamConcurrency` streams at once; works while disabled. See `FlushEngine` for the rules.
   */
  readonly flush: () => Effect.Effect<
    FlushEngine.FlushData,
    KinesisStorageException | KinesisUnknownException | ClientClosedException
  >
  /** Deletes every cached record; works while disabled. */
  readonly clearCache: () => Effect.Effect<ClearCacheData, KinesisStorageException | ClientClosedException>
  /** How many records and bytes the cache holds, and the age of the oldest; works while disabled. */
  readonly cacheStatus: () => Effect.Effect<Engine.CacheStatus, KinesisStorageException | ClientClosedException>
  /** Resumes collecting records and automatic flushing; the interval restarts now. No-op when enabled or closed. */
  readonly enable: () => Effect.Effect<void>
  /** Drops new records and pauses automatic flushing; cached records stay. No-op when disabled or closed. */
  readonly disable: () => Effect.Effect<void>
  /**
   * Stops automatic flushing, waits for a flush in progress, closes the cache and the SDK client.
   * With `flushTimeout`, first flushes as with `drain: true` for at most that long (see
   * `CloseOptions`); an invalid `flushTimeout` is logged as a warning and the client closes without
   * the final flush. Idempotent: a later call waits for the first, whatever its options.
   */
  readonly close: (options?: CloseOptions) => Effect.Effect<void>
  /** Whether records are collected (false once closed). */
  readonly isEnabled: Effect.Effect<boolean>
  /** Whether `close` has started. */
  readonly isClosed: Effect.Effect<boolean>
  /**
   * An AWS SDK client for Kinesis calls this library does not cover, on the caller's thread, built
   * on first use from the same configuration. Middleware added to it does not reach the engine's
   * own requests, which its own SDK client sends.
   */
  readonly kinesisClient: SdkClient
}

/** The `KinesisClient` service tag. */
export const KinesisClient = Context.GenericTag<KinesisClient>("effect-kinesis/KinesisClient")

/** The services a client's engine is composed from. */
export type Dependencies = Engine.Dependencies

const producers = new WeakMap<KinesisClient, Producer>()

/**
 * The producer behind a client: the callback-level entry the Promise facade calls.
 *
 * @internal
 */
export const producerOf = (client: KinesisClient): Producer => producers.get(client)!

/** Lifts a call of the producer: the calling fiber waits for its answer. */
const callOf = <A, E>(producer: Producer, call: Exclude<Call, { _tag: "Close" }>): Effect.Effect<A, E> =>
  Effect.flatMap(Effect.currentSpan.pipe(Effect.option), (span) =>
    Effect.async<A, E>((resume) => {
      const answer: CallAnswer = (error, value) =>
        resume(error === undefined ? Effect.succeed(value as A) : Effect.fail(error as E))
      producer.call(call, answer, Option.getOrUndefined(span))
    })
  )

/**
 * A client over a started producer; closing the surrounding scope closes it. `sdkClient` builds the
 * escape hatch on first use.
 */
const fromProducer = (
  producer: Producer,
  sdkClient: () => SdkClient
): Effect.Effect<KinesisClient, never, Scope.Scope> =>
  Effect.gen(function* () {
    let escapeHatch: SdkClient | undefined
    const closeWith = (options?: CloseOptions) =>
      Effect.flatMap(
        Effect.catchAll(resolveCloseOptions(options), (error) =>
          Effect.as(Effect.logWarning(`${error.message}: closing without a final flush`), Option.none())
        ),
        (flushTimeout) =>
          Effect.promise(() =>
            producer.close(Option.getOrUndefined(Option.map(flushTimeout, Duration.toMillis))).then(() => {
              escapeHatch?.destroy()
            })
          )
      ).pipe(Effect.uninterruptible, Effect.withSpan("KinesisClient.close"))
    yield* Effect.addFinalizer(() => closeWith())

    const record = (input: RecordInput) =>
      Effect.async<RecordData, RecordError>((resume) =>
        producer.record(input, (error) =>
          resume(error === undefined ? Effect.succeed({}) : Effect.fail(error as RecordError))
        )
      )
    const recordAll = (inputs: Iterable<RecordInput>) =>
      Effect.async<ReadonlyArray<Either.Either<RecordData, RecordError>>>((resume) =>
        producer.recordAll(inputs, (outcomes) =>
          resume(
            Effect.succeed(
              outcomes.map((error) =>
                error === undefined ? Either.right<RecordData>({}) : Either.left(error as RecordError)
              )
            )
          )
        )
      )

    const client: KinesisClient = KinesisClient.of({
      record,
      recordAll,
      sink: Sink.forEachChunk((chunk: Chunk.Chunk<RecordInput>) =>
        Effect.flatMap(recordAll(Chunk.toReadonlyArray(chunk)), (outcomes) => {
          const refused = outcomes.find(Either.isLeft)
          return refused === undefined ? Effect.void : Effect.fail(refused.left)
        })
      ),
      flush: () =>
        callOf<FlushEngine.FlushData, KinesisStorageException | KinesisUnknownException | ClientClosedException>(
          producer,
          { _tag: "Flush" }
        ).pipe(Effect.withSpan("KinesisClient.flush")),
      clearCache: () =>
        callOf<number, KinesisStorageException | ClientClosedException>(producer, { _tag: "Clear" }).pipe(
          Effect.map((recordsCleared) => ({ recordsCleared })),
          Effect.withSpan("KinesisClient.clearCache")
        ),
      cacheStatus: () =>
        callOf<Engine.CacheStatus, KinesisStorageException | ClientClosedException>(producer, { _tag: "Status" }).pipe(
          Effect.withSpan("KinesisClient.cacheStatus")
        ),
      enable: () => Effect.async<void>((resume) => producer.enable(() => resume(Effect.void))),
      disable: () => Effect.async<void>((resume) => producer.disable(() => resume(Effect.void))),
      close: closeWith,
      isEnabled: Effect.sync(() => producer.isEnabled),
      isClosed: Effect.sync(() => producer.isClosed),
      get kinesisClient() {
        escapeHatch ??= sdkClient()
        return escapeHatch
      }
    })
    producers.set(client, producer)
    return client
  })

/** Starts the producer on a connection; the engine's open failures come back as they are. */
const open = (
  connect: Connect,
  bridge: Bridge.Bridge
): Effect.Effect<Producer, KinesisStorageException | KinesisValidationException> =>
  Effect.tryPromise({
    try: () => Producer.open(connect, bridge),
    catch: (error) =>
      error instanceof KinesisStorageException || error instanceof KinesisValidationException
        ? error
        : new KinesisStorageException({ message: "The client's engine could not start", cause: error })
  })

/** The engine on this thread, over a `MessageChannel`, built from `dependencies` on the caller's runtime. */
const onThisThread = <E>(
  runtime: Runtime.Runtime<never>,
  options: ResolvedOptions,
  dependencies: Layer.Layer<Dependencies, E>
): Connect => inThreadConnect(Runtime.runFork(runtime), () => Engine.make(options, dependencies))

/**
 * Builds a client whose engine runs on this thread over the given storage and sender layers: how
 * the tests (and `effect-kinesis/testing`) swap in a cache on `:memory:` or an in-memory Kinesis.
 * The engine's clock, logger and tracer are the calling fiber's. The client closes with the scope,
 * or with `close()`.
 */
export const makeWith = <E>(
  options: ResolvedOptions,
  dependencies: Layer.Layer<Dependencies, E>,
  sdkClient: () => SdkClient = () => RecordSender.makeSdkClient({ region: "us-east-1" })
): Effect.Effect<KinesisClient, E | KinesisStorageException | KinesisValidationException, Scope.Scope> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const producer = yield* open(
      onThisThread(runtime, options, dependencies),
      Bridge.make(runtime, options.logLevel, undefined)
    )
    return yield* fromProducer(producer, sdkClient)
  })

/** The real storage and sender for a configuration, for an engine on this thread. */
export const dependencies = (
  config: ResolvedClientConfig,
  options: ResolvedOptions
): Layer.Layer<Dependencies, KinesisStorageException> =>
  Layer.merge(
    RecordStorage.layer({ filename: resolveCacheFile(config), cacheMaxBytes: options.cacheMaxBytes }),
    RecordSender.layer(config, options.requestTimeout)
  )

/**
 * Builds a client from its configuration: settles the region (see `KinesisClientConfig.resolveRegion`),
 * opens the cache in `storagePath`, starts the engine (on a worker thread unless the configuration
 * can't cross, or `engine: "caller"`), starts automatic flushing. Fails with
 * `KinesisValidationException` for a missing or malformed region or bad options, and with
 * `KinesisStorageException` when the cache can't be opened or another client owns it.
 */
export const make = (
  config: KinesisClientConfig
): Effect.Effect<KinesisClient, KinesisValidationException | KinesisStorageException, Scope.Scope> =>
  Effect.gen(function* () {
    const resolved = yield* resolveConfig(config)
    const options = yield* resolveOptions(resolved.options)
    const filename = resolveCacheFile(resolved)
    const runtime = yield* Effect.runtime<never>()
    const provider = typeof resolved.credentialsProvider === "function" ? resolved.credentialsProvider : undefined
    const bridge = Bridge.make(runtime, options.logLevel, provider)
    const settings = toSettings(resolved, options, filename)
    let connect: Connect
    if (resolved.engine === "caller" || "cannotCross" in settings) {
      if ("cannotCross" in settings) {
        if (resolved.engine === "worker") {
          return yield* new KinesisValidationException({
            message: `engine "worker" was asked for, but ${settings.cannotCross} can't be copied to another thread`,
            recoverySuggestion: `Use data only in ${settings.cannotCross} (for HTTP/1.1, the http option), or leave engine out.`
          })
        }
        yield* Effect.logInfo(
          `The client's engine runs on this thread: ${settings.cannotCross} can't be copied to a worker thread`
        ).pipe(Effect.annotateLogs({ field: settings.cannotCross }), Logger.withMinimumLogLevel(options.logLevel))
      }
      connect = onThisThread(runtime, options, dependencies(resolved, options))
    } else {
      // A file owned by another client is refused here at once, before any thread starts.
      if (filename !== CacheFile.inMemory) yield* CacheFile.claimFile(filename)
      connect = workerConnect(settings)
    }
    const producer = yield* open(connect, bridge)
    return yield* fromProducer(producer, () => RecordSender.makeSdkClient(resolved))
  })

/** The client as a layer; closing the layer's scope closes the client. */
export const layer = (
  config: KinesisClientConfig
): Layer.Layer<KinesisClient, KinesisValidationException | KinesisStorageException> =>
  Layer.scoped(KinesisClient, make(config))

/**
 * The client as a layer whose settings come from Effect `Config`.
 *
 * @example
 * KinesisClient.layerConfig({ region: Config.string("AWS_REGION"), storagePath: Config.string("CACHE_DIR") })
 */
export const layerConfig = (
  config: Config.Config.Wrap<KinesisClientConfig>
): Layer.Layer<KinesisClient, KinesisValidationException | KinesisStorageException | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))

/**
 * The client as a layer configured from the environment (see `KinesisClientConfig.fromEnv` for the
 * variables: `AWS_REGION`, `AWS_ENDPOINT_URL_KINESIS`, `EFFECT_KINESIS_STORAGE_PATH`, ...), with
 * `overrides` laid over it (`options` and `kinesisClientConfig` merged field by field).
 *
 * @example
 * // AWS_REGION=eu-west-1 EFFECT_KINESIS_STORAGE_PATH=/var/lib/app/kinesis node app.js
 * const KinesisLive = KinesisClient.layerFromEnv({ options: { logLevel: "Info" } })
 */
export const layerFromEnv = (
  overrides: KinesisClientConfig = {}
): Layer.Layer<KinesisClient, KinesisValidationException | KinesisStorageException | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(fromEnv, (env) => layer(merge(env, overrides))))
