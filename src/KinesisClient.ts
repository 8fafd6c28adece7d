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
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import {
  ClientClosedException,
  type KinesisLimitExceededException,
  KinesisStorageException,
  type KinesisUnknownException,
  type KinesisValidationException
} from "./Errors.js"
import * as RecordStorage from "./engine/cache/RecordStorage.js"
import * as FlushEngine from "./engine/flush/FlushEngine.js"
import * as FlushScheduler from "./engine/flush/FlushScheduler.js"
import * as RecordSender from "./engine/send/RecordSender.js"
import * as EventLoop from "./internal/eventLoop.js"
import * as WorkerStorage from "./internal/workerStorage.js"
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
import { type RecordInput, validate } from "./RecordInput.js"

export type { FlushData } from "./engine/flush/FlushEngine.js"
export type { ClientLogLevel, CloseOptions, KinesisClientConfig, KinesisClientOptions } from "./KinesisClientConfig.js"
export type { RecordInput } from "./RecordInput.js"

/** What a successful `record()` returns: nothing more than the fact that the record is stored. */
export type RecordData = Record<string, never>

/** What `clearCache()` returns. */
export interface ClearCacheData {
  /** How many records were deleted. */
  readonly recordsCleared: number
}

/** How much the cache holds, as `cacheStatus()` reports it. */
export interface CacheStatus {
  /** Records in the cache. */
  readonly records: number
  /** The sum of their sizes: the byte count the cache limit is checked against. */
  readonly bytes: number
  /** How long ago the oldest cached record was stored, in milliseconds; undefined when the cache is empty. */
  readonly oldestRecordAgeMs: number | undefined
}

/** The client service. Every operation fails with a typed error; none rejects with a defect. */
export interface KinesisClient {
  /**
   * Validates the record and commits it to the local cache. Disabled: succeeds and drops the record.
   * Fails with `KinesisValidationException` (bad input), `KinesisLimitExceededException` (cache
   * full), `KinesisStorageException` or `ClientClosedException`.
   */
  readonly record: (
    input: RecordInput
  ) => Effect.Effect<
    RecordData,
    | KinesisValidationException
    | KinesisLimitExceededException
    | KinesisStorageException
    | KinesisUnknownException
    | ClientClosedException
  >
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
  readonly cacheStatus: () => Effect.Effect<CacheStatus, KinesisStorageException | ClientClosedException>
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
  /** The AWS SDK client, for Kinesis calls this library does not cover. */
  readonly kinesisClient: SdkClient
}

/** The `KinesisClient` service tag. */
export const KinesisClient = Context.GenericTag<KinesisClient>("effect-kinesis/KinesisClient")

/** The services a client is composed from. */
export type Dependencies = RecordStorage.RecordStorage | RecordSender.RecordSender

const closedError = () =>
  new ClientClosedException({ message: "The client is closed", recoverySuggestion: "Create a new client." })

/**
 * Builds a client over the given storage and sender layers. The layers are built in a scope of the
 * client's own, released by `close()` or, at the latest, when the surrounding scope closes. The
 * client's own log lines (building, operations, the automatic flush) pass `options.logLevel`.
 */
export const makeWith = <E>(
  options: ResolvedOptions,
  dependencies: Layer.Layer<Dependencies, E>
): Effect.Effect<KinesisClient, E, Scope.Scope> => {
  // Fibers inherit the level from the fiber that forks them: the automatic flush gets it from
  // building or from enable().
  const own = Logger.withMinimumLogLevel(options.logLevel)
  return Effect.gen(function* () {
    const resources = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      FlushScheduler.layer(options.flushStrategy).pipe(
        Layer.provideMerge(FlushEngine.layer(options)),
        Layer.provideMerge(dependencies)
      ),
      resources
    ).pipe(Effect.onError((cause) => Scope.close(resources, Exit.failCause(cause))))
    const storage = Context.get(context, RecordStorage.RecordStorage)
    const sender = Context.get(context, RecordSender.RecordSender)
    const engine = Context.get(context, FlushEngine.FlushEngine)
    const scheduler = Context.get(context, FlushScheduler.FlushScheduler)

    const enabled = yield* Ref.make(true)
    const closed = yield* Ref.make(false)
    // Scheduler changes run one at a time (see toggle for how rapid toggles end in the last state asked for).
    const schedulerLock = yield* Effect.makeSemaphore(1)
    const finished = yield* Effect.makeLatch(false)

    // An operation that passed the check just before close began can find the cache closed under
    // it; what its caller learns then is that the client was closed, not a storage failure.
    const whenOpen = <A, Err>(effect: Effect.Effect<A, Err>): Effect.Effect<A, Err | ClientClosedException> =>
      Effect.flatMap(
        Ref.get(closed),
        (isClosed): Effect.Effect<A, Err | ClientClosedException> =>
          isClosed
            ? Effect.fail(closedError())
            : Effect.catchAll(
                effect,
                (error): Effect.Effect<never, Err | ClientClosedException> =>
                  error instanceof KinesisStorageException
                    ? Effect.flatMap(Ref.get(closed), (closedSince) => Effect.fail(closedSince ? closedError() : error))
                    : Effect.fail(error)
              )
      )

    // The semaphore is not FIFO (a caller arriving just as it is released can overtake the waiters),
    // so a toggle must not apply the state it asked for: under the lock it applies the state in
    // `enabled` now, the one the last toggle asked for, and skips the scheduler if that is no longer
    // its own (a later toggle will apply it) or the client has started closing.
    const toggle = (on: boolean) =>
      Effect.gen(function* () {
        if (yield* Ref.get(closed)) return
        if ((yield* Ref.getAndSet(enabled, on)) === on) return
        yield* schedulerLock.withPermits(1)(
          Effect.gen(function* () {
            if ((yield* Ref.get(closed)) || (yield* Ref.get(enabled)) !== on) return
            yield* on ? scheduler.start : scheduler.stop
          })
        )
      })

    // Close takes the flush permit itself (engine.shutdown), so no request starts once close has
    // begun (after the final flush, with a flushTimeout); requests in flight finish, and a flush in
    // progress starts no further batch. Whatever happens while releasing, `finished` opens: a later
    // close, or the scope's finalizer, never hangs.
    const release = (flushTimeout: Option.Option<Duration.Duration>) =>
      Effect.gen(function* () {
        yield* Ref.set(enabled, false)
        yield* engine.shutdown(Option.getOrUndefined(flushTimeout))
        yield* schedulerLock.withPermits(1)(scheduler.stop)
        yield* Scope.close(resources, Exit.void)
      }).pipe(Effect.ensuring(finished.open))

    // close returns Effect<void>: a bad flushTimeout can't fail it, so it is reported and the client
    // closes as close() would.
    const finalFlushTimeout = (options: CloseOptions | undefined) =>
      Effect.catchAll(resolveCloseOptions(options), (error) =>
        Effect.as(Effect.logWarning(`${error.message}: closing without a final flush`), Option.none())
      )

    const close = (options?: CloseOptions) =>
      Effect.flatMap(Ref.getAndSet(closed, true), (wasClosed) =>
        wasClosed ? finished.await : Effect.flatMap(finalFlushTimeout(options), release)
      ).pipe(Effect.uninterruptible, Effect.withSpan("KinesisClient.close"))

    yield* Effect.addFinalizer(() => own(close()))
    yield* schedulerLock.withPermits(1)(scheduler.start)

    // The answer from the cache comes from its actor, which lets the event loop turn on its own.
    const record = (input: RecordInput) =>
      Effect.flatMap(Ref.get(enabled), (on) =>
        on
          ? Effect.as(Effect.flatMap(answerAfterTurn(validate(input), "failure"), storage.insert), {})
          : answerAfterTurn(Effect.succeed({}))
      )

    // A flush turned away because close holds the permit reports the closed client, not a flush in progress.
    const flush = Effect.flatMap(engine.flush, (data) =>
      data.flushInProgress ? Effect.as(failIfClosed, data) : Effect.succeed(data)
    )
    const failIfClosed = Effect.flatMap(Ref.get(closed), (isClosed) =>
      isClosed ? Effect.fail(closedError()) : Effect.void
    )

    // The age is never negative, even if the wall clock was set back since the record was stored.
    const cacheStatus = Effect.zipWith(
      storage.status,
      Clock.currentTimeMillis,
      (status, now): CacheStatus => ({
        records: status.records,
        bytes: status.bytes,
        oldestRecordAgeMs: status.oldestCreatedAt === undefined ? undefined : Math.max(0, now - status.oldestCreatedAt)
      })
    )

    return KinesisClient.of({
      // record logs nothing of its own, and setting the level around each call would cost the hot
      // path a large share of its throughput; every other operation runs at the client's level.
      record: (input) => answerAfterTurn(whenOpen(record(input)), "failure"),
      flush: () => answerAfterTurn(whenOpen(flush)).pipe(Effect.withSpan("KinesisClient.flush"), own),
      clearCache: () =>
        answerAfterTurn(whenOpen(storage.clear)).pipe(
          Effect.map((recordsCleared) => ({ recordsCleared })),
          Effect.withSpan("KinesisClient.clearCache"),
          own
        ),
      cacheStatus: () =>
        answerAfterTurn(whenOpen(cacheStatus), "failure").pipe(Effect.withSpan("KinesisClient.cacheStatus"), own),
      enable: () => own(toggle(true)),
      disable: () => own(toggle(false)),
      close: (options) => own(close(options)),
      isEnabled: Ref.get(enabled),
      isClosed: Ref.get(closed),
      kinesisClient: sender.sdkClient
    })
  }).pipe(own)
}

/**
 * Lets the event loop turn before the answer when it came without I/O (a disabled or closed client,
 * invalid input, a flush already running): a caller that retries in a loop would otherwise hold off
 * every timer and socket, the answer to the request in flight included.
 */
const answerAfterTurn = <A, E>(
  effect: Effect.Effect<A, E>,
  on: "always" | "failure" = "always"
): Effect.Effect<A, E> =>
  on === "always" ? Effect.onExit(effect, () => EventLoop.turn) : Effect.tapErrorCause(effect, () => EventLoop.turn)

/** The real storage and sender for a configuration. */
export const dependencies = (
  config: ResolvedClientConfig,
  options: ResolvedOptions
): Layer.Layer<Dependencies, KinesisStorageException> =>
  Layer.merge(
    WorkerStorage.layer({ filename: resolveCacheFile(config), cacheMaxBytes: options.cacheMaxBytes }),
    RecordSender.layer(config, options.requestTimeout)
  )

/**
 * Builds a client from its configuration: settles the region (see `KinesisClientConfig.resolveRegion`),
 * opens the cache in `storagePath`, creates the SDK client, starts automatic flushing. Fails with
 * `KinesisValidationException` for a missing or malformed region or bad options, and with
 * `KinesisStorageException` when the cache can't be opened or another client owns it.
 */
export const make = (
  config: KinesisClientConfig
): Effect.Effect<KinesisClient, KinesisValidationException | KinesisStorageException, Scope.Scope> =>
  Effect.flatMap(resolveConfig(config), (resolved) =>
    Effect.flatMap(resolveOptions(resolved.options), (options) => makeWith(options, dependencies(resolved, options)))
  )

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
