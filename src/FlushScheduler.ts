/**
 * The automatic flush: a background fiber that runs the flush engine on the `FlushStrategy`.
 *
 * With `FlushInterval(d)` the first flush comes `d` after the loop starts, and each next one `d`
 * after the previous one ended, so flushes never pile up. A failed flush is logged and the loop goes
 * on. With `FlushNone` there is no loop. The wait between flushes is an `unref()`ed timer, so an
 * open client never keeps the Node process alive by itself.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberHandle from "effect/FiberHandle"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { FlushEngine } from "./FlushEngine.js"
import type { FlushStrategy } from "./FlushStrategy.js"
import { unrefTimers } from "./internal/unrefTimers.js"

/** The scheduler service. */
export interface FlushScheduler {
  /** Starts the loop afresh: the next automatic flush comes one full interval from now. */
  readonly start: Effect.Effect<void>
  /** Stops the loop; an automatic flush in progress is finished first, never cut off. */
  readonly stop: Effect.Effect<void>
}

/** The `FlushScheduler` service tag. */
export const FlushScheduler = Context.GenericTag<FlushScheduler>("effect-kinesis/FlushScheduler")

/** Builds a stopped scheduler; the loop, once started, lives at most as long as the scope. */
export const make = (strategy: FlushStrategy): Effect.Effect<FlushScheduler, never, FlushEngine | Scope.Scope> =>
  Effect.gen(function* () {
    const engine = yield* FlushEngine
    const handle = yield* FiberHandle.make()
    if (strategy._tag === "FlushNone") {
      return FlushScheduler.of({ start: Effect.void, stop: Effect.void })
    }
    // A defect (a bug in a sender or storage layer) must not end the loop either: `Effect.schedule`
    // stops at the first failure, so every cause is caught and logged here, by message only.
    const loop = engine.flush.pipe(
      Effect.uninterruptible,
      Effect.catchAllCause((cause) => {
        const failure = Cause.failureOption(cause)
        if (Option.isSome(failure)) return Effect.logWarning(`Automatic flush failed: ${failure.value.message}`)
        const defect = Cause.squash(cause)
        return Effect.logWarning(`Automatic flush failed: ${defect instanceof Error ? defect.message : String(defect)}`)
      }),
      Effect.schedule(Schedule.spaced(strategy.interval)),
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
