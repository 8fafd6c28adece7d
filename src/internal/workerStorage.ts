/**
 * The cache on a worker thread: a `RecordStorage` whose actor and SQLite connection live in a
 * `worker_threads` Worker (`storageWorker.ts`), so that no statement runs on the caller's event loop.
 *
 * On the caller's side it is a thin proxy. Inserts are packed into one buffer per group and
 * transferred; each caller is answered when the worker says its record is committed. Other
 * operations are one message and one reply each. If the worker dies, every call waiting on it
 * fails with `KinesisStorageException` (only committed records were acknowledged, so nothing
 * acknowledged is lost) and the next call starts a new worker, or says why it can't.
 *
 * The worker does not keep the process alive while nothing waits on it.
 *
 * @internal
 */
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { type ErrorFields, KinesisLimitExceededException, KinesisStorageException } from "../Errors.js"
import * as CacheFile from "../engine/cache/cacheFile.js"
import {
  type BatchAnswer,
  type BatchLimits,
  type CacheStatus,
  type DroppedRecords,
  RecordStorage,
  type RecordStorageOptions,
  type StoredRecord
} from "../engine/cache/RecordStorage.js"
import type { ValidRecord } from "../RecordInput.js"
import {
  type ErrorMessage,
  packInserts,
  type Reply,
  type Request,
  unpackBatch,
  type WorkerOptions
} from "./storageMessages.js"

/** How many records, and bytes of record sizes, one group handed to the worker holds at most. */
const maxGroupRecords = 500
const maxGroupBytes = 4 * 1024 * 1024

/** How many groups may wait in the worker at once; later records gather into the next group meanwhile. */
const maxGroupsInFlight = 2

type InsertError = KinesisLimitExceededException | KinesisStorageException

interface QueuedInsert {
  readonly record: ValidRecord
  readonly resume: (outcome: Effect.Effect<void, InsertError>) => void
}

/** Request bodies: the id is added when the request is sent. */
type Call = Request extends infer R ? (R extends { readonly id: number } ? Omit<R, "id"> : never) : never

const toError = (error: ErrorMessage): InsertError =>
  error._tag === "KinesisLimitExceededException"
    ? new KinesisLimitExceededException(fields(error))
    : new KinesisStorageException(fields(error))

const fields = ({ message, recoverySuggestion }: ErrorFields) =>
  recoverySuggestion === undefined ? { message } : { message, recoverySuggestion }

const toMessage = (error: KinesisStorageException): ErrorMessage => ({ _tag: error._tag, ...fields(error) })

const storageFailure: ErrorMessage = { _tag: "KinesisStorageException", message: "The cache failed" }

/**
 * Starts the worker's script, next to this module: the built `.js`; or, when the library runs from
 * its TypeScript sources (its own tests and benchmarks), the `.ts` through tsx's require hook. A
 * worker does not inherit the loader of the thread that starts it, and tsx's in-thread require hook
 * starts faster than its module hooks, which serve every import from another thread.
 */
export const startWorker = (options: WorkerOptions): Worker => {
  // A small young generation: the worker's garbage is short-lived buffers, and the default would let
  // the thread hold 10 MiB or more of it before collecting. A small old generation too (the worker's
  // live heap is 20-35 MiB): V8 then collects it fully far more often, and with it the row buffers of
  // the batches it read, which otherwise pile up by the tens of MiB between full collections.
  const settings = { workerData: options, resourceLimits: { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 64 } }
  if (!import.meta.url.endsWith(".ts")) {
    return new Worker(new URL("./storageWorker.js", import.meta.url), settings)
  }
  const script = JSON.stringify(fileURLToPath(new URL("./storageWorker.ts", import.meta.url)))
  return new Worker(`require("tsx/cjs/api").register(); require(${script})`, { ...settings, eval: true })
}

/** How a worker is started: `startWorker`, or, in tests, a wrapper that keeps hold of it. */
export type StartWorker = (options: WorkerOptions) => Worker

/** One running worker and the calls waiting on it. */
interface Connection {
  readonly call: (request: Call, transfer?: ArrayBuffer) => Promise<Reply>
  readonly stop: () => Promise<void>
}

/** Starts a worker on the cache file; resolves once the cache is open, rejects with the reason it isn't. */
const connect = (options: WorkerOptions, start: StartWorker, onDeath: () => void): Promise<Connection> =>
  new Promise((resolve, reject) => {
    const worker = start(options)
    const pending = new Map<number, (reply: Reply) => void>()
    let nextId = 0
    let ready = false
    let alive = true

    // Referenced only while a call waits on it: an idle client never keeps the process alive.
    const track = () => (pending.size === 0 ? worker.unref() : worker.ref())

    const die = (reason: string) => {
      if (!alive) return
      alive = false
      const error = new KinesisStorageException({
        message: `The cache worker stopped: ${reason}`,
        recoverySuggestion:
          "Try again: the next call starts a new worker. Records acknowledged before are in the cache."
      })
      if (!ready) return reject(error)
      for (const answer of pending.values()) answer({ _tag: "Failed", id: -1, error: toMessage(error) })
      pending.clear()
      onDeath()
    }

    worker.on("message", (reply: Reply) => {
      if (reply._tag === "Ready") {
        ready = true
        track()
        return resolve({
          call: (request, transfer) =>
            new Promise((answer) => {
              if (!alive) {
                return answer({
                  _tag: "Failed",
                  id: -1,
                  error: { _tag: "KinesisStorageException", message: "The cache worker stopped" }
                })
              }
              const id = nextId++
              pending.set(id, answer)
              track()
              // An empty transfer list is not free: postMessage is several times slower with one.
              if (transfer === undefined) worker.postMessage({ ...request, id })
              else worker.postMessage({ ...request, id }, [transfer])
            }),
          stop: () =>
            new Promise<void>((stopped) => {
              if (!alive) return stopped()
              worker.once("exit", () => stopped())
              const id = nextId++
              pending.set(id, () => {
                alive = false
                void worker.terminate()
              })
              track()
              worker.postMessage({ _tag: "Close", id } satisfies Request)
            })
        })
      }
      if (reply._tag === "OpenFailed") {
        alive = false
        void worker.terminate()
        return reject(toError(reply.error))
      }
      const answer = pending.get(reply.id)
      pending.delete(reply.id)
      track()
      answer?.(reply)
    })
    worker.on("error", (error) => die(error.message))
    worker.on("exit", (code) => die(`it exited with code ${code}`))
  })

/**
 * A cache served by a worker thread. The worker starts (and opens the cache) when this is built, so
 * the failures of opening (a file in use, a corrupt file) come from here as they do in-process. A
 * file owned by another client is refused on this thread first, without waiting for a worker.
 */
export const make = (
  options: RecordStorageOptions,
  start: StartWorker = startWorker
): Effect.Effect<RecordStorage, KinesisStorageException, Scope.Scope> =>
  Effect.gen(function* () {
    if (options.filename !== CacheFile.inMemory) yield* CacheFile.claimFile(options.filename)
    const workerOptions: WorkerOptions = { filename: options.filename, cacheMaxBytes: options.cacheMaxBytes }
    let connection: Promise<Connection> | undefined
    let open = true

    /** The running worker, or a new one if the last one died. */
    const current = (): Promise<Connection> => {
      connection ??= connect(workerOptions, start, () => {
        connection = undefined
      })
      // A worker that failed to start is not kept: the next call tries again.
      connection.catch(() => {
        connection = undefined
      })
      return connection
    }

    const closedError = () => new KinesisStorageException({ message: "The cache database is closed" })

    /** Sends a request to the worker (starting one if none runs); a worker that can't start is a `Failed` reply. */
    const call = (request: Call, transfer?: ArrayBuffer): Promise<Reply> =>
      current().then(
        (worker) => worker.call(request, transfer),
        (error: KinesisStorageException): Reply => ({ _tag: "Failed", id: -1, error: toMessage(error) })
      )

    const send = (request: Call): Effect.Effect<Reply, KinesisStorageException> =>
      Effect.async<Reply, KinesisStorageException>((resume) => {
        if (!open) return resume(Effect.fail(closedError()))
        void call(request).then((reply) => resume(Effect.succeed(reply)))
      })

    /** Sends a request whose reply carries a value. */
    const request = <A>(call: Call): Effect.Effect<A, KinesisStorageException> =>
      Effect.flatMap(send(call), (reply) =>
        reply._tag === "Failed"
          ? Effect.fail(new KinesisStorageException(fields(reply.error)))
          : Effect.succeed((reply as Extract<Reply, { _tag: "Done" }>).value as A)
      )

    // ---- inserts, handed over in groups -------------------------------------------------------

    /** Inserts waiting to be handed over, from `head` on (taking a group moves `head`, copies nothing). */
    let queued: Array<QueuedInsert> = []
    let head = 0
    let scheduled = false

    /** Takes up to one group's worth of the queued inserts. */
    const takeGroup = (): Array<QueuedInsert> => {
      let bytes = 0
      let end = head
      while (end < queued.length && end - head < maxGroupRecords) {
        const size = queued[end]!.record.size
        if (end > head && bytes + size > maxGroupBytes) break
        bytes += size
        end++
      }
      const group = queued.slice(head, end)
      head = end
      if (head === queued.length) {
        queued = []
        head = 0
      }
      return group
    }

    /** The groups handed to the worker and not yet answered. */
    const inFlight = new Set<Promise<void>>()

    const sendGroups = () => {
      scheduled = false
      while (head < queued.length && inFlight.size < maxGroupsInFlight) {
        const group = takeGroup()
        const packed = packInserts(group.map((insert) => insert.record))
        const answered: Promise<void> = call({ _tag: "Insert", records: packed }, packed).then((reply) => {
          inFlight.delete(answered)
          answerGroup(group, reply)
          sendGroups()
        })
        inFlight.add(answered)
      }
    }

    const answerGroup = (group: ReadonlyArray<QueuedInsert>, reply: Reply) => {
      if (reply._tag === "Inserted") {
        const failed = new Map(reply.failures.map((failure) => [failure.index, toError(failure.error)]))
        for (const [index, insert] of group.entries()) {
          const error = failed.get(index)
          insert.resume(error === undefined ? Effect.void : Effect.fail(error))
        }
        return
      }
      const error = toError(reply._tag === "Failed" ? reply.error : storageFailure)
      for (const insert of group) insert.resume(Effect.fail(error))
    }

    const insert = (record: ValidRecord): Effect.Effect<void, InsertError> =>
      Effect.async<void, InsertError>((resume) => {
        if (!open) return resume(Effect.fail(closedError()))
        queued.push({ record, resume })
        if (!scheduled) {
          scheduled = true
          queueMicrotask(sendGroups)
        }
      })

    // ---- lifetime -----------------------------------------------------------------------------

    yield* Effect.tryPromise({
      try: () => current(),
      catch: (error) =>
        error instanceof KinesisStorageException
          ? error
          : new KinesisStorageException({ message: "Could not start the cache worker", cause: error })
    })
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        open = false
        // Inserts already queued are handed over and answered first: the worker answers every
        // request sent before Close.
        sendGroups()
        while (inFlight.size > 0) await Promise.all(inFlight)
        const running = connection
        connection = undefined
        await running?.then(
          (worker) => worker.stop(),
          () => undefined
        )
      })
    )

    return RecordStorage.of({
      insert,
      insertAll: (records) =>
        Effect.forEach(records, (record) => Effect.either(insert(record)), { concurrency: "unbounded" }).pipe(
          Effect.map((outcomes) => outcomes.map((outcome) => (outcome._tag === "Left" ? outcome.left : undefined)))
        ),
      streams: request<ReadonlyArray<string>>({ _tag: "Streams" }),
      batch: (streamName: string, limits: BatchLimits) =>
        Effect.flatMap(send({ _tag: "Batch", streamName, limits }), (reply) =>
          reply._tag === "Batch"
            ? Effect.succeed<ReadonlyArray<StoredRecord>>(unpackBatch(reply.streamName, reply.records))
            : Effect.fail(
                new KinesisStorageException(
                  reply._tag === "Failed" ? fields(reply.error) : { message: "The cache failed to read a batch" }
                )
              )
        ),
      settle: (answer: BatchAnswer, maxAttempts: number) =>
        request<DroppedRecords>({ _tag: "Settle", answer, maxAttempts }),
      expire: (olderThan: number) => request<DroppedRecords>({ _tag: "Expire", olderThan }),
      clear: request<number>({ _tag: "Clear" }),
      status: request<CacheStatus>({ _tag: "Status" })
    })
  })

/** The worker-hosted cache as a layer: the worker starts when the layer is built and stops with its scope. */
export const layer = (
  options: RecordStorageOptions,
  start?: StartWorker
): Layer.Layer<RecordStorage, KinesisStorageException> => Layer.scoped(RecordStorage, make(options, start))
