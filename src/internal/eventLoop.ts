/**
 * Yielding to the event loop itself, not only to other fibers.
 *
 * @internal
 */
import * as Effect from "effect/Effect"

/**
 * Lets the event loop run once (setImmediate) before going on: timers due and sockets ready are
 * served first. `Effect.yieldNow` only lets other fibers run, on microtasks, which the event loop
 * waits behind.
 */
export const turn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})
