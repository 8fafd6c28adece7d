/**
 * The cache on a worker thread: the same cache as in-process, served through messages, and what
 * happens when the worker dies (every waiting call fails with KinesisStorageException, nothing
 * acknowledged is lost, the next call starts a new worker).
 */
import * as path from "node:path"
import type { Worker } from "node:worker_threads"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { KinesisLimitExceededException, KinesisStorageException } from "../src/Errors.js"
import { FlushNone } from "../src/FlushStrategy.js"
import type { WorkerOptions } from "../src/internal/storageMessages.js"
import * as WorkerStorage from "../src/internal/workerStorage.js"
import * as KinesisClient from "../src/KinesisClient.js"
import { resolveOptions } from "../src/KinesisClientConfig.js"
import { validate } from "../src/RecordInput.js"
import { flushData, makeScriptedSender, respondAfter, sentTexts } from "./support/senders.js"
import { scopedTempDir } from "./support/tempDir.js"

const tempDir = scopedTempDir("effect-kinesis-worker-")

const record = (streamName: string, text: string) =>
  validate({ streamName, partitionKey: `pk-${text}`, data: new TextEncoder().encode(text) }).pipe(Effect.orDie)

const all = { maxRecords: 10_000, maxBytes: Number.MAX_SAFE_INTEGER }

/** Starts workers as the cache does, and keeps hold of each one started. */
const keepingWorkers = () => {
  const workers: Array<Worker> = []
  const start = (options: WorkerOptions) => {
    const worker = WorkerStorage.startWorker(options)
    workers.push(worker)
    return worker
  }
  return { workers, start }
}

/** A worker-hosted cache in a fresh directory, and a handle on the worker running it now. */
const openCache = (cacheMaxBytes = 1024 * 1024) =>
  Effect.gen(function* () {
    const filename = path.join(yield* tempDir, "cache.db")
    const { workers, start } = keepingWorkers()
    const storage = yield* WorkerStorage.make({ filename, cacheMaxBytes }, start)
    return { filename, storage, workers, current: () => workers[workers.length - 1]! }
  })

describe("the cache on a worker thread", () => {
  it.scopedLive("stores, reads, settles and clears like the in-process cache", () =>
    Effect.gen(function* () {
      const { storage } = yield* openCache()
      yield* Effect.forEach(["a", "b", "c", "d"], (text) => Effect.flatMap(record("s1", text), storage.insert))
      yield* Effect.flatMap(record("s2", "é😀"), storage.insert)
      expect(yield* storage.streams).toEqual(["s1", "s2"])

      const batch = yield* storage.batch("s1", all)
      expect(batch.map((r) => [r.partitionKey, new TextDecoder().decode(r.data), r.size, r.retryCount])).toEqual([
        ["pk-a", "a", 5, 0],
        ["pk-b", "b", 5, 0],
        ["pk-c", "c", 5, 0],
        ["pk-d", "d", 5, 0]
      ])
      const [other] = yield* storage.batch("s2", all)
      expect(other?.partitionKey).toBe("pk-é😀")
      expect(new TextDecoder().decode(other?.data)).toBe("é😀")

      const [a, b, , d] = batch
      yield* storage.settle(
        { _tag: "Answered", streamName: "s1", firstId: a!.id, lastId: d!.id, rejected: [b!.id], spared: [d!.id] },
        3
      )
      const left = yield* storage.batch("s1", all)
      expect(left.map((r) => [r.partitionKey, r.retryCount])).toEqual([
        ["pk-b", 1],
        ["pk-d", 0]
      ])
      expect(yield* storage.status).toMatchObject({ records: 3, bytes: 5 + 5 + 3 + 12 })
      expect(yield* storage.clear).toBe(3)
      expect(yield* storage.status).toEqual({ records: 0, bytes: 0, oldestCreatedAt: undefined })
    })
  )

  it.scopedLive("expires the records stored before a time, counted by stream, like the in-process cache", () =>
    Effect.gen(function* () {
      const { storage } = yield* openCache()
      yield* Effect.forEach(["a", "b"], (text) => Effect.flatMap(record("s1", text), storage.insert))
      yield* Effect.flatMap(record("s2", "c"), storage.insert)
      const stored = (yield* storage.status).oldestCreatedAt!

      expect(yield* storage.expire(stored)).toEqual({ count: 0, byStream: new Map() })
      expect(yield* storage.expire(Number.MAX_SAFE_INTEGER)).toEqual({
        count: 3,
        byStream: new Map([
          ["s1", 2],
          ["s2", 1]
        ])
      })
      expect(yield* storage.status).toEqual({ records: 0, bytes: 0, oldestCreatedAt: undefined })
    })
  )

  it.scopedLive("concurrent inserts share the cache limit exactly: 200 into room for 50", () =>
    Effect.gen(function* () {
      const one = yield* record("s", "x")
      const { storage } = yield* openCache(one.size * 50)
      const outcomes = yield* Effect.forEach(Array.from({ length: 200 }), () => Effect.either(storage.insert(one)), {
        concurrency: "unbounded"
      })
      expect(outcomes.filter((o) => o._tag === "Right")).toHaveLength(50)
      const refused = outcomes.filter((o) => o._tag === "Left").map((o) => o.left)
      expect(refused).toHaveLength(150)
      expect(refused.every((error) => error instanceof KinesisLimitExceededException)).toBe(true)
      expect(yield* storage.status).toMatchObject({ records: 50, bytes: one.size * 50 })
    })
  )

  it.scopedLive(
    "a worker that dies mid-commit fails the waiting inserts, loses no acknowledged record, and is replaced",
    () =>
      Effect.gen(function* () {
        const { storage, workers, current } = yield* openCache(64 * 1024 * 1024)
        const big = (i: number) =>
          validate({ streamName: "s", partitionKey: `pk-${i}`, data: new Uint8Array(64 * 1024).fill(i) }).pipe(
            Effect.orDie
          )
        // 400 records of 64 KiB: several groups, each a few milliseconds of writing in the worker.
        const inserting = yield* Effect.forEach(
          Array.from({ length: 400 }, (_, i) => i),
          (i) => Effect.fork(Effect.either(Effect.flatMap(big(i), storage.insert))),
          { concurrency: "unbounded" }
        )
        // The groups are on their way to the worker: kill it before it can answer them all.
        yield* Effect.yieldNow()
        yield* Effect.promise(() => current().terminate())
        const outcomes = yield* Fiber.joinAll(inserting)
        const stored = outcomes.filter((o) => o._tag === "Right").length
        const failed = outcomes.filter((o) => o._tag === "Left").map((o) => o.left)
        expect(failed.every((error) => error instanceof KinesisStorageException)).toBe(true)
        expect(failed.length).toBeGreaterThan(0)

        // The next call starts a new worker, which finds every acknowledged record in the file.
        const status = yield* storage.status
        expect(workers).toHaveLength(2)
        expect(status.records).toBeGreaterThanOrEqual(stored)
        // Only records whose commit the kill came after but whose answer it came before are extra.
        expect(status.records - stored).toBeLessThanOrEqual(500)
        yield* Effect.flatMap(record("s", "after"), storage.insert)
        expect((yield* storage.status).records).toBe(status.records + 1)
      })
  )

  it.scopedLive("a worker that dies while a batch is read fails that call with KinesisStorageException", () =>
    Effect.gen(function* () {
      const { storage, current } = yield* openCache()
      yield* Effect.forEach(["a", "b"], (text) => Effect.flatMap(record("s", text), storage.insert))
      const reading = yield* Effect.fork(storage.batch("s", all))
      yield* Effect.promise(() => current().terminate())
      const exit = yield* Fiber.await(reading)
      // The read may have been answered before the kill; if not, it failed as a storage error.
      if (Exit.isFailure(exit)) {
        expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error).toBeInstanceOf(
          KinesisStorageException
        )
      }
      expect((yield* storage.batch("s", all)).map((r) => r.partitionKey)).toEqual(["pk-a", "pk-b"])
    })
  )

  it.scopedLive("a worker killed while a flush waits for Kinesis is replaced when the answer is settled", () =>
    Effect.gen(function* () {
      const filename = path.join(yield* tempDir, "cache.db")
      const { workers, start } = keepingWorkers()
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      // The first request is held open until the test has killed the worker; later ones are answered at once.
      const sender = yield* makeScriptedSender(
        respondAfter((call) =>
          call === 0 ? Effect.zipRight(Deferred.succeed(started, undefined), Deferred.await(release)) : Effect.void
        )
      )
      const options = yield* resolveOptions({ flushStrategy: FlushNone() })
      const client = yield* KinesisClient.makeWith(
        options,
        Layer.merge(WorkerStorage.layer({ filename, cacheMaxBytes: options.cacheMaxBytes }, start), sender.layer)
      )
      const texts = ["a", "b", "c"]
      yield* Effect.forEach(texts, (text) =>
        client.record({ streamName: "s", partitionKey: `pk-${text}`, data: new TextEncoder().encode(text) })
      )

      const flushing = yield* Effect.fork(client.flush())
      yield* Deferred.await(started)
      yield* Effect.promise(() => workers[0]!.terminate())
      yield* Deferred.succeed(release, undefined)
      // No call was waiting on the worker when it died: settling the answer starts a new one, which
      // deletes the delivered records from the file. Nothing is lost and nothing is sent twice.
      expect(yield* Fiber.join(flushing)).toEqual(flushData({ recordsFlushed: 3 }))
      expect(workers).toHaveLength(2)
      expect(yield* client.flush()).toEqual(flushData({ recordsFlushed: 0 }))
      expect(sentTexts(yield* sender.calls)).toEqual(texts)
    })
  )

  it.scopedLive("a worker that can't be started again is reported plainly on the next call", () =>
    Effect.gen(function* () {
      const filename = path.join(yield* tempDir, "cache.db")
      const workers: Array<Worker> = []
      const start = (options: WorkerOptions) => {
        // The first worker opens the cache; later ones are pointed at a directory, where no cache can be.
        const worker = WorkerStorage.startWorker(
          workers.length === 0 ? options : { ...options, filename: path.dirname(filename) }
        )
        workers.push(worker)
        return worker
      }
      const storage = yield* WorkerStorage.make({ filename, cacheMaxBytes: 1024 }, start)
      expect((yield* storage.status).records).toBe(0)
      yield* Effect.promise(() => workers[0]!.terminate())

      const error = yield* Effect.flip(storage.status)
      expect(error).toBeInstanceOf(KinesisStorageException)
      expect(error.message).toContain("Could not open the cache")
      // Every later call tries again, and says so again.
      expect(yield* Effect.flip(storage.clear)).toBeInstanceOf(KinesisStorageException)
      expect(workers).toHaveLength(3)
    })
  )
})
