/**
 * Background waiting that never keeps the Node process alive.
 *
 * Effect's live `Clock` sleeps with a plain `setTimeout`, which holds the event loop open until it
 * fires: a loop that sleeps forever (the automatic flush) would keep the process running after the
 * app has finished. `unrefTimers` runs an effect, and every fiber it forks, on a clock whose sleeps
 * are `unref()`ed timers: they fire as usual while the process is alive for other reasons, and do
 * not count as a reason to stay alive. Any other clock (a `TestClock`, an app's own) is left as is.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

/** Node's longest timer; Effect treats a longer sleep as one that never ends, and so does this. */
const maxTimerMillis = 2 ** 31 - 1

const liveClockClass: unknown = Clock.make().constructor

/**
 * Whether a clock is Effect's live clock. The class name covers an app that loads Effect's other
 * module format (CommonJS beside this ESM build): its live clock is an instance of a twin class.
 */
const isLiveClock = (clock: Clock.Clock): boolean =>
  clock.constructor === liveClockClass || clock.constructor.name === "ClockImpl"

/** A sleep on an `unref()`ed timer. */
export const unrefSleep = (duration: Duration.DurationInput): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const millis = Duration.toMillis(Duration.decode(duration))
    if (millis > maxTimerMillis) return
    const handle = setTimeout(() => resume(Effect.void), Math.max(0, millis))
    handle.unref()
    return Effect.sync(() => clearTimeout(handle))
  })

/** The live clock with its sleeps on `unref()`ed timers; time still comes from the live clock. */
class UnrefClock implements Clock.Clock {
  readonly [Clock.ClockTypeId]: Clock.ClockTypeId = Clock.ClockTypeId
  constructor(private readonly live: Clock.Clock) {}
  readonly currentTimeMillis = Effect.sync(() => this.live.unsafeCurrentTimeMillis())
  readonly currentTimeNanos = Effect.sync(() => this.live.unsafeCurrentTimeNanos())
  unsafeCurrentTimeMillis(): number {
    return this.live.unsafeCurrentTimeMillis()
  }
  unsafeCurrentTimeNanos(): bigint {
    return this.live.unsafeCurrentTimeNanos()
  }
  sleep(duration: Duration.Duration): Effect.Effect<void> {
    return unrefSleep(duration)
  }
}

/**
 * Runs the effect (and the fibers it forks) with sleeps that don't keep the process alive, when the
 * current clock is Effect's live one; under any other clock it runs the effect unchanged.
 */
export const unrefTimers = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.clock, (clock) =>
    isLiveClock(clock) ? Effect.withClock(effect, new UnrefClock(clock)) : effect
  )
