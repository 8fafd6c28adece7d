/**
 * The automatic flush: a background fiber that runs the flush engine on the `FlushStrategy`.
 *
 * With `FlushInterval(d)` the first flush comes `d` after the loop starts, and each next one `d`
 * after the previous one ended, so flushes never pile up. After trouble the waits follow
 * `Backoff.schedule`: after `k` troubled flushes in a row a random time between half and all of
 * `min(maxBackoff, d * 2^k)`, never less than `d`; after an untroubled one, `d` again. A failed flush is logged and the loop goes on. With
 * `FlushNone` there is no loop. The wait between flushes is an `unref()`ed timer, so an
 * open client never keeps the Node process alive by itself.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberHandle from "effect/FiberHandle"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { defaultMaxBackoff, type FlushStrategy } from "../../FlushStrategy.js"
import { unrefTimers } from "../../internal/unrefTimers.js"
import { engineMetrics } from "../metrics.js"
import * as Telemetry from "../telemetry.js"
import * as Backoff from "./Backoff.js"
import { FlushEngine } from "./FlushEngine.js"

/** The scheduler service. */
export interface FlushScheduler {
  /** Starts the loop afresh: the next automatic flush comes one full interval from now. */
  readonly start: Effect.Effect<void>
  /** Stops the loop; an automatic flush in progress is finished first, never cut off. */
  readonly stop: Effect.Effect<void>
}

/** The `FlushScheduler` service tag. */
export const FlushScheduler = Context.GenericTag<FlushScheduler>("effect-kinesis/FlushScheduler")

/** The waits before automatic flushes that came after trouble, in milliseconds. */
export const backoffWaits = engineMetrics.effect_kinesis_backoff_wait_ms

/** Reports a wait that comes after trouble: a log line and the backoff histogram. */
const reportBackoff = (wait: Backoff.Wait): Effect.Effect<void> =>
  !wait.backoff
    ? Effect.void
    : Effect.zipRight(
        Telemetry.update("effect_kinesis_backoff_wait_ms", undefined, wait.millis),
        Effect.logInfo(
          `Backing off after throttling, a service failure or no response: the next flush in ${wait.millis} ms`
        )
      )

/** Logs a failed automatic flush by message only: the loop goes on, whatever the cause. */
const logFailure = (cause: Cause.Cause<Error>) => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return Effect.logWarning(`Automatic flush failed: ${failure.value.message}`)
  const defect = Cause.squash(cause)
  return Effect.logWarning(`Automatic flush failed: ${defect instanceof Error ? defect.message : String(defect)}`)
}

/** Builds a stopped scheduler; the loop, once started, lives at most as long as the scope. */
export const make = (strategy: FlushStrategy): Effect.Effect<FlushScheduler, never, FlushEngine | Scope.Scope> =>
  Effect.gen(function* () {
    const engine = yield* FlushEngine
    const handle = yield* FiberHandle.make()
    if (strategy._tag === "FlushNone") {
      return FlushScheduler.of({ start: Effect.void, stop: Effect.void })
    }
    const interval = Duration.toMillis(strategy.interval)
    const maxBackoff = Duration.toMillis(strategy.maxBackoff ?? defaultMaxBackoff)
    // One automatic flush, and what it came to for the backoff. A flush that did not run (a manual
    // one held the lock) leaves the count of troubled flushes as it was.
    const flushOnce = Effect.uninterruptible(engine.run).pipe(
      Effect.tap(({ exit }) => (Exit.isFailure(exit) ? logFailure(exit.cause) : Effect.void)),
      Effect.map(
        (run): Backoff.Outcome =>
          run.troubled ? "troubled" : Exit.isSuccess(run.exit) && run.exit.value.flushInProgress ? "skipped" : "clean"
      )
    )
    const loop = Effect.sleep(interval).pipe(
      Effect.zipRight(
        Effect.repeat(flushOnce, Backoff.schedule(interval, maxBackoff).pipe(Schedule.tapOutput(reportBackoff)))
      ),
      // Waiting for the next flush never keeps the process alive: the cache makes exiting safe.
      unrefTimers
    )
    const stop = FiberHandle.clear(handle)
    return FlushScheduler.of({
      start: stop.pipe(Effect.zipRight(FiberHandle.run(handle, loop)), Effect.asVoid),
      stop
    })
  })

/** The scheduler as a layer over the flush engine. */
export const layer = (strategy: FlushStrategy): Layer.Layer<FlushScheduler, never, FlushEngine> =>
  Layer.scoped(FlushScheduler, make(strategy))
