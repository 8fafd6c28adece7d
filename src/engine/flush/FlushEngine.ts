/**
 * The flush: `PutRecords` batches for each stream, and the bookkeeping of what the service said.
 *
 * Streams are taken in name order (those whose last request got no response last), up to
 * `streamConcurrency` at once. Per stream a flush sends one batch, or with `drain` the next batch
 * while the previous one was accepted whole, until the stream is empty, with up to
 * `requestsPerStream` batches in flight (one without `drain`). Accepted records are deleted; each rejected record is charged one failed attempt and
 * dropped once it reaches `1 + maxRetries`. A request-level error that the service answered charges
 * every record of the batch and the stream's share ends there, except a refusal for the batch's content
 * (`ValidationException`, `InvalidArgumentException`): the batch is then sent in halves, split again
 * while refused so, until only the records at fault, each alone, are charged. No response at all ends the flush,
 * once the requests in flight have settled, with `KinesisUnknownException` and charges nothing; a
 * storage error ends it the same way with `KinesisStorageException`. With `countThrottling: false`
 * the transient outcomes (throttling, `InternalFailure`, 5xx) charge nothing either. Each flush says
 * what it delivered, failed, dropped and left in the cache, and tells the scheduler whether it met
 * trouble. With `recordTtl`, a flush first deletes the records cached longer than that, unsent.
 *
 * @since 0.1.0
 */

import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { type KinesisStorageException, KinesisUnknownException } from "../../Errors.js"
import {
  type BatchLimits,
  type DroppedRecords,
  noneDropped,
  RecordStorage,
  type StoredRecord
} from "../cache/RecordStorage.js"
import { type EngineMetric, engineMetrics } from "../metrics.js"
import {
  type EntryResult,
  isContentRefusal,
  type NoResponse,
  RecordSender,
  ServiceError
} from "../send/RecordSender.js"
import * as Telemetry from "../telemetry.js"
import * as BatchOutcome from "./BatchOutcome.js"
import * as StreamOrder from "./StreamOrder.js"

/** What a flush did. */
export interface FlushData {
  /** Records the service accepted in this flush. */
  readonly recordsFlushed: number
  /** Records sent in this flush and not accepted: kept for a retry, or dropped. */
  readonly recordsFailed: number
  /** Records this flush deleted undelivered: their retries were used up, or they were older than `recordTtl`. */
  readonly recordsDropped: number
  /** Records in the cache when this flush ended, all streams. */
  readonly recordsRemaining: number
  /** True when another flush was already running: this call did nothing (every count is 0). */
  readonly flushInProgress: boolean
}

/** A flush as the automatic scheduler sees it: its result, and whether it met trouble. */
export interface FlushRun {
  /** What `flush` gives for the same flush. */
  readonly exit: Exit.Exit<FlushData, KinesisStorageException | KinesisUnknownException>
  /**
   * Whether any request got no response, a throttling or 5xx answer, or any record came back
   * throttled or with `InternalFailure`. False for a flush that did not run (`flushInProgress`).
   */
  readonly troubled: boolean
}

/** The flush engine service. */
export interface FlushEngine {
  /**
   * Sends one batch per stream (with `drain`, batches until each stream is empty). Returns at once
   * with `flushInProgress: true` when a flush is already running (or the engine was shut down).
   * Fails with `KinesisUnknownException` when the service can't be reached and with
   * `KinesisStorageException` when the cache fails.
   */
  readonly flush: Effect.Effect<FlushData, KinesisStorageException | KinesisUnknownException>
  /** The same flush for the scheduler: never fails, and says whether it met trouble. */
  readonly run: Effect.Effect<FlushRun>
  /**
   * Stops flushing for good: a flush in progress finishes the requests in flight and starts no other
   * batch; no flush starts afterwards. Returns once no flush is running. With `flushTimeout`, first
   * flushes as with `drain` for at most that long, stopping early once the cache is empty, a flush
   * delivers nothing, or one fails (no response); no request starts after `flushTimeout`, and those
   * in flight then finish. A later call waits for the first to end.
   */
  readonly shutdown: (flushTimeout?: Duration.Duration) => Effect.Effect<void>
}

/** The `FlushEngine` service tag. */
export const FlushEngine = Context.GenericTag<FlushEngine>("effect-kinesis/FlushEngine")

/** Records Kinesis accepted, tagged with `stream`. */
export const recordsDelivered = engineMetrics.effect_kinesis_records_delivered

/** Failed attempts charged to records (rejected entries and request-level errors), tagged with `stream`. */
export const failedAttempts = engineMetrics.effect_kinesis_failed_attempts

/**
 * Records dropped after `1 + maxRetries` failed attempts, tagged with `stream`. Records dropped for
 * their age count in `recordsExpired`; `FlushData.recordsDropped` counts both.
 */
export const recordsDropped = engineMetrics.effect_kinesis_records_dropped

/** Records deleted unsent because they were cached longer than `recordTtl`, tagged with `stream`. */
export const recordsExpired = engineMetrics.effect_kinesis_records_expired

/**
 * Records refused with a transient outcome (throttling, `InternalFailure`, 5xx), charged an attempt or
 * not, tagged with `stream`.
 */
export const recordsThrottled = engineMetrics.effect_kinesis_records_throttled

/**
 * Requests refused as a whole for their content (`ValidationException`, `InvalidArgumentException`) and
 * split in two halves to find the records at fault, tagged with `stream`.
 */
export const batchesSplit = engineMetrics.effect_kinesis_batches_split

const countFor = (counter: EngineMetric, stream: string, amount: number) =>
  amount === 0 ? Effect.void : Telemetry.update(counter, stream, amount)

/** The limits of one `PutRecords` request: 500 records, 10 MiB of record sizes. */
export const batchLimits: BatchLimits = { maxRecords: 500, maxBytes: 10 * 1024 * 1024 }

/** What a part of a flush (one stream's step, or the whole flush so far) did. */
interface Tally {
  readonly flushed: number
  readonly failed: number
  readonly dropped: number
  readonly troubled: boolean
}

const noTally: Tally = { flushed: 0, failed: 0, dropped: 0, troubled: false }

/** What a request that got no response adds to a flush: nothing but trouble. */
const noResponseTally: Tally = { ...noTally, troubled: true }

/** Whether a batch was accepted whole: the condition for `drain` to send the stream's next one. */
const acceptedWhole = (batch: Tally): boolean => batch.flushed > 0 && batch.failed === 0

const addTally = (a: Tally, b: Tally): Tally => ({
  flushed: a.flushed + b.flushed,
  failed: a.failed + b.failed,
  dropped: a.dropped + b.dropped,
  troubled: a.troubled || b.troubled
})

const inProgress: FlushData = {
  recordsFlushed: 0,
  recordsFailed: 0,
  recordsDropped: 0,
  recordsRemaining: 0,
  flushInProgress: true
}

/** The options of the engine. */
export interface FlushEngineOptions {
  /** Failed attempts a record may have beyond its first before it is dropped. */
  readonly maxRetries: number
  /** Whether transient outcomes (throttling, `InternalFailure`, 5xx) charge an attempt. */
  readonly countThrottling: boolean
  /** Whether a flush sends each stream's batches until the stream is empty or one is not accepted whole. */
  readonly drain: boolean
  /** How many streams a flush sends to at once. */
  readonly streamConcurrency: number
  /** How many batches of one stream may be in flight at once while a flush drains it. */
  readonly requestsPerStream: number
  /** How long a record may stay cached: older ones are deleted unsent by the next flush. None: no limit. */
  readonly recordTtl?: Duration.Duration | undefined
}

/** `restore` of `Effect.uninterruptibleMask`: what it wraps can be interrupted. */
type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** What the span of a `PutRecords` request records as its outcome. */
const outcomeOf = (response: Either.Either<ReadonlyArray<EntryResult>, ServiceError | NoResponse>): string =>
  Either.match(response, {
    onLeft: (error) => (error._tag === "NoResponse" ? "no response" : `refused: ${error.name}`),
    onRight: (results) => (results.every((result) => result._tag === "Accepted") ? "accepted" : "partly rejected")
  })

/** Builds the engine over the storage and sender in context. */
export const make = (options: FlushEngineOptions) =>
  Effect.gen(function* () {
    const storage = yield* RecordStorage
    const sender = yield* RecordSender
    const lock = yield* Effect.makeSemaphore(1)
    const maxAttempts = 1 + options.maxRetries

    /** A warning per stream (`why` the records went, never their data), and `counter` counts them. */
    const reportDropped = (dropped: DroppedRecords, why: string, counter: EngineMetric) =>
      Effect.forEach(
        dropped.byStream,
        ([stream, count]) =>
          Effect.logWarning(`Dropped ${count} ${count === 1 ? "record" : "records"} of stream ${stream} ${why}`).pipe(
            Effect.annotateLogs({ stream, dropped: count }),
            Effect.zipRight(countFor(counter, stream, count))
          ),
        { discard: true }
      )
    const spentAttempts = `after ${maxAttempts} failed ${maxAttempts === 1 ? "attempt" : "attempts"}`

    /** Deletes the records cached longer than `recordTtl` (none without it); gives how many. */
    const expire = (recordTtl: Duration.Duration | undefined) =>
      recordTtl === undefined
        ? Effect.succeed(0)
        : Effect.gen(function* () {
            const now = yield* Clock.currentTimeMillis
            const expired = yield* storage.expire(now - Duration.toMillis(recordTtl))
            yield* reportDropped(
              expired,
              `cached longer than ${Duration.format(recordTtl)}`,
              "effect_kinesis_records_expired"
            )
            return expired.count
          })

    /** Applies the outcome of a batch to the cache and the metrics; returns what it adds to the flush. */
    const settle = (stream: string, outcome: BatchOutcome.BatchOutcome) =>
      Effect.gen(function* () {
        const dropped = outcome.answer ? yield* storage.settle(outcome.answer, maxAttempts) : noneDropped
        yield* countFor("effect_kinesis_records_delivered", stream, outcome.accepted)
        yield* countFor("effect_kinesis_failed_attempts", stream, outcome.charged)
        yield* countFor("effect_kinesis_records_throttled", stream, outcome.throttled)
        yield* reportDropped(dropped, spentAttempts, "effect_kinesis_records_dropped")
        return { flushed: outcome.accepted, failed: outcome.failed, dropped: dropped.count, troubled: outcome.troubled }
      })

    /** One `PutRecords` request for the batch, in a span of its own; a response that doesn't match the batch is an error. */
    const putRecords = (stream: string, records: ReadonlyArray<StoredRecord>) =>
      sender.putRecords(stream, records).pipe(
        Effect.filterOrFail(
          (results) => results.length === records.length,
          (results) =>
            new ServiceError({
              name: "EntryCountMismatch",
              status: 200,
              message: `The response has ${results.length} entries for ${records.length} records`
            })
        ),
        Effect.either,
        Effect.tap((response) => Effect.annotateCurrentSpan("outcome", outcomeOf(response))),
        Effect.withSpan("FlushEngine.putRecords", { attributes: { stream, records: records.length } })
      )

    /** Set by `shutdown` (with a final flush, at its time limit): a flush in progress starts no further request. */
    let stopping = false
    let shutdownBegun = false

    /**
     * Sends records of a stream in one request, in a span of its own, and brings the cache up to date
     * with the answer. Only the wait for the answer can be interrupted (which aborts the request): once
     * an answer is in, the cache is brought up to date with it. A request of more than one record
     * refused as a whole for its content is not charged but split.
     */
    const sendPart = (
      stream: string,
      records: ReadonlyArray<StoredRecord>,
      restore: Restore,
      halted: () => boolean
    ): Effect.Effect<Tally, KinesisStorageException | KinesisUnknownException> =>
      Effect.gen(function* () {
        // Checked at the last moment: the time limit of a final flush, or another stream's failure,
        // may have come while the batch was read. The records stay cached, uncharged.
        if (halted()) return noTally
        const response = yield* restore(putRecords(stream, records))
        if (response._tag === "Right") {
          const rejected = response.right.filter((result) => result._tag !== "Accepted").length
          if (rejected > 0) yield* Effect.logDebug(`Kinesis rejected ${rejected} of ${records.length} records`)
          return yield* settle(stream, BatchOutcome.fromResults(records, response.right, options.countThrottling))
        }
        const error = response.left
        if (error._tag === "NoResponse") {
          return yield* new KinesisUnknownException({
            message: error.message,
            recoverySuggestion: "Check the network and credentials; the records stay cached for the next flush.",
            cause: error.cause
          })
        }
        if (isContentRefusal(error) && records.length > 1) {
          return yield* splitPart(stream, records, error, restore, halted)
        }
        yield* Effect.logWarning(`PutRecords failed: ${error.name} (HTTP ${error.status}): ${error.message}`)
        return yield* settle(stream, BatchOutcome.fromError(records, error, options.countThrottling))
      })

    /**
     * Sends the two halves of records refused as a whole for their content, oldest first, each split
     * again while refused so: only a record refused on its own is charged. Each half is a contiguous id
     * range of the batch, settled on its own. Once the flush is halted (shutdown, another stream's
     * failure), no further half is sent: what is left stays cached, uncharged.
     */
    const splitPart = (
      stream: string,
      records: ReadonlyArray<StoredRecord>,
      error: ServiceError,
      restore: Restore,
      halted: () => boolean
    ) =>
      Effect.gen(function* () {
        yield* Effect.logDebug(`PutRecords refused ${records.length} records with ${error.name}: sending two halves`)
        yield* countFor("effect_kinesis_batches_split", stream, 1)
        const half = Math.ceil(records.length / 2)
        let tally = noTally
        for (const part of [records.slice(0, half), records.slice(half)]) {
          tally = addTally(tally, yield* sendPart(stream, part, restore, halted))
        }
        return tally
      })

    /** One batch of a stream: its oldest records sent (split if refused for their content), and the cache brought up to date. */
    const flushBatch = (
      stream: string,
      halted: () => boolean,
      read: Effect.Effect<ReadonlyArray<StoredRecord>, KinesisStorageException>
    ): Effect.Effect<Tally, KinesisStorageException | KinesisUnknownException> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          const records = yield* read
          if (records.length === 0) return noTally
          return yield* sendPart(stream, records, restore, halted)
        }).pipe(Effect.annotateLogs({ stream }))
      )

    const stopped = yield* Effect.makeLatch(false)
    const order = StreamOrder.make()

    /**
     * Every stream's share, up to `streamConcurrency` streams at once, then the count of what is
     * left. The first failure (no response, storage) lets the requests in flight settle and starts
     * no other batch; the flush then fails with it. Trouble is noted even if the flush fails.
     */
    const flushAll = (drain: boolean): Effect.Effect<FlushRun> =>
      Effect.suspend(() => {
        let tally = noTally
        let failure: KinesisStorageException | KinesisUnknownException | undefined
        /** No request starts once shutdown has stopped the flush or another stream failed. */
        const halted = () => stopping || failure !== undefined

        /** Notes a failure (the first one ends the flush) and, for no response, the stream's place. */
        const failed = (stream: string) => (error: KinesisStorageException | KinesisUnknownException) =>
          Effect.sync(() => {
            failure ??= error
            if (error._tag === "KinesisUnknownException") {
              order.noResponse(stream)
              tally = addTally(tally, noResponseTally)
            }
          })

        /**
         * One stream's share: one batch, or with `drain` the next while the last was accepted whole,
         * with up to `requestsPerStream` batches in flight. Each batch is claimed under the stream's
         * lock, after the last record claimed, so that no record is in two requests; the first batch
         * not accepted whole ends the share once the requests in flight are settled.
         */
        const flushStream = (stream: string) =>
          Effect.gen(function* () {
            const lock = yield* Effect.makeSemaphore(1)
            let claimed = 0
            let done = false
            // A request of this share that got no response sends the stream last next time, whatever
            // its other lanes heard after it.
            let unanswered = false
            const claim = lock.withPermits(1)(
              Effect.tap(
                Effect.suspend(() => storage.batch(stream, batchLimits, claimed)),
                (records) => {
                  if (records.length > 0) claimed = records[records.length - 1]!.id
                }
              )
            )
            const lane = Effect.gen(function* () {
              while (!done && !halted()) {
                const batch = yield* flushBatch(stream, halted, claim)
                if (!unanswered) order.answered(stream)
                tally = addTally(tally, batch)
                if (!drain || !acceptedWhole(batch)) done = true
              }
            }).pipe(
              Effect.tapError((error) =>
                Effect.sync(() => {
                  if (error._tag === "KinesisUnknownException") unanswered = true
                })
              ),
              Effect.catchAll(failed(stream))
            )
            const lanes = drain ? options.requestsPerStream : 1
            yield* lanes === 1
              ? lane
              : Effect.all(
                  Array.from({ length: lanes }, () => lane),
                  { concurrency: lanes, discard: true }
                )
          })

        const steps = Effect.gen(function* () {
          tally = addTally(tally, { ...noTally, dropped: yield* expire(options.recordTtl) })
          const streams = order.sort(yield* storage.streams)
          yield* Effect.forEach(streams, flushStream, { concurrency: options.streamConcurrency, discard: true })
          if (failure) return yield* Effect.fail(failure)
          const { records } = yield* storage.status
          return {
            recordsFlushed: tally.flushed,
            recordsFailed: tally.failed,
            recordsDropped: tally.dropped,
            recordsRemaining: records,
            flushInProgress: false
          }
        }).pipe(
          Effect.tapError(() =>
            tally.flushed > 0
              ? Effect.logInfo(`Flush stopped after ${tally.flushed} records were delivered`)
              : Effect.void
          ),
          Effect.withSpan("FlushEngine.flush", { attributes: { drain } })
        )
        return Effect.map(Effect.exit(steps), (exit): FlushRun => ({ exit, troubled: tally.troubled }))
      })

    /**
     * The final flush of `shutdown`: drain flushes until the cache is empty, a flush gets no response
     * (it fails), or `stopping` is set at the time limit. A drain flush stops each stream at a batch
     * not accepted whole, so another pass follows while one delivers anything; a pass that delivers
     * nothing ends it, so that records refused every time are not sent again and again until the
     * limit. A failure is logged: the records stay cached.
     */
    const finalFlush = Effect.gen(function* () {
      while (!stopping) {
        const data = yield* Effect.flatMap(flushAll(true), (flushRun) => flushRun.exit)
        if (data.recordsRemaining === 0 || data.recordsFlushed === 0) return
      }
    }).pipe(
      Effect.catchAll((error) =>
        Effect.logWarning(`The final flush stopped: ${error.message}; what it did not deliver stays cached`)
      )
    )

    const run = Effect.map(
      lock.withPermitsIfAvailable(1)(flushAll(options.drain)),
      Option.getOrElse((): FlushRun => ({ exit: Exit.succeed(inProgress), troubled: false }))
    )

    const stop = Effect.sync(() => {
      stopping = true
    })

    return FlushEngine.of({
      flush: Effect.flatMap(run, (flushRun) => flushRun.exit),
      run,
      // The first call takes the permit and never gives it back: no flush can start once it holds it.
      // Without a final flush, the flush in progress starts no further request from now on; with one,
      // from the time limit, set by a timer of its own. Later calls wait until the first is done.
      shutdown: (flushTimeout) =>
        Effect.suspend(() => {
          if (shutdownBegun) return stopped.await
          shutdownBegun = true
          if (flushTimeout === undefined) return stop.pipe(Effect.zipRight(lock.take(1)), Effect.zipRight(stopped.open))
          return Effect.gen(function* () {
            const timer = yield* Effect.fork(Effect.interruptible(Effect.zipRight(Effect.sleep(flushTimeout), stop)))
            yield* lock.take(1)
            yield* finalFlush
            yield* Fiber.interrupt(timer)
            yield* stop
            yield* stopped.open
          })
        })
    })
  })

/** The engine as a layer over `RecordStorage` and `RecordSender`. */
export const layer = (options: FlushEngineOptions): Layer.Layer<FlushEngine, never, RecordStorage | RecordSender> =>
  Layer.effect(FlushEngine, make(options))
