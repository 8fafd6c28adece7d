/**
 * Giving the pages freed by deletes back to the file system.
 *
 * When the cache is empty, all of them at once (`VACUUM`: nothing needs copying then), and the
 * write-ahead log is cut back too. While records remain, giving pages back means moving live pages from the end of the file
 * into the holes, so it happens only when at least half of the file is free, one step of
 * `vacuumStepPages` at a time and at most one step every `vacuumStepMillis`: a long drain is not
 * slowed down by it.
 *
 * @internal
 */

import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { type Run, statements } from "./Table.js"

/** Free pages given back to the file system in one step, so that no step holds the actor for long. */
const vacuumStepPages = 1024

/** The least time between two steps of giving pages back while the cache still holds records. */
const vacuumStepMillis = 1000

/** The free and total pages of the file. */
interface Pages {
  readonly free: number
  readonly total: number
}

/**
 * How many free pages to give back now (0 for none): `pages` of the file, `records` left in the
 * cache, `sinceLastStep` milliseconds since the last step.
 */
export const pagesToGiveBack = (pages: Pages, records: number, sinceLastStep: number): number => {
  if (pages.free === 0) return 0
  if (records === 0) return pages.free
  if (pages.free < vacuumStepPages || pages.free * 2 < pages.total) return 0
  if (sinceLastStep < vacuumStepMillis) return 0
  return vacuumStepPages
}

/**
 * The shrink step of one cache: run after the cache has shrunk, with `records` the records it holds
 * now. Best effort: a failed statement is ignored.
 */
export const make = (run: Run, records: () => number): Effect.Effect<void> => {
  let lastStep = Number.NEGATIVE_INFINITY
  return Effect.gen(function* () {
    const [pages] = yield* run<Pages>(statements.pages)
    if (pages === undefined) return
    const now = yield* Clock.currentTimeMillis
    const left = records()
    const steps = pagesToGiveBack(pages, left, now - lastStep)
    if (steps === 0) return
    lastStep = now
    if (left === 0) {
      // An empty cache is rebuilt at once: nothing is copied, where giving its free pages back one
      // by one costs a statement each (over a second after a 100 MB drain).
      yield* run(statements.vacuum)
      return yield* run(statements.checkpoint)
    }
    yield* Effect.repeatN(run(statements.vacuumPage), steps - 1)
  }).pipe(Effect.ignore)
}
