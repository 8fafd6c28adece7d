/**
 * Test helpers for the flush engine: a scripted `RecordSender` that records every batch it is
 * handed, a real SQLite cache to fill, and a logger that keeps what was logged.
 *
 * The scripted sender replaces the real one only where kinesalite can't go: partial failures,
 * throttling, entry-count mismatches, slow or missing responses.
 */
import { KinesisClient as SdkClient } from "@aws-sdk/client-kinesis"
import { Effect, HashMap, Layer, Logger, type LogLevel, Ref, type Scope } from "effect"
import type { KinesisStorageException } from "../../src/Errors.js"
import * as FlushEngine from "../../src/FlushEngine.js"
import { validate } from "../../src/RecordInput.js"
import { type EntryResult, NoResponse, type PutEntry, RecordSender, ServiceError } from "../../src/RecordSender.js"
import * as RecordStorage from "../../src/RecordStorage.js"

/** An SDK client for the `sdkClient` field of test senders; never called. */
export const unusedSdkClient = new SdkClient({ region: "us-east-1" })

/** One entry as the sender saw it, copied out of the call. */
export interface SentEntry {
  readonly partitionKey: string
  readonly data: Uint8Array
}

/** One `putRecords` call as the sender saw it. */
export interface SentBatch {
  readonly stream: string
  readonly entries: ReadonlyArray<SentEntry>
  readonly bytes: number
}

/** Decides the answer to one call: `call` counts from 0 over the sender's lifetime. */
export type Responder = (
  stream: string,
  entries: ReadonlyArray<PutEntry>,
  call: number
) => Effect.Effect<ReadonlyArray<EntryResult>, ServiceError | NoResponse>

/** A sender whose answers the test scripts, and the batches it has seen. */
export interface ScriptedSender {
  readonly sender: RecordSender
  readonly layer: Layer.Layer<RecordSender>
  /** Every call so far, in call order. */
  readonly calls: Effect.Effect<ReadonlyArray<SentBatch>>
}

const accepted: EntryResult = { _tag: "Accepted" }

/** A rejection as Kinesis gives it in a `PutRecords` response entry. */
export const rejected = (
  errorCode = "ProvisionedThroughputExceededException",
  errorMessage = "Rate exceeded for shard"
): EntryResult => ({ _tag: "Rejected", errorCode, errorMessage })

/** Accepts every entry. */
export const acceptAll: Responder = (_stream, entries) => Effect.succeed(entries.map(() => accepted))

/** Rejects the entries the predicate picks and accepts the rest. */
export const rejectWhere =
  (predicate: (entry: PutEntry, stream: string) => boolean, errorCode?: string): Responder =>
  (stream, entries) =>
    Effect.succeed(entries.map((entry) => (predicate(entry, stream) ? rejected(errorCode) : accepted)))

/** Runs `first` on every call (given the call number), then answers with `respond`. */
export const respondAfter =
  (
    first: (call: number) => Effect.Effect<void, ServiceError | NoResponse>,
    respond: Responder = acceptAll
  ): Responder =>
  (stream, entries, call) =>
    Effect.zipRight(first(call), respond(stream, entries, call))

/** The request-level error the service gives for a stream that does not exist (HTTP 400). */
export const resourceNotFound = (stream: string) =>
  new ServiceError({
    name: "ResourceNotFoundException",
    status: 400,
    message: `Stream ${stream} under account 000000000000 not found.`
  })

/** What the sender reports when nothing answered. */
export const connectionRefused = () =>
  new NoResponse({ message: "No response from Kinesis: Error: connect ECONNREFUSED 127.0.0.1:1" })

/** A scripted sender: each call is recorded, then answered by `respond`. */
export const makeScriptedSender = (respond: Responder = acceptAll): Effect.Effect<ScriptedSender> =>
  Effect.gen(function* () {
    const calls = yield* Ref.make<ReadonlyArray<SentBatch>>([])
    const sender = RecordSender.of({
      sdkClient: unusedSdkClient,
      putRecords: (stream, entries) =>
        Ref.modify(calls, (seen): [number, ReadonlyArray<SentBatch>] => [
          seen.length,
          [
            ...seen,
            {
              stream,
              entries: entries.map((entry) => ({
                partitionKey: entry.partitionKey,
                data: Uint8Array.from(entry.data)
              })),
              bytes: entries.reduce(
                (total, entry) => total + entry.data.byteLength + Buffer.byteLength(entry.partitionKey, "utf8"),
                0
              )
            }
          ]
        ]).pipe(Effect.flatMap((call) => respond(stream, entries, call)))
    })
    return { sender, layer: Layer.succeed(RecordSender, sender), calls: Ref.get(calls) }
  })

/** A real SQLite cache in memory, open as long as the scope. */
export const memoryStorage = (
  cacheMaxBytes = 256 * 1024 * 1024
): Effect.Effect<RecordStorage.RecordStorage, KinesisStorageException, Scope.Scope> =>
  RecordStorage.make({ filename: ":memory:", cacheMaxBytes })

/** Builds the engine over the given storage and sender. */
export const makeEngine = (
  storage: RecordStorage.RecordStorage,
  sender: RecordSender,
  maxRetries: number
): Effect.Effect<FlushEngine.FlushEngine> =>
  FlushEngine.make({ maxRetries }).pipe(
    Effect.provideService(RecordStorage.RecordStorage, storage),
    Effect.provideService(RecordSender, sender)
  )

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
export const sentTexts = (calls: ReadonlyArray<SentBatch>): ReadonlyArray<string> =>
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
