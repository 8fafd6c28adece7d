/**
 * The command line's flush loop. Each flush sends one batch per stream, so the counts move batch by
 * batch. While input arrives the loop flushes every `interval`, or at once after a full batch, and
 * waits longer after a flush that met trouble. Once the input has ended it flushes back to back while
 * flushes deliver, and after trouble, until the cache is empty; the caller bounds that part with its
 * time limit.
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Backoff from "../engine/flush/Backoff.js"
import type { FlushData } from "../engine/flush/FlushEngine.js"
import type { KinesisClient } from "../KinesisClient.js"
import * as Durations from "./Durations.js"
import * as Format from "./Format.js"

/** What the loop has delivered so far, and the last failure it met. */
export interface DeliveryCounts {
  readonly delivered: number
  readonly dropped: number
  readonly lastFailure: string | undefined
}

/** Nothing delivered yet. */
export const noCounts: DeliveryCounts = { delivered: 0, dropped: 0, lastFailure: undefined }

/** The loop's settings. */
export interface DeliverySettings {
  /** The wait between flushes while input arrives. */
  readonly interval: Duration.Duration
  /** The longest wait after flushes that met trouble. */
  readonly maxBackoff: Duration.Duration
  /** Completed when the input has ended: from then on the loop ends once the cache is empty. */
  readonly inputEnded: Deferred.Deferred<void>
  /**
   * Completes when a flush is wanted before the interval is up (a full batch is waiting, the cache is
   * full); not heeded after trouble.
   */
  readonly wake: Effect.Effect<void>
  /** Told of every flush and failure, in order. */
  readonly report: (update: (counts: DeliveryCounts) => DeliveryCounts) => Effect.Effect<void>
}

/** The longest wait between flushes after trouble, for `put` and `flush`. */
export const longestWait = Duration.seconds(10)

/** The first wait after trouble once the input has ended. */
const firstRetry = Duration.millis(250)

/** Sleeps the library's backoff (`Backoff.wait`) from `base` after `troubled` troubled flushes in a row. */
const backoff = (base: Duration.Duration, troubled: number, maxBackoff: Duration.Duration): Effect.Effect<void> =>
  Effect.flatMap(Backoff.wait(Duration.toMillis(base), Duration.toMillis(maxBackoff), troubled), (wait) =>
    Effect.sleep(wait.millis)
  )

const isTroubled = (data: FlushData) =>
  data.recordsFailed > 0 || (data.recordsFlushed === 0 && data.recordsRemaining > 0)

/** The records of a full `PutRecords` batch: a flush that sent as many leaves more to send at once. */
export const fullBatch = 500

/**
 * One flush, and its counts reported: an interruption (the time limit) may cut the flush short, but
 * not fall between a flush that delivered and its report.
 */
const flushAndReport = (client: KinesisClient, settings: DeliverySettings) =>
  Effect.uninterruptibleMask((restore) =>
    Effect.either(restore(client.flush())).pipe(
      Effect.tap((flushed) =>
        settings.report((counts) =>
          flushed._tag === "Right"
            ? {
                ...counts,
                delivered: counts.delivered + flushed.right.recordsFlushed,
                dropped: counts.dropped + flushed.right.recordsDropped,
                lastFailure: flushed.right.recordsFlushed > 0 ? undefined : counts.lastFailure
              }
            : { ...counts, lastFailure: flushed.left.message }
        )
      )
    )
  )

/**
 * Runs until the input has ended and a flush leaves the cache empty. A flush that fails (no response,
 * credentials that can't be found) is reported and tried again later: the records stay cached.
 */
export const run = (client: KinesisClient, settings: DeliverySettings): Effect.Effect<void> =>
  Effect.gen(function* () {
    let troubled = 0
    let endSeen = false
    for (;;) {
      // Read before the flush: a flush that began while input still arrived may have missed its last lines.
      const ended = yield* Deferred.isDone(settings.inputEnded)
      if (ended && !endSeen) {
        // The end of the input starts the final flushes afresh: their first retry comes soon.
        endSeen = true
        troubled = 0
      }
      const flushed = yield* flushAndReport(client, settings)
      if (flushed._tag === "Right") {
        const data = flushed.right
        if (ended && data.recordsRemaining === 0) return
        troubled = isTroubled(data) ? troubled + 1 : 0
        const moreToSend = data.recordsRemaining > 0 && data.recordsFlushed >= (ended ? 1 : fullBatch)
        if (troubled === 0 && moreToSend) continue
      } else {
        troubled += 1
      }
      if (ended) {
        // The first retry comes after `firstRetry`; the waits grow from there.
        if (troubled > 0) yield* backoff(firstRetry, troubled - 1, settings.maxBackoff)
      } else if (troubled === 0) {
        yield* Effect.raceAll([Effect.sleep(settings.interval), Deferred.await(settings.inputEnded), settings.wake])
      } else {
        // After trouble the waits grow, but a wake (a full cache holding the input up) still brings a
        // flush one interval later: the input must not wait out a long backoff once Kinesis answers again.
        yield* Effect.raceAll([
          backoff(settings.interval, troubled, settings.maxBackoff),
          Deferred.await(settings.inputEnded),
          Effect.zipRight(settings.wake, Effect.sleep(settings.interval))
        ])
      }
    }
  })

/**
 * The loop for a cache with no input to wait for (`flush`): back-to-back flushes until it is empty,
 * retried after trouble. The caller bounds it with its time limit.
 */
export const untilEmpty = (client: KinesisClient, report: DeliverySettings["report"]): Effect.Effect<void> =>
  Effect.flatMap(Deferred.make<void>(), (inputEnded) =>
    Effect.zipRight(
      Deferred.succeed(inputEnded, undefined),
      run(client, { interval: longestWait, maxBackoff: longestWait, inputEnded, wake: Effect.never, report })
    )
  )

/**
 * What the user is told when not everything was delivered, or undefined when it was: records dropped
 * after their last retry, and records still cached (how many, where, and the last failure met).
 */
export const shortfall = (
  records: number,
  cacheFile: string,
  flushTimeout: Duration.Duration,
  counts: DeliveryCounts
): string | undefined => {
  const parts: Array<string> = []
  if (counts.dropped > 0) {
    parts.push(
      `${Format.plural(counts.dropped, "record was", "records were")} dropped after their last retry (the warnings above say why)`
    )
  }
  if (records > 0) {
    parts.push(
      `${Format.plural(records, "record", "records")} left in ${cacheFile} after --flush-timeout ` +
        `${Durations.format(flushTimeout)}: the next put or flush on this cache sends them.` +
        `${counts.lastFailure ? ` Last failure: ${counts.lastFailure}` : ""}`
    )
  }
  return parts.length === 0 ? undefined : parts.join("; ")
}
