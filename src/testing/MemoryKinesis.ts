/**
 * An in-memory Kinesis for tests: a `RecordSender` that keeps every request it is handed and the
 * records it accepted, and answers as it is told: accept, throttle chosen records, refuse the whole
 * request, or give no response (at once, or by hanging until the request timeout).
 *
 * `MemoryKinesis.layerClient()` is a whole `KinesisClient` over it and a real SQLite cache in
 * memory: the client behaves as in production, only nothing leaves the process.
 *
 * @example
 * import { Effect } from "effect"
 * import { KinesisClient } from "effect-kinesis"
 * import { MemoryKinesis } from "effect-kinesis/testing"
 *
 * const test = Effect.gen(function* () {
 *   const client = yield* KinesisClient.KinesisClient
 *   const kinesis = yield* MemoryKinesis.MemoryKinesis
 *   yield* client.record({ data: new Uint8Array([1]), partitionKey: "p", streamName: "events" })
 *   yield* client.flush()
 *   const delivered = yield* kinesis.records("events") // [{ partitionKey: "p", data, ... }]
 * }).pipe(Effect.provide(MemoryKinesis.layerClient()))
 *
 * @since 0.1.0
 */
import { KinesisClient as SdkClient } from "@aws-sdk/client-kinesis"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import type { KinesisStorageException, KinesisValidationException } from "../Errors.js"
import * as RecordStorage from "../engine/cache/RecordStorage.js"
import { type EntryResult, NoResponse, type PutEntry, RecordSender, ServiceError } from "../engine/send/RecordSender.js"
import * as KinesisClient from "../KinesisClient.js"
import { type KinesisClientOptions, resolveOptions } from "../KinesisClientConfig.js"

/** One entry as the in-memory Kinesis saw it, copied out of the request. */
export interface SentEntry {
  readonly partitionKey: string
  readonly data: Uint8Array
}

/** One `PutRecords` request as the in-memory Kinesis saw it, whatever its answer. */
export interface SentBatch {
  readonly stream: string
  readonly entries: ReadonlyArray<SentEntry>
  /** The request's record sizes added up: data bytes plus UTF-8 bytes of the partition keys. */
  readonly bytes: number
}

/** A record the in-memory Kinesis accepted. */
export interface AcceptedRecord extends SentEntry {
  readonly stream: string
  /** Counts from "0" over the in-memory Kinesis's lifetime, in acceptance order. */
  readonly sequenceNumber: string
}

/**
 * Decides the answer to one request: the result of each entry, in request order, or a request-level
 * failure. `call` counts from 0 over the in-memory Kinesis's lifetime.
 */
export type Responder = (
  stream: string,
  entries: ReadonlyArray<PutEntry>,
  call: number
) => Effect.Effect<ReadonlyArray<EntryResult>, ServiceError | NoResponse>

const accepted: EntryResult = { _tag: "Accepted" }

/** A per-record refusal as Kinesis gives it in a `PutRecords` response. */
export const rejected = (
  errorCode = "ProvisionedThroughputExceededException",
  errorMessage = "Rate exceeded for shard"
): EntryResult => ({ _tag: "Rejected", errorCode, errorMessage })

/** Accepts every entry. */
export const acceptAll: Responder = (_stream, entries) => Effect.succeed(entries.map(() => accepted))

/** Refuses the entries the predicate picks with `errorCode` (default: throttling) and accepts the rest. */
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
export const resourceNotFound = (stream: string): ServiceError =>
  new ServiceError({
    name: "ResourceNotFoundException",
    status: 400,
    message: `Stream ${stream} under account 000000000000 not found.`
  })

/** What the sender reports when nothing answered. */
export const connectionRefused = (): NoResponse =>
  new NoResponse({ message: "No response from Kinesis: Error: connect ECONNREFUSED 127.0.0.1:1" })

/** The in-memory Kinesis service: what it saw, and the means to change how it answers. */
export interface MemoryKinesis {
  /** The `RecordSender` to build a client with. */
  readonly sender: RecordSender
  /** Every request so far, in call order, whatever its answer. */
  readonly requests: Effect.Effect<ReadonlyArray<SentBatch>>
  /**
   * Waits until at least `count` requests have been answered: accepted, refused, or given up as no
   * response. Under `TestClock`, the way to let an automatic flush that time set off finish.
   */
  readonly awaitRequests: (count: number) => Effect.Effect<void>
  /** The records accepted so far, in acceptance order; only those of `stream` when given. */
  readonly records: (stream?: string) => Effect.Effect<ReadonlyArray<AcceptedRecord>>
  /** Answers every later request with `respond` (what is accepted is kept, as always). */
  readonly respondWith: (respond: Responder) => Effect.Effect<void>
  /** Accepts every record from now on (the initial behaviour). */
  readonly accept: Effect.Effect<void>
  /**
   * Refuses records with `ProvisionedThroughputExceededException` (each charged an attempt by the
   * client unless `countThrottling` is false): those the predicate picks, or every record when there
   * is none.
   */
  readonly throttle: (predicate?: (entry: PutEntry, stream: string) => boolean) => Effect.Effect<void>
  /** Refuses every request as a whole, as the service does (default: `ResourceNotFoundException`, HTTP 400). */
  readonly refuse: (error?: {
    readonly name: string
    readonly status: number
    readonly message?: string
  }) => Effect.Effect<void>
  /** Gives no response: every request fails at once as a refused connection would. */
  readonly noResponse: Effect.Effect<void>
  /** Never answers: every request waits until the request timeout, then counts as no response. */
  readonly hang: Effect.Effect<void>
}

/** The `MemoryKinesis` service tag. */
export const MemoryKinesis = Context.GenericTag<MemoryKinesis>("effect-kinesis/testing/MemoryKinesis")

/** The settings of an in-memory Kinesis. */
export interface MemoryKinesisOptions {
  /** How the first requests are answered. Default `acceptAll`. */
  readonly respond?: Responder
  /**
   * How long a request that gets no answer waits before it counts as no response. Default 30
   * seconds; `Duration.infinity` waits for the answer however long it takes.
   */
  readonly requestTimeout?: Duration.DurationInput
}

const recordBytes = (entries: ReadonlyArray<PutEntry>): number =>
  entries.reduce((total, entry) => total + entry.data.byteLength + Buffer.byteLength(entry.partitionKey, "utf8"), 0)

/**
 * Builds an in-memory Kinesis. Its `sdkClient` (the client's `kinesisClient` escape hatch) is an
 * AWS SDK client that this module never calls and that points at no server.
 */
export const make = (options: MemoryKinesisOptions = {}): Effect.Effect<MemoryKinesis> =>
  Effect.gen(function* () {
    const requests = yield* Ref.make<ReadonlyArray<SentBatch>>([])
    const records = yield* Ref.make<ReadonlyArray<AcceptedRecord>>([])
    const responder = yield* Ref.make<Responder>(options.respond ?? acceptAll)
    const waiters = yield* Ref.make<
      ReadonlyArray<{ readonly count: number; readonly arrived: Deferred.Deferred<void> }>
    >([])
    const wake = (seen: number) =>
      Effect.flatMap(
        Ref.modify(waiters, (all) => [all.filter((w) => w.count <= seen), all.filter((w) => w.count > seen)]),
        (ready) =>
          Effect.all(
            ready.map((w) => Deferred.succeed(w.arrived, undefined)),
            { discard: true }
          )
      )
    const answered = yield* Ref.make(0)
    const awaitRequests = (count: number) =>
      Effect.gen(function* () {
        const arrived = yield* Deferred.make<void>()
        yield* Ref.update(waiters, (all) => [...all, { count, arrived }])
        yield* wake(yield* Ref.get(answered))
        yield* Deferred.await(arrived)
      })
    const requestTimeout = Duration.decode(options.requestTimeout ?? "30 seconds")
    const sdkClient = new SdkClient({ region: "us-east-1", endpoint: "http://127.0.0.1:9" })

    const keepAccepted = (stream: string, entries: ReadonlyArray<SentEntry>, results: ReadonlyArray<EntryResult>) =>
      Ref.update(records, (kept) => {
        const added: Array<AcceptedRecord> = []
        results.forEach((result, i) => {
          const entry = entries[i]
          if (result._tag === "Accepted" && entry !== undefined) {
            added.push({ ...entry, stream, sequenceNumber: String(kept.length + added.length) })
          }
        })
        return [...kept, ...added]
      })

    const sender = RecordSender.of({
      sdkClient,
      putRecords: (stream, entries) =>
        Effect.gen(function* () {
          const copied = entries.map((entry) => ({
            partitionKey: entry.partitionKey,
            data: Uint8Array.from(entry.data)
          }))
          const call = yield* Ref.modify(requests, (seen): [number, ReadonlyArray<SentBatch>] => [
            seen.length,
            [...seen, { stream, entries: copied, bytes: recordBytes(entries) }]
          ])
          const respond = yield* Ref.get(responder)
          const answer = respond(stream, entries, call)
          const results = yield* Duration.isFinite(requestTimeout)
            ? Effect.timeoutFail(answer, {
                duration: requestTimeout,
                onTimeout: () => new NoResponse({ message: "No response from Kinesis: the request timed out" })
              })
            : answer
          yield* keepAccepted(stream, copied, results)
          return results
        }).pipe(
          Effect.ensuring(
            Effect.flatMap(
              Ref.updateAndGet(answered, (n) => n + 1),
              wake
            )
          )
        )
    })

    const respondWith = (respond: Responder) => Ref.set(responder, respond)
    return MemoryKinesis.of({
      sender,
      requests: Ref.get(requests),
      awaitRequests,
      records: (stream) =>
        Effect.map(Ref.get(records), (all) => (stream === undefined ? all : all.filter((r) => r.stream === stream))),
      respondWith,
      accept: respondWith(acceptAll),
      throttle: (predicate = () => true) => respondWith(rejectWhere(predicate)),
      refuse: (error = { name: "ResourceNotFoundException", status: 400 }) =>
        respondWith((stream) =>
          Effect.fail(
            new ServiceError({
              name: error.name,
              status: error.status,
              message: error.message ?? `${error.name} for stream ${stream}`
            })
          )
        ),
      noResponse: respondWith(() => Effect.fail(connectionRefused())),
      hang: respondWith(() => Effect.never)
    })
  })

/** The in-memory Kinesis as a layer, providing both itself and the `RecordSender` it implements. */
export const layer = (options: MemoryKinesisOptions = {}): Layer.Layer<MemoryKinesis | RecordSender> =>
  Layer.effectContext(
    Effect.map(make(options), (kinesis) =>
      Context.make(MemoryKinesis, kinesis).pipe(Context.add(RecordSender, kinesis.sender))
    )
  )

/** The settings of `layerClient`. */
export interface ClientOptions extends KinesisClientOptions {
  /** How the first requests are answered. Default `acceptAll`. */
  readonly respond?: Responder
}

/**
 * A real `KinesisClient` over a SQLite cache in memory (`:memory:`) and an in-memory Kinesis, and
 * that in-memory Kinesis to assert on. The options are the client's (defaults as in production,
 * so automatic flushes come every 30 seconds: under `TestClock` only when the test moves time);
 * `requestTimeout` also bounds a request that `hang` holds. Fails with `KinesisValidationException`
 * for bad options.
 */
export const layerClient = (
  options: ClientOptions = {}
): Layer.Layer<KinesisClient.KinesisClient | MemoryKinesis, KinesisValidationException | KinesisStorageException> => {
  const { respond, ...clientOptions } = options
  return Layer.unwrapEffect(
    Effect.map(resolveOptions(clientOptions), (resolved) => {
      const kinesis = layer({ requestTimeout: resolved.requestTimeout, ...(respond ? { respond } : {}) })
      const storage = RecordStorage.layer({ filename: ":memory:", cacheMaxBytes: resolved.cacheMaxBytes })
      return Layer.scoped(
        KinesisClient.KinesisClient,
        Effect.flatMap(RecordSender, (sender) =>
          KinesisClient.makeWith(
            resolved,
            Layer.merge(storage, Layer.succeed(RecordSender, sender)),
            () => sender.sdkClient
          )
        )
      ).pipe(Layer.provideMerge(kinesis))
    })
  )
}
