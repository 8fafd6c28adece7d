/**
 * Test helpers for the flush engine: a scripted `RecordSender` (the in-memory Kinesis of
 * `effect-kinesis/testing`) that records every batch it is handed, a real SQLite cache to fill,
 * and a logger that keeps what was logged.
 *
 * The scripted sender replaces the real one only where kinesalite can't go: partial failures,
 * throttling, entry-count mismatches, slow or missing responses.
 */
import { Duration, Effect, HashMap, Layer, Logger, type LogLevel, type Scope, Tracer } from "effect"
import type { KinesisStorageException } from "../../src/Errors.js"
import * as RecordStorage from "../../src/engine/cache/RecordStorage.js"
import * as FlushEngine from "../../src/engine/flush/FlushEngine.js"
import { RecordSender, ServiceError } from "../../src/engine/send/RecordSender.js"
import { defaultStreamConcurrency } from "../../src/KinesisClientConfig.js"
import { validate } from "../../src/RecordInput.js"
import * as MemoryKinesis from "../../src/testing/MemoryKinesis.js"

export {
  acceptAll,
  connectionRefused,
  type Responder,
  rejected,
  rejectWhere,
  resourceNotFound,
  respondAfter,
  type SentBatch,
  type SentEntry
} from "../../src/testing/MemoryKinesis.js"

/** A sender whose answers the test scripts, and the batches it has seen. */
export interface ScriptedSender {
  readonly sender: RecordSender
  readonly layer: Layer.Layer<RecordSender>
  /** Every call so far, in call order. */
  readonly calls: Effect.Effect<ReadonlyArray<MemoryKinesis.SentBatch>>
}

/**
 * A scripted sender: the in-memory Kinesis of `effect-kinesis/testing`, each call recorded, then
 * answered by `respond`, with no timeout of its own (the tests hold calls open on purpose).
 */
export const makeScriptedSender = (
  respond: MemoryKinesis.Responder = MemoryKinesis.acceptAll
): Effect.Effect<ScriptedSender> =>
  Effect.map(MemoryKinesis.make({ respond, requestTimeout: Duration.infinity }), (kinesis) => ({
    sender: kinesis.sender,
    layer: Layer.succeed(RecordSender, kinesis.sender),
    calls: kinesis.requests
  }))

/** Answers each stream with its own responder; streams without one are accepted. */
export const byStream =
  (responders: Readonly<Record<string, MemoryKinesis.Responder>>): MemoryKinesis.Responder =>
  (stream, entries, call) =>
    (responders[stream] ?? MemoryKinesis.acceptAll)(stream, entries, call)

/** The partition keys of a batch, in the order sent. */
export const keysOf = (batch: MemoryKinesis.SentBatch): ReadonlyArray<string> =>
  batch.entries.map((entry) => entry.partitionKey)

/** Refuses every request as a whole with the error `name` and HTTP `status`. */
export const refusedWith =
  (name: string, status: number): MemoryKinesis.Responder =>
  () =>
    Effect.fail(new ServiceError({ name, status, message: `${name} (test)` }))

/** A real SQLite cache in memory, open as long as the scope. */
export const memoryStorage = (
  cacheMaxBytes = 256 * 1024 * 1024
): Effect.Effect<RecordStorage.RecordStorage, KinesisStorageException, Scope.Scope> =>
  RecordStorage.make({ filename: ":memory:", cacheMaxBytes })

/**
 * Builds the engine over the given storage and sender; the options not given take the client's
 * defaults (`countThrottling: true`, `drain: false`, `streamConcurrency: 4`, `requestsPerStream: 1`).
 */
export const makeEngine = (
  storage: RecordStorage.RecordStorage,
  sender: RecordSender,
  maxRetries: number,
  options: Partial<Omit<FlushEngine.FlushEngineOptions, "maxRetries">> = {}
): Effect.Effect<FlushEngine.FlushEngine> =>
  FlushEngine.make({
    maxRetries,
    countThrottling: true,
    drain: false,
    streamConcurrency: defaultStreamConcurrency,
    requestsPerStream: 1,
    ...options
  }).pipe(Effect.provideService(RecordStorage.RecordStorage, storage), Effect.provideService(RecordSender, sender))

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Bytes of a string, for readable test data. */
export const bytes = (text: string): Uint8Array => encoder.encode(text)

/** A string back from bytes. */
export const text = (data: Uint8Array): string => decoder.decode(data)

/** Validates and stores one record; a validation failure is a bug in the test. */
export const put = (
  storage: RecordStorage.RecordStorage,
  streamName: string,
  partitionKey: string,
  data: Uint8Array | string
) =>
  validate({ streamName, partitionKey, data: typeof data === "string" ? bytes(data) : data }).pipe(
    Effect.orDie,
    Effect.flatMap(storage.insert)
  )

/** Every cached record of a stream, oldest first. */
export const cached = (storage: RecordStorage.RecordStorage, streamName: string) =>
  storage.batch(streamName, { maxRecords: 1_000_000, maxBytes: Number.MAX_SAFE_INTEGER })

/** The data of every entry in the given calls, as text, in the order sent. */
export const sentTexts = (calls: ReadonlyArray<MemoryKinesis.SentBatch>): ReadonlyArray<string> =>
  calls.flatMap((batch) => batch.entries.map((entry) => text(entry.data)))

/** A log line as the capturing logger kept it. */
export interface LogEntry {
  readonly level: LogLevel.LogLevel["label"]
  readonly message: string
  readonly annotations: Readonly<Record<string, string>>
}

const show = (value: unknown): string =>
  Array.isArray(value) ? value.map(show).join(" ") : typeof value === "string" ? value : JSON.stringify(value)

/** A logger that keeps every line, in place of the default one. */
export const captureLogs = Effect.sync(() => {
  const lines: Array<LogEntry> = []
  const logger = Logger.make<unknown, void>(({ logLevel, message, annotations }) => {
    lines.push({
      level: logLevel.label,
      message: show(message),
      annotations: Object.fromEntries([...HashMap.toEntries(annotations)].map(([key, value]) => [key, show(value)]))
    })
  })
  return {
    layer: Logger.replace(Logger.defaultLogger, logger),
    lines: Effect.sync((): ReadonlyArray<LogEntry> => [...lines])
  }
})

/** What a flush that ran returns: the given counts, every other one 0. */
export const flushData = (counts: Partial<FlushEngine.FlushData>): FlushEngine.FlushData => ({
  recordsFlushed: 0,
  recordsFailed: 0,
  recordsDropped: 0,
  recordsRemaining: 0,
  flushInProgress: false,
  ...counts
})

/** What a flush returns when another one is running: every count 0. */
export const inProgress: FlushEngine.FlushData = { ...flushData({}), flushInProgress: true }

/**
 * Runs `effect` with a tracer that keeps every span beside the current tracer's work; gives the
 * attributes (stream, record count, outcome) of each `FlushEngine.putRecords` span, in start order.
 */
export const putRecordsSpans = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const spans: Array<Tracer.Span> = []
    const tracer = yield* Effect.tracer
    const capturing = Tracer.make({
      span: (...args) => {
        const span = tracer.span(...args)
        spans.push(span)
        return span
      },
      context: tracer.context
    })
    yield* Effect.exit(effect.pipe(Effect.withTracer(capturing)))
    return spans
      .filter((span) => span.name === "FlushEngine.putRecords")
      .map((span) => Object.fromEntries(span.attributes))
  })
