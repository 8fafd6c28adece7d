/**
 * The flush: one `PutRecords` batch per stream, and the bookkeeping of what the service said.
 *
 * Streams are visited in name order. Accepted records are deleted; each rejected record is charged
 * one failed attempt and dropped once it reaches `1 + maxRetries`. A request-level error that the
 * service answered charges every record of the batch and the flush goes on with the next stream.
 * No response at all stops the flush with `KinesisUnknownException` and charges nothing.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import { type KinesisStorageException, KinesisUnknownException } from "./Errors.js"
import { type EntryResult, RecordSender, ServiceError } from "./RecordSender.js"
import {
  type BatchAnswer,
  type BatchLimits,
  type DroppedRecords,
  RecordStorage,
  type StoredRecord
} from "./RecordStorage.js"

/** What a flush did. */
export interface FlushData {
  /** Records the service accepted in this flush. */
  readonly recordsFlushed: number
  /** True when another flush was already running: this call did nothing. */
  readonly flushInProgress: boolean
}

/** The flush engine service. */
export interface FlushEngine {
  /**
   * Sends one batch per stream. Returns at once with `flushInProgress: true` when a flush is already
   * running (or the engine was shut down). Fails with `KinesisUnknownException` when the service
   * can't be reached and with `KinesisStorageException` when the cache fails.
   */
  readonly flush: Effect.Effect<FlushData, KinesisStorageException | KinesisUnknownException>
  /**
   * Stops flushing for good: a flush in progress finishes the requests in flight and starts no other
   * stream; no flush starts afterwards. Returns once no flush is running.
   */
  readonly shutdown: Effect.Effect<void>
}

/** The `FlushEngine` service tag. */
export const FlushEngine = Context.GenericTag<FlushEngine>("effect-kinesis/FlushEngine")

/** Records Kinesis accepted, tagged with `stream`. */
export const recordsDelivered = Metric.counter("effect_kinesis_records_delivered", {
  description: "Records Kinesis accepted",
  incremental: true
})

/** Failed attempts charged to records (rejected entries and request-level errors), tagged with `stream`. */
export const failedAttempts = Metric.counter("effect_kinesis_failed_attempts", {
  description: "Failed attempts charged to cached records",
  incremental: true
})

/** Records dropped after `1 + maxRetries` failed attempts, tagged with `stream`. */
export const recordsDropped = Metric.counter("effect_kinesis_records_dropped", {
  description: "Records dropped after their last allowed attempt",
  incremental: true
})

const countFor = (counter: Metric.Metric.Counter<number>, stream: string, amount: number) =>
  amount === 0 ? Effect.void : Metric.incrementBy(Metric.tagged(counter, "stream", stream), amount)

/** The limits of one `PutRecords` request: 500 records, 10 MiB of record sizes. */
export const batchLimits: BatchLimits = { maxRecords: 500, maxBytes: 10 * 1024 * 1024 }

/** Builds the engine over the storage and sender in context. */
export const make = (options: { readonly maxRetries: number }) =>
  Effect.gen(function* () {
    const storage = yield* RecordStorage
    const sender = yield* RecordSender
    const lock = yield* Effect.makeSemaphore(1)
    const maxAttempts = 1 + options.maxRetries

    const reportDropped = (dropped: DroppedRecords) =>
      Effect.forEach(
        dropped.byStream,
        ([stream, count]) =>
          Effect.logWarning(
            `Dropped ${count} ${count === 1 ? "record" : "records"} of stream ${stream} after ${maxAttempts} failed ${maxAttempts === 1 ? "attempt" : "attempts"}`
          ).pipe(
            Effect.annotateLogs({ stream, dropped: count }),
            Effect.zipRight(countFor(recordsDropped, stream, count))
          ),
        { discard: true }
      )

    /** Applies the service's answer to the batch in the cache; returns how many records it accepted. */
    const settle = (stream: string, records: ReadonlyArray<StoredRecord>, answer: BatchAnswer) =>
      Effect.gen(function* () {
        const dropped = yield* storage.settle(answer, maxAttempts)
        const failed = answer._tag === "Refused" ? records.length : answer.rejected.length
        yield* countFor(recordsDelivered, stream, records.length - failed)
        yield* countFor(failedAttempts, stream, failed)
        yield* reportDropped(dropped)
        return records.length - failed
      })

    /** What the answer to a batch means for the cache. */
    const toAnswer = (
      stream: string,
      records: ReadonlyArray<StoredRecord>,
      results: ReadonlyArray<EntryResult> | undefined
    ): BatchAnswer => {
      const range = { streamName: stream, firstId: records[0]!.id, lastId: records[records.length - 1]!.id }
      if (results === undefined) return { _tag: "Refused", ...range }
      const rejected = records.filter((_, i) => results[i]!._tag !== "Accepted").map((record) => record.id)
      return { _tag: "Answered", ...range, rejected }
    }

    const flushStream = (stream: string) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          const records = yield* storage.batch(stream, batchLimits)
          if (records.length === 0) return 0
          // Only the wait for the answer can be interrupted (which aborts the request): once an
          // answer is in, the cache is brought up to date with it.
          const answer = yield* restore(sender.putRecords(stream, records)).pipe(
            Effect.filterOrFail(
              (results) => results.length === records.length,
              (results) =>
                new ServiceError({
                  name: "EntryCountMismatch",
                  status: 200,
                  message: `The response has ${results.length} entries for ${records.length} records`
                })
            ),
            Effect.either
          )
          if (answer._tag === "Right") {
            const rejected = answer.right.filter((result) => result._tag !== "Accepted").length
            if (rejected > 0) yield* Effect.logDebug(`Kinesis rejected ${rejected} of ${records.length} records`)
            return yield* settle(stream, records, toAnswer(stream, records, answer.right))
          }
          const error = answer.left
          if (error._tag === "NoResponse") {
            return yield* new KinesisUnknownException({
              message: error.message,
              recoverySuggestion: "Check the network and credentials; the records stay cached for the next flush.",
              cause: error.cause
            })
          }
          yield* Effect.logWarning(`PutRecords failed: ${error.name} (HTTP ${error.status}): ${error.message}`)
          return yield* settle(stream, records, toAnswer(stream, records, undefined))
        }).pipe(Effect.annotateLogs({ stream }))
      )

    /** Set by `shutdown`: a flush in progress starts no further stream. */
    let stopping = false
    const stopped = yield* Effect.makeLatch(false)

    const flushAll = Effect.gen(function* () {
      const streams = yield* storage.streams
      let recordsFlushed = 0
      for (const stream of streams) {
        if (stopping) break
        recordsFlushed += yield* flushStream(stream).pipe(
          Effect.tapError(() =>
            recordsFlushed > 0
              ? Effect.logInfo(`Flush stopped after ${recordsFlushed} records were delivered`)
              : Effect.void
          )
        )
      }
      return recordsFlushed
    })

    return FlushEngine.of({
      flush: lock
        .withPermitsIfAvailable(1)(flushAll)
        .pipe(
          Effect.map(
            Option.match({
              onNone: (): FlushData => ({ recordsFlushed: 0, flushInProgress: true }),
              onSome: (recordsFlushed): FlushData => ({ recordsFlushed, flushInProgress: false })
            })
          ),
          Effect.withSpan("FlushEngine.flush")
        ),
      // The first call takes the permit and never gives it back: no flush can start once this has
      // begun. Later calls wait until it holds the permit.
      shutdown: Effect.suspend(() => {
        if (stopping) return stopped.await
        stopping = true
        return Effect.zipRight(lock.take(1), stopped.open)
      })
    })
  })

/** The engine as a layer over `RecordStorage` and `RecordSender`. */
export const layer = (options: {
  readonly maxRetries: number
}): Layer.Layer<FlushEngine, never, RecordStorage | RecordSender> => Layer.effect(FlushEngine, make(options))
