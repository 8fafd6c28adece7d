/**
 * The cache worker: a `worker_threads` thread that owns the cache. It opens the database with the
 * same `RecordStorage` actor as the in-process cache, serves the requests of the caller's thread in
 * order, and answers each one. Nothing here runs on the caller's event loop.
 *
 * @internal
 */
import { parentPort, workerData } from "node:worker_threads"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { isAmplifyKinesisException, KinesisStorageException } from "../Errors.js"
import * as Database from "../engine/cache/database.js"
import * as RecordStorage from "../engine/cache/RecordStorage.js"
import {
  type ErrorMessage,
  type InsertFailure,
  packBatch,
  type Reply,
  type Request,
  unpackInserts,
  type WorkerOptions
} from "./storageMessages.js"

const port = parentPort!
const options = workerData as WorkerOptions

// An empty transfer list is not free: postMessage is several times slower with one than without.
const send = (reply: Reply, transfer?: ArrayBuffer) =>
  transfer === undefined ? port.postMessage(reply) : port.postMessage(reply, [transfer])

const toMessage = (error: unknown): ErrorMessage =>
  isAmplifyKinesisException(error) && error._tag === "KinesisLimitExceededException"
    ? {
        _tag: error._tag,
        message: error.message,
        ...(error.recoverySuggestion ? { recoverySuggestion: error.recoverySuggestion } : {})
      }
    : {
        _tag: "KinesisStorageException",
        message: error instanceof Error ? error.message : String(error),
        ...(error instanceof KinesisStorageException && error.recoverySuggestion
          ? { recoverySuggestion: error.recoverySuggestion }
          : {})
      }

/** Runs one request against the cache and sends its reply. */
const serve = (storage: RecordStorage.RecordStorage, request: Exclude<Request, { _tag: "Close" }>) => {
  const { id } = request
  switch (request._tag) {
    case "Insert":
      return Effect.map(storage.insertAll(unpackInserts(request.records)), (errors) => {
        const failures: Array<InsertFailure> = []
        for (const [index, error] of errors.entries()) {
          if (error !== undefined) failures.push({ index, error: toMessage(error) })
        }
        send({ _tag: "Inserted", id, failures })
      })
    case "Batch":
      return reply(id, storage.batch(request.streamName, request.limits), (records) => {
        const packed = packBatch(records)
        send({ _tag: "Batch", id, streamName: request.streamName, records: packed }, packed)
      })
    case "Streams":
      return reply(id, storage.streams)
    case "Settle":
      return reply(id, storage.settle(request.answer, request.maxAttempts))
    case "Expire":
      return reply(id, storage.expire(request.olderThan))
    case "Clear":
      return reply(id, storage.clear)
    case "Status":
      return reply(id, storage.status)
  }
}

const failureOf = (exit: Exit.Failure<unknown, unknown>): unknown =>
  exit.cause._tag === "Fail" ? exit.cause.error : new KinesisStorageException({ message: "The cache failed" })

/** Sends the outcome of `effect`: `Failed` with the error, or `Done` (or what `onSuccess` sends). */
const reply = <A>(
  id: number,
  effect: Effect.Effect<A, KinesisStorageException>,
  onSuccess: (value: A) => void = (value) => send({ _tag: "Done", id, value })
) =>
  Effect.matchCause(effect, {
    onFailure: (cause) =>
      send({
        _tag: "Failed",
        id,
        error: toMessage(
          cause._tag === "Fail" ? cause.error : new KinesisStorageException({ message: "The cache failed" })
        )
      }),
    onSuccess
  })

const main = Effect.gen(function* () {
  const scope = yield* Scope.make()
  const opened = yield* Effect.exit(Scope.extend(RecordStorage.makeOn(Database, options), scope))
  if (Exit.isFailure(opened)) {
    send({ _tag: "OpenFailed", error: toMessage(failureOf(opened)) })
    return yield* Scope.close(scope, Exit.void)
  }
  const storage = opened.value
  const requests = yield* Effect.async<void, never, never>((resume) => {
    port.on("message", (request: Request) => {
      if (request._tag === "Close") {
        // Every request before this one is queued in the actor already; closing the scope lets it
        // answer them all, then closes the database.
        Effect.runFork(
          Scope.close(scope, Exit.void).pipe(
            Effect.ensuring(Effect.sync(() => send({ _tag: "Done", id: request.id, value: undefined })))
          )
        ).addObserver(() => resume(Effect.void))
        return
      }
      Effect.runFork(serve(storage, request))
    })
    send({ _tag: "Ready" })
  })
  return requests
})

Effect.runFork(main).addObserver(() => port.close())
