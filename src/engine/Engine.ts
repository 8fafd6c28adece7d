/**
 * The engine: the cache, the flush engine with its sender, and the automatic flush, composed into
 * the one service a host serves over a port. It knows nothing of the caller's thread: the producer
 * there validates records, answers callers and keeps the closed and disabled states the callers see.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import type { KinesisStorageException, KinesisUnknownException } from "../Errors.js"
import type { ResolvedOptions } from "../KinesisClientConfig.js"
import type { ValidRecord } from "../RecordInput.js"
import { type InsertError, RecordStorage } from "./cache/RecordStorage.js"
import * as FlushEngine from "./flush/FlushEngine.js"
import * as FlushScheduler from "./flush/FlushScheduler.js"
import type { RecordSender } from "./send/RecordSender.js"

/** How much the cache holds, as `cacheStatus()` reports it. */
export interface CacheStatus {
  /** Records in the cache. */
  readonly records: number
  /** The sum of their sizes: the byte count the cache limit is checked against. */
  readonly bytes: number
  /** How long ago the oldest cached record was stored, in milliseconds; undefined when the cache is empty. */
  readonly oldestRecordAgeMs: number | undefined
}

/** The engine's operations; each is one message from the caller's thread and one answer. */
export interface Engine {
  /** Stores records handed over together; each one's error, or undefined where it was committed. */
  readonly insert: (records: ReadonlyArray<ValidRecord>) => Effect.Effect<ReadonlyArray<InsertError | undefined>>
  /** One flush (see `FlushEngine`); `flushInProgress` when one is running or the engine is closing. */
  readonly flush: Effect.Effect<FlushEngine.FlushData, KinesisStorageException | KinesisUnknownException>
  /** Deletes every cached record; how many there were. */
  readonly clear: Effect.Effect<number, KinesisStorageException>
  /** What the cache holds. */
  readonly status: Effect.Effect<CacheStatus, KinesisStorageException>
  /** Resumes the automatic flush (the interval restarts now); no-op when running or closed. */
  readonly enable: Effect.Effect<void>
  /** Pauses the automatic flush; no-op when paused or closed. */
  readonly disable: Effect.Effect<void>
  /**
   * Stops flushing (after a final flush of at most `flushTimeout`, when given), waits for the
   * requests in flight, and releases the cache and the sender. A second call waits for the first.
   */
  readonly close: (flushTimeout: Duration.Duration | undefined) => Effect.Effect<void>
}

/** The services the engine is composed from. */
export type Dependencies = RecordStorage | RecordSender

/**
 * Builds the engine over the given storage and sender layers, in a scope of its own released by
 * `close` or, at the latest, with the surrounding scope. Its own log lines pass `options.logLevel`.
 */
export const make = <E>(
  options: ResolvedOptions,
  dependencies: Layer.Layer<Dependencies, E>
): Effect.Effect<Engine, E, Scope.Scope> => {
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
    const storage = Context.get(context, RecordStorage)
    const flushEngine = Context.get(context, FlushEngine.FlushEngine)
    const scheduler = Context.get(context, FlushScheduler.FlushScheduler)

    const enabled = yield* Ref.make(true)
    const closing = yield* Ref.make(false)
    // Scheduler changes run one at a time (see toggle for how rapid toggles end in the last state asked for).
    const schedulerLock = yield* Effect.makeSemaphore(1)
    const finished = yield* Effect.makeLatch(false)

    // The semaphore is not FIFO, so a toggle applies the state in `enabled` now (the one the last
    // toggle asked for), and skips the scheduler if that is no longer its own or close has begun.
    const toggle = (on: boolean) =>
      Effect.gen(function* () {
        if (yield* Ref.get(closing)) return
        if ((yield* Ref.getAndSet(enabled, on)) === on) return
        yield* schedulerLock.withPermits(1)(
          Effect.gen(function* () {
            if ((yield* Ref.get(closing)) || (yield* Ref.get(enabled)) !== on) return
            yield* on ? scheduler.start : scheduler.stop
          })
        )
      })

    // Close takes the flush permit itself (shutdown), so no request starts once close has begun
    // (after the final flush, with a flushTimeout); requests in flight finish. Whatever happens while
    // releasing, `finished` opens: a later close, or the scope's finalizer, never hangs.
    const release = (flushTimeout: Duration.Duration | undefined) =>
      Effect.gen(function* () {
        yield* Ref.set(enabled, false)
        yield* flushEngine.shutdown(flushTimeout)
        yield* schedulerLock.withPermits(1)(scheduler.stop)
        yield* Scope.close(resources, Exit.void)
      }).pipe(Effect.ensuring(finished.open))

    const close = (flushTimeout: Duration.Duration | undefined) =>
      Effect.flatMap(Ref.getAndSet(closing, true), (wasClosing) =>
        wasClosing ? finished.await : release(flushTimeout)
      ).pipe(Effect.uninterruptible, own)

    yield* Effect.addFinalizer(() => close(undefined))
    yield* schedulerLock.withPermits(1)(scheduler.start)

    // The age is never negative, even if the wall clock was set back since the record was stored.
    const status = Effect.zipWith(
      storage.status,
      Clock.currentTimeMillis,
      (cached, now): CacheStatus => ({
        records: cached.records,
        bytes: cached.bytes,
        oldestRecordAgeMs: cached.oldestCreatedAt === undefined ? undefined : Math.max(0, now - cached.oldestCreatedAt)
      })
    )

    const engine: Engine = {
      insert: storage.insertAll,
      flush: own(flushEngine.flush),
      clear: own(storage.clear),
      status,
      enable: own(toggle(true)),
      disable: own(toggle(false)),
      close
    }
    return engine
  }).pipe(own)
}
