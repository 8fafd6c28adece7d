/**
 * Backoff after trouble, one policy for the automatic flush and the command line: after an
 * untroubled flush the next one waits `base`; after `k` troubled ones in a row, a random time
 * between half and all of `min(maxBackoff, base * 2^k)`, never less than `base`. A `maxBackoff` not
 * longer than `base` turns backoff off.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Interval from "effect/ScheduleInterval"

/** What a flush came to, as the backoff sees it: trouble, none, or a flush that did not run. */
export type Outcome = "troubled" | "clean" | "skipped"

/** A wait before the next flush, in milliseconds, and whether it is a backoff (longer after trouble). */
export interface Wait {
  readonly millis: number
  readonly backoff: boolean
}

/** The wait after `troubled` troubled flushes in a row (see the module's description). */
export const wait = (base: number, maxBackoff: number, troubled: number): Effect.Effect<Wait> => {
  if (troubled === 0 || maxBackoff <= base) return Effect.succeed({ millis: base, backoff: false })
  const cap = Math.min(maxBackoff, base * 2 ** troubled)
  return Effect.map(Random.nextRange(cap / 2, cap), (millis) => ({ millis: Math.max(base, millis), backoff: true }))
}

/**
 * The policy as a `Schedule` for `Effect.repeat`: its input is each flush's `Outcome` (a flush that
 * did not run leaves the count as it was), its output the wait before the next flush.
 */
export const schedule = (base: number, maxBackoff: number): Schedule.Schedule<Wait, Outcome> =>
  Schedule.makeWithState(0, (now, outcome: Outcome, troubled: number) => {
    const next = outcome === "troubled" ? troubled + 1 : outcome === "clean" ? 0 : troubled
    return Effect.map(
      wait(base, maxBackoff, next),
      (delay) => [next, delay, ScheduleDecision.continueWith(Interval.after(now + delay.millis))] as const
    )
  })
