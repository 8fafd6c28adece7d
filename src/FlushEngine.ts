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
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import { type KinesisStorageException, KinesisUnknownException } from "./Errors.js"
import * as EventLoop from "./internal/eventLoop.js"
import { type EntryResult, RecordSender, ServiceError } from "./RecordSender.js"
import { type BatchLimits, type DroppedRecords, RecordStorage, type StoredRecord } from "./RecordStorage.js"

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
   * running. Fails with `KinesisUnknownException` when the service can't be reached and with
   * `KinesisStorageException` when the cache fails.
   */
  readonly flush: Effect.Effect<FlushData, KinesisStorageException | KinesisUnknownException>
  /** Waits until no flush is running. */
  readonly awaitIdle: Effect.Effect<void>
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

/** A batch read while the request before it was in flight. */
interface ReadAhead {
  readonly stream: string
  readonly records: ReadonlyArray<StoredRecord>
}

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

    const charge = (stream: string, records: ReadonlyArray<StoredRecord>) =>
      Effect.gen(function* () {
        const dropped = yield* storage.chargeAttempt(
          records.map((record) => record.id),
          maxAttempts
        )
        yield* countFor(failedAttempts, stream, records.length)
        yield* reportDropped(dropped)
      })

    /** Applies the service's answer to the batch; returns how many records it accepted. */
    const settle = (stream: string, records: ReadonlyArray<StoredRecord>, results: ReadonlyArray<EntryResult>) =>
      Effect.gen(function* () {
        const accepted = records.filter((_, i) => results[i]!._tag === "Accepted")
        const rejected = records.filter((_, i) => results[i]!._tag !== "Accepted")
        yield* accepted.length === records.length
          ? storage.deleteBatch(records)
          : storage.delete(accepted.map((record) => record.id))
        yield* countFor(recordsDelivered, stream, accepted.length)
        if (rejected.length > 0) {
          yield* Effect.logDebug(`Kinesis rejected ${rejected.length} of ${records.length} records`)
          yield* charge(stream, rejected)
        }
        return accepted.length
      })

    // Reading a batch takes a few milliseconds of SQLite work. While a request is in flight the engine
    // reads the batch that will most likely go next, so that it is at hand when that request goes
    // out. It is used only if it is still the head of its stream then, and is topped up with what was
    // recorded since. One at a time: memory holds at most one batch beside the one in flight.
    const readAhead = yield* Ref.make(Option.none<ReadAhead>())

    /** The batch to send for `stream`: the one read ahead if still valid (topped up), else one read now. */
    const nextBatch = (stream: string) =>
      Effect.gen(function* () {
        const ahead = yield* Ref.getAndSet(readAhead, Option.none())
        if (Option.isNone(ahead) || ahead.value.stream !== stream) return yield* storage.batch(stream, batchLimits)
        const { records } = ahead.value
        const room = {
          maxRecords: batchLimits.maxRecords - records.length,
          maxBytes: batchLimits.maxBytes - records.reduce((total, record) => total + record.size, 0)
        }
        const rest = yield* storage.continueBatch(stream, records[0]!.id, records[records.length - 1]!.id, room)
        // None: something older is left (records of the last batch charged, not deleted) or the
        // cache was cleared since.
        if (Option.isNone(rest)) return yield* storage.batch(stream, batchLimits)
        return rest.value.length === 0 ? records : [...records, ...rest.value]
      })

    /**
     * Reads ahead the batch of `upNext` (that stream's oldest records; after `sent` if that is the
     * same stream). It waits for a turn of the event loop first, so that the request goes out before
     * it. Best effort: a failure leaves nothing read ahead, and the flush reads the batch when due.
     */
    const readNext = (upNext: string, sent: ReadonlyArray<StoredRecord>) =>
      EventLoop.turn.pipe(
        Effect.zipRight(
          storage.batch(upNext, batchLimits, upNext === sent[0]!.streamName ? sent[sent.length - 1]!.id : 0)
        ),
        Effect.flatMap((records) =>
          records.length === 0 ? Effect.void : Ref.set(readAhead, Option.some({ stream: upNext, records }))
        ),
        Effect.ignore
      )

    const flushStream = (stream: string, upNext: string) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          const records = yield* nextBatch(stream)
          if (records.length === 0) return 0
          // The reading ahead gets a fiber of its own; the request stays on this one, where `restore`
          // lets an interruption of the flush reach it (and abort it).
          const readingAhead = yield* Effect.fork(Effect.interruptible(readNext(upNext, records)))
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
            Effect.either,
            Effect.onInterrupt(() => Fiber.interrupt(readingAhead))
          )
          yield* Fiber.join(readingAhead)
          if (answer._tag === "Right") return yield* settle(stream, records, answer.right)
          const error = answer.left
          if (error._tag === "NoResponse") {
            return yield* new KinesisUnknownException({
              message: error.message,
              recoverySuggestion: "Check the network and credentials; the records stay cached for the next flush.",
              cause: error.cause
            })
          }
          yield* Effect.logWarning(`PutRecords failed: ${error.name} (HTTP ${error.status}): ${error.message}`)
          yield* charge(stream, records)
          return 0
        }).pipe(Effect.annotateLogs({ stream }))
      )

    const flushAll = Effect.gen(function* () {
      const streams = yield* storage.streams
      let recordsFlushed = 0
      for (const [index, stream] of streams.entries()) {
        // Next in this flush, or the first stream for the next one.
        const upNext = streams[index + 1] ?? streams[0]!
        recordsFlushed += yield* flushStream(stream, upNext).pipe(
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
      awaitIdle: lock.withPermits(1)(Effect.void)
    })
  })

/** The engine as a layer over `RecordStorage` and `RecordSender`. */
export const layer = (options: {
  readonly maxRetries: number
}): Layer.Layer<FlushEngine, never, RecordStorage | RecordSender> => Layer.effect(FlushEngine, make(options))
