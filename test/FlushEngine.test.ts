/**
 * The flush engine over a real SQLite cache, with a scripted sender standing in for Kinesis where
 * kinesalite can't go: partial failures, request-level errors, entry-count mismatches, no response,
 * slow responses.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Metric, Option, Scope } from "effect"
import { KinesisStorageException, KinesisUnknownException } from "../src/Errors.js"
import { type BatchAnswer, RecordStorage } from "../src/engine/cache/RecordStorage.js"
import * as FlushEngine from "../src/engine/flush/FlushEngine.js"
import {
  acceptAll,
  byStream,
  cached,
  captureLogs,
  connectionRefused,
  flushData,
  inProgress,
  keysOf,
  makeEngine,
  makeScriptedSender,
  memoryStorage,
  put,
  putRecordsSpans,
  type Responder,
  refusedWith,
  rejected,
  rejectWhere,
  resourceNotFound,
  sentTexts,
  text
} from "./support/senders.js"

const MiB = 1024 * 1024

const records = (storage: RecordStorage) => Effect.map(storage.status, (status) => status.records)

describe("FlushEngine", () => {
  describe("per-record outcomes", () => {
    it.scoped("deletes accepted records and charges one attempt to each rejected one", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        const keys = ["k0", "k1", "k2", "k3", "k4", "k5"]
        for (const key of keys) yield* put(storage, "orders", key, `data-${key}`)
        const { sender, calls } = yield* makeScriptedSender(
          rejectWhere((entry) => entry.partitionKey === "k1" || entry.partitionKey === "k4")
        )
        const engine = yield* makeEngine(storage, sender, 5)

        const result = yield* engine.flush

        expect(result).toEqual(flushData({ recordsFlushed: 4, recordsFailed: 2, recordsRemaining: 2 }))
        expect((yield* calls).map(keysOf)).toEqual([keys])
        const left = yield* cached(storage, "orders")
        expect(left.map((record) => [record.partitionKey, text(record.data), record.retryCount])).toEqual([
          ["k1", "data-k1", 1],
          ["k4", "data-k4", 1]
        ])
        expect(yield* storage.status).toMatchObject({
          records: 2,
          bytes: left.reduce((total, record) => total + record.size, 0)
        })
      })
    )

    it.scoped("counts delivered records, failed attempts and drops per stream in its metrics", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        for (const key of ["ok-1", "ok-2", "bad-1"]) yield* put(storage, "metrics-a", key, key)
        yield* put(storage, "metrics-b", "lost", "lost")
        const { sender } = yield* makeScriptedSender(
          byStream({
            "metrics-a": rejectWhere((entry) => entry.partitionKey === "bad-1"),
            "metrics-b": () => Effect.fail(resourceNotFound("metrics-b"))
          })
        )
        const engine = yield* makeEngine(storage, sender, 0)
        const count = (counter: Metric.Metric.Counter<number>, stream: string) =>
          Metric.value(Metric.tagged(counter, "stream", stream)).pipe(Effect.map((state) => state.count))

        yield* engine.flush

        expect(yield* count(FlushEngine.recordsDelivered, "metrics-a")).toBe(2)
        expect(yield* count(FlushEngine.failedAttempts, "metrics-a")).toBe(1)
        expect(yield* count(FlushEngine.recordsDropped, "metrics-a")).toBe(1)
        expect(yield* count(FlushEngine.recordsDelivered, "metrics-b")).toBe(0)
        expect(yield* count(FlushEngine.failedAttempts, "metrics-b")).toBe(1)
        expect(yield* count(FlushEngine.recordsDropped, "metrics-b")).toBe(1)
      })
    )

    for (const maxRetries of [0, 3, 5]) {
      it.scoped(`sends a record that is always rejected exactly 1 + ${maxRetries} times, then drops it`, () =>
        Effect.gen(function* () {
          const logs = yield* captureLogs
          const storage = yield* memoryStorage()
          yield* put(storage, "orders", "poison-1", "SECRET-DATA-1")
          yield* put(storage, "orders", "poison-2", "SECRET-DATA-2")
          yield* put(storage, "orders", "good", "SECRET-DATA-good")
          const { sender, calls } = yield* makeScriptedSender(
            rejectWhere((entry) => entry.partitionKey.startsWith("poison"))
          )
          const engine = yield* makeEngine(storage, sender, maxRetries)

          for (let flush = 1; flush <= maxRetries + 3; flush++) {
            const result = yield* engine.flush.pipe(Effect.provide(logs.layer))
            expect(result.recordsFlushed).toBe(flush === 1 ? 1 : 0)
            const left = yield* cached(storage, "orders")
            if (flush <= maxRetries) {
              // Still within its attempts: kept, charged once per flush.
              expect(left.map((record) => [record.partitionKey, record.retryCount])).toEqual([
                ["poison-1", flush],
                ["poison-2", flush]
              ])
            } else {
              expect(left).toEqual([])
            }
          }

          const withPoison = (yield* calls).filter((batch) =>
            batch.entries.some((entry) => entry.partitionKey.startsWith("poison"))
          )
          expect(withPoison).toHaveLength(1 + maxRetries)
          expect(yield* calls).toHaveLength(1 + maxRetries)
          expect(yield* storage.status).toEqual({ records: 0, bytes: 0, oldestCreatedAt: undefined })

          const lines = yield* logs.lines
          const dropped = lines.filter((line) => line.level === "WARN" && /dropped/i.test(line.message))
          expect(dropped).toHaveLength(1)
          expect(dropped[0]!.message).toContain("orders")
          expect(dropped[0]!.message).toMatch(/\b2 records\b/)
          for (const line of lines) {
            expect(line.message).not.toContain("SECRET-DATA")
            expect(JSON.stringify(line.annotations)).not.toContain("SECRET-DATA")
          }
        })
      )
    }
  })

  describe("request-level errors", () => {
    it.scoped("charges every record of a stream the service refused and still sends the next stream", () =>
      Effect.gen(function* () {
        const logs = yield* captureLogs
        const storage = yield* memoryStorage()
        for (let i = 0; i < 3; i++) yield* put(storage, "a-missing", `m${i}`, `missing-${i}`)
        for (let i = 0; i < 4; i++) yield* put(storage, "b-good", `g${i}`, `good-${i}`)
        const { sender, calls } = yield* makeScriptedSender(
          byStream({ "a-missing": (stream) => Effect.fail(resourceNotFound(stream)) })
        )
        const engine = yield* makeEngine(storage, sender, 5)

        const result = yield* engine.flush.pipe(Effect.provide(logs.layer))

        expect(result).toEqual(flushData({ recordsFlushed: 4, recordsFailed: 3, recordsRemaining: 3 }))
        expect((yield* calls).map((batch) => [batch.stream, batch.entries.length])).toEqual([
          ["a-missing", 3],
          ["b-good", 4]
        ])
        expect(yield* cached(storage, "b-good")).toEqual([])
        const left = yield* cached(storage, "a-missing")
        expect(left.map((record) => [record.partitionKey, record.retryCount])).toEqual([
          ["m0", 1],
          ["m1", 1],
          ["m2", 1]
        ])
        const warnings = (yield* logs.lines).filter((line) => line.level === "WARN")
        expect(warnings.some((line) => line.message.includes("ResourceNotFoundException"))).toBe(true)
      })
    )

    for (const [label, delta] of [
      ["fewer", -1],
      ["more", 1]
    ] as const) {
      it.scoped(`charges the whole batch when the response has ${label} entries than the request`, () =>
        Effect.gen(function* () {
          const storage = yield* memoryStorage()
          for (let i = 0; i < 5; i++) yield* put(storage, "a-short", `s${i}`, `short-${i}`)
          for (let i = 0; i < 2; i++) yield* put(storage, "b-fine", `f${i}`, `fine-${i}`)
          const { sender, calls } = yield* makeScriptedSender(
            byStream({
              "a-short": (_stream, entries) =>
                Effect.succeed(Array.from({ length: entries.length + delta }, () => ({ _tag: "Accepted" as const })))
            })
          )
          const engine = yield* makeEngine(storage, sender, 5)

          const result = yield* engine.flush

          expect(result).toEqual(flushData({ recordsFlushed: 2, recordsFailed: 5, recordsRemaining: 5 }))
          expect((yield* calls).map((batch) => batch.stream)).toEqual(["a-short", "b-fine"])
          expect(yield* cached(storage, "b-fine")).toEqual([])
          const left = yield* cached(storage, "a-short")
          expect(left.map((record) => [record.partitionKey, record.retryCount])).toEqual([
            ["s0", 1],
            ["s1", 1],
            ["s2", 1],
            ["s3", 1],
            ["s4", 1]
          ])
        })
      )
    }

    it.scoped("stops with KinesisUnknownException on no response and charges nothing", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        for (const stream of ["a", "b", "c"]) {
          for (let i = 0; i < 3; i++) yield* put(storage, stream, `${stream}${i}`, `${stream}-data-${i}`)
        }
        // Earlier failures, so that "unchanged" is not just "still zero".
        const [b0] = yield* cached(storage, "b")
        const [c0] = yield* cached(storage, "c")
        for (const record of [b0!, c0!]) {
          const range = { streamName: record.streamName, firstId: record.id, lastId: record.id }
          yield* storage.settle({ _tag: "Refused", ...range }, 6)
        }
        const before = {
          b: (yield* cached(storage, "b")).map((record) => [record.partitionKey, record.retryCount]),
          c: (yield* cached(storage, "c")).map((record) => [record.partitionKey, record.retryCount])
        }
        expect(before.b).toEqual([
          ["b0", 1],
          ["b1", 0],
          ["b2", 0]
        ])
        const { sender, calls } = yield* makeScriptedSender(byStream({ b: () => Effect.fail(connectionRefused()) }))
        // One stream at a time: b is in flight alone, so nothing else was sent beside it.
        const engine = yield* makeEngine(storage, sender, 5, { streamConcurrency: 1 })

        const error = yield* Effect.flip(engine.flush)

        expect(error).toBeInstanceOf(KinesisUnknownException)
        expect(error._tag).toBe("KinesisUnknownException")
        expect((yield* calls).map((batch) => batch.stream)).toEqual(["a", "b"])
        expect(yield* cached(storage, "a")).toEqual([])
        expect((yield* cached(storage, "b")).map((record) => [record.partitionKey, record.retryCount])).toEqual(
          before.b
        )
        expect((yield* cached(storage, "c")).map((record) => [record.partitionKey, record.retryCount])).toEqual(
          before.c
        )
        expect(yield* records(storage)).toBe(6)
      })
    )
  })

  describe("one flush at a time", () => {
    it.scopedLive("a second flush during a slow one returns flushInProgress at once", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        for (let i = 0; i < 3; i++) yield* put(storage, "orders", `k${i}`, `data-${i}`)
        const started = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const { sender, calls } = yield* makeScriptedSender((stream, entries, call) =>
          call === 0
            ? Deferred.succeed(started, undefined).pipe(
                Effect.zipRight(Deferred.await(release)),
                Effect.zipRight(acceptAll(stream, entries, call))
              )
            : acceptAll(stream, entries, call)
        )
        const engine = yield* makeEngine(storage, sender, 5)

        const first = yield* Effect.fork(engine.flush)
        yield* Deferred.await(started)
        // A second flush that queued behind the first would never end, as the first waits on `release`.
        const second = yield* engine.flush.pipe(
          Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("the second flush waited") })
        )
        expect(second).toEqual(inProgress)
        expect(yield* calls).toHaveLength(1)

        yield* Deferred.succeed(release, undefined)
        expect(yield* Fiber.join(first)).toEqual(flushData({ recordsFlushed: 3 }))
        expect(yield* records(storage)).toBe(0)

        // The lock is free again.
        yield* put(storage, "orders", "k3", "data-3")
        expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 1 }))
      })
    )
  })

  describe("shutdown", () => {
    it.scopedLive("lets the request in flight finish, starts no other stream, and no flush after it", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        for (const stream of ["a", "b"])
          for (let i = 0; i < 2; i++) yield* put(storage, stream, `${stream}${i}`, "data")
        const sent = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const { sender, calls } = yield* makeScriptedSender((stream, entries, call) =>
          call === 0
            ? Deferred.succeed(sent, undefined).pipe(
                Effect.zipRight(Deferred.await(release)),
                Effect.zipRight(acceptAll(stream, entries, call))
              )
            : acceptAll(stream, entries, call)
        )
        const engine = yield* makeEngine(storage, sender, 5, { streamConcurrency: 1 })

        const flushing = yield* Effect.fork(engine.flush)
        yield* Deferred.await(sent)
        const shuttingDown = yield* Effect.fork(engine.shutdown())
        // shutdown waits for the flush, which waits for `release`
        yield* Effect.yieldNow()
        expect(yield* Fiber.poll(shuttingDown)).toEqual(Option.none())
        yield* Deferred.succeed(release, undefined)

        expect(yield* Fiber.join(flushing)).toEqual(flushData({ recordsFlushed: 2, recordsRemaining: 2 }))
        yield* Fiber.join(shuttingDown)
        expect((yield* calls).map((batch) => batch.stream)).toEqual(["a"])
        expect(yield* engine.flush).toEqual(inProgress)
        expect(yield* calls).toHaveLength(1)
        expect(yield* cached(storage, "a")).toEqual([])
        expect((yield* cached(storage, "b")).map((record) => [record.partitionKey, record.retryCount])).toEqual([
          ["b0", 0],
          ["b1", 0]
        ])
      })
    )

    it.scopedLive("returns at once when no flush runs, and a flush after it does nothing", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        yield* put(storage, "a", "a0", "data")
        const { sender, calls } = yield* makeScriptedSender()
        const engine = yield* makeEngine(storage, sender, 5)

        yield* engine
          .shutdown()
          .pipe(
            Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("shutdown waited with no flush") })
          )
        expect(yield* engine.flush).toEqual(inProgress)
        expect(yield* calls).toEqual([])
        expect(yield* records(storage)).toBe(1)
      })
    )

    it.scopedLive("called again once no flush runs, returns at once", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        const { sender } = yield* makeScriptedSender()
        const engine = yield* makeEngine(storage, sender, 5)

        yield* engine.shutdown()
        yield* engine.shutdown().pipe(
          Effect.timeoutFail({
            duration: "2 seconds",
            onTimeout: () => new Error("a second shutdown never returned")
          })
        )
      })
    )
  })

  describe("the answers it gives the cache", () => {
    it.scoped(
      "one settle per batch: its stream and id range, the ids rejected, or Refused for a request-level error",
      () =>
        Effect.gen(function* () {
          const storage = yield* memoryStorage()
          for (let i = 0; i < 3; i++) {
            yield* put(storage, "a-refused", `r${i}`, "data")
            yield* put(storage, "b-partial", `p${i}`, "data")
            yield* put(storage, "c-accepted", `c${i}`, "data")
          }
          const ids = {
            a: (yield* cached(storage, "a-refused")).map((record) => record.id),
            b: (yield* cached(storage, "b-partial")).map((record) => record.id),
            c: (yield* cached(storage, "c-accepted")).map((record) => record.id)
          }
          const answers: Array<BatchAnswer> = []
          const watched = RecordStorage.of({
            ...storage,
            settle: (answer, maxAttempts) =>
              Effect.zipRight(
                Effect.sync(() => answers.push(answer)),
                storage.settle(answer, maxAttempts)
              )
          })
          const { sender } = yield* makeScriptedSender(
            byStream({
              "a-refused": (stream) => Effect.fail(resourceNotFound(stream)),
              "b-partial": rejectWhere((entry) => entry.partitionKey !== "p1")
            })
          )
          const engine = yield* makeEngine(watched, sender, 5)

          expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 4, recordsFailed: 5, recordsRemaining: 5 }))
          expect(answers).toEqual([
            { _tag: "Refused", streamName: "a-refused", firstId: ids.a[0], lastId: ids.a[2] },
            {
              _tag: "Answered",
              streamName: "b-partial",
              firstId: ids.b[0],
              lastId: ids.b[2],
              rejected: [ids.b[0], ids.b[2]],
              spared: []
            },
            {
              _tag: "Answered",
              streamName: "c-accepted",
              firstId: ids.c[0],
              lastId: ids.c[2],
              rejected: [],
              spared: []
            }
          ])
        })
    )
  })

  describe("interruption", () => {
    it.scopedLive("interrupting a flush abandons the request in flight and charges nothing", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        for (const stream of ["a", "b"]) yield* put(storage, stream, "k", "data")
        const sent = yield* Deferred.make<void>()
        const { sender, calls } = yield* makeScriptedSender((stream, entries, call) =>
          call === 0
            ? Deferred.succeed(sent, undefined).pipe(Effect.zipRight(Effect.never))
            : acceptAll(stream, entries, call)
        )
        const engine = yield* makeEngine(storage, sender, 5, { streamConcurrency: 1 })

        const flushing = yield* Effect.fork(engine.flush)
        yield* Deferred.await(sent)
        // The request never gets an answer: only interrupting it ends the flush.
        const exit = yield* Fiber.interrupt(flushing).pipe(
          Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("the request was not interrupted") })
        )

        expect(Exit.isInterrupted(exit)).toBe(true)
        expect(yield* calls).toHaveLength(1)
        for (const stream of ["a", "b"]) expect((yield* cached(storage, stream)).map((r) => r.retryCount)).toEqual([0])
        // The engine is free again, and what the interrupted flush did not deliver goes now.
        expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 2 }))
      })
    )
  })

  describe("batches", () => {
    it.scoped("sends 1,200 records of one stream in three flushes of 500, 500 and 200, in insertion order", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        const keys = Array.from({ length: 1200 }, (_, i) => `k${String(i).padStart(4, "0")}`)
        // Insertion order is not name order for these keys: shuffle them deterministically.
        const order = keys.map((_, i) => keys[(i * 7) % keys.length]!)
        expect(new Set(order).size).toBe(1200)
        for (const key of order) yield* put(storage, "orders", key, `data-${key}`)
        const { sender, calls } = yield* makeScriptedSender()
        const engine = yield* makeEngine(storage, sender, 5)

        const flushed = []
        for (let i = 0; i < 4; i++) flushed.push((yield* engine.flush).recordsFlushed)

        expect(flushed).toEqual([500, 500, 200, 0])
        const batches = yield* calls
        expect(batches.map((batch) => batch.entries.length)).toEqual([500, 500, 200])
        expect(batches.flatMap(keysOf)).toEqual(order)
        expect(sentTexts(batches)).toEqual(order.map((key) => `data-${key}`))
        expect(yield* records(storage)).toBe(0)
      })
    )

    it.scoped("puts records of 3 MiB three to a batch (10 MiB cap)", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        for (let i = 0; i < 7; i++) {
          const key = `big${i}`
          yield* put(storage, "big", key, new Uint8Array(3 * MiB - key.length).fill(i))
        }
        const { sender, calls } = yield* makeScriptedSender()
        const engine = yield* makeEngine(storage, sender, 5)

        const flushed = []
        for (let i = 0; i < 3; i++) flushed.push((yield* engine.flush).recordsFlushed)

        expect(flushed).toEqual([3, 3, 1])
        const batches = yield* calls
        expect(batches.map(keysOf)).toEqual([["big0", "big1", "big2"], ["big3", "big4", "big5"], ["big6"]])
        expect(batches.map((batch) => batch.bytes)).toEqual([9 * MiB, 9 * MiB, 3 * MiB])
        for (const [b, batch] of batches.entries()) {
          for (const [e, entry] of batch.entries.entries()) {
            expect(entry.data.byteLength).toBe(3 * MiB - 4)
            expect(entry.data.every((byte) => byte === b * 3 + e)).toBe(true)
          }
        }
      })
    )

    it.scoped("fills a batch to exactly 10 MiB and no further", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        yield* put(storage, "edge", "h1", new Uint8Array(5 * MiB - 2))
        yield* put(storage, "edge", "h2", new Uint8Array(5 * MiB - 2))
        yield* put(storage, "edge", "x", new Uint8Array(0))
        const { sender, calls } = yield* makeScriptedSender()
        const engine = yield* makeEngine(storage, sender, 5)

        expect((yield* engine.flush).recordsFlushed).toBe(2)
        expect((yield* engine.flush).recordsFlushed).toBe(1)
        expect((yield* calls).map((batch) => [keysOf(batch), batch.bytes])).toEqual([
          [["h1", "h2"], 10 * MiB],
          [["x"], 1]
        ])
      })
    )

    it.scoped("sends 500 of each of two streams per flush, streams in name order", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        for (let i = 0; i < 600; i++) {
          yield* put(storage, "b-stream", `b${i}`, `b-${i}`)
          yield* put(storage, "a-stream", `a${i}`, `a-${i}`)
        }
        const { sender, calls } = yield* makeScriptedSender()
        const engine = yield* makeEngine(storage, sender, 5)

        expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 1000, recordsRemaining: 200 }))
        const first = yield* calls
        expect(first.map((batch) => [batch.stream, batch.entries.length])).toEqual([
          ["a-stream", 500],
          ["b-stream", 500]
        ])
        expect(keysOf(first[0]!)).toEqual(Array.from({ length: 500 }, (_, i) => `a${i}`))
        expect(keysOf(first[1]!)).toEqual(Array.from({ length: 500 }, (_, i) => `b${i}`))

        expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 200 }))
        const second = (yield* calls).slice(2)
        expect(second.map((batch) => [batch.stream, keysOf(batch)[0], batch.entries.length])).toEqual([
          ["a-stream", "a500", 100],
          ["b-stream", "b500", 100]
        ])
        expect(yield* records(storage)).toBe(0)
      })
    )
  })

  // Each flush reads the stream's oldest records afresh: what the last answer left, then what came since.
  describe("successive flushes", () => {
    const keyRange = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => `k${String(from + i).padStart(4, "0")}`)

    /** An engine over a cache holding records k0000 to k<count - 1> of stream "s". */
    const engineOver = (count: number, respond?: Responder) =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        for (const key of keyRange(0, count)) yield* put(storage, "s", key, `data-${key}`)
        const { sender, calls } = yield* makeScriptedSender(respond)
        return { storage, calls, engine: yield* makeEngine(storage, sender, 5) }
      })

    it.scoped("send records recorded after a flush in the next full batches", () =>
      Effect.gen(function* () {
        const { storage, calls, engine } = yield* engineOver(700)

        expect((yield* engine.flush).recordsFlushed).toBe(500)
        for (const key of keyRange(700, 1100)) yield* put(storage, "s", key, `data-${key}`)
        expect((yield* engine.flush).recordsFlushed).toBe(500)
        expect((yield* engine.flush).recordsFlushed).toBe(100)
        expect((yield* engine.flush).recordsFlushed).toBe(0)

        const batches = yield* calls
        expect(batches.map(keysOf)).toEqual([keyRange(0, 500), keyRange(500, 1000), keyRange(1000, 1100)])
        expect(sentTexts(batches)).toEqual(keyRange(0, 1100).map((key) => `data-${key}`))
      })
    )

    it.scoped("send the records the service rejected first, then the ones after them", () =>
      Effect.gen(function* () {
        const { storage, calls, engine } = yield* engineOver(600, (stream, entries, call) =>
          call === 0
            ? rejectWhere((entry) => entry.partitionKey < "k0002")(stream, entries, call)
            : acceptAll(stream, entries, call)
        )

        expect((yield* engine.flush).recordsFlushed).toBe(498)
        expect((yield* engine.flush).recordsFlushed).toBe(102)

        const [, second] = yield* calls
        expect(keysOf(second!)).toEqual([...keyRange(0, 2), ...keyRange(500, 600)])
        expect(yield* storage.status).toMatchObject({ records: 0, bytes: 0 })
      })
    )

    it.scoped("send, once the cache was cleared, only what was recorded since", () =>
      Effect.gen(function* () {
        const { storage, calls, engine } = yield* engineOver(600)

        expect((yield* engine.flush).recordsFlushed).toBe(500)
        expect(yield* storage.clear).toBe(100)
        expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 0 }))
        for (const key of ["new-1", "new-2"]) yield* put(storage, "s", key, key)
        expect((yield* engine.flush).recordsFlushed).toBe(2)

        const batches = yield* calls
        expect(batches.map(keysOf)).toEqual([keyRange(0, 500), ["new-1", "new-2"]])
      })
    )

    it.scopedLive("keep exact counts when the cache is cleared while a request is in flight", () =>
      Effect.gen(function* () {
        const sent = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const { storage, calls, engine } = yield* engineOver(3, (stream, entries, call) =>
          call === 0
            ? Deferred.succeed(sent, undefined).pipe(
                Effect.zipRight(Deferred.await(release)),
                Effect.zipRight(rejectWhere((entry) => entry.partitionKey === "k0001")(stream, entries, call))
              )
            : acceptAll(stream, entries, call)
        )

        const flushing = yield* Effect.fork(engine.flush)
        yield* Deferred.await(sent)
        expect(yield* storage.clear).toBe(3)
        yield* put(storage, "s", "after", "recorded during the request")
        yield* Deferred.succeed(release, undefined)
        expect(yield* Fiber.join(flushing)).toEqual(
          flushData({ recordsFlushed: 2, recordsFailed: 1, recordsRemaining: 1 })
        )

        const left = yield* cached(storage, "s")
        expect(left.map((record) => [record.partitionKey, record.retryCount])).toEqual([["after", 0]])
        expect(yield* storage.status).toMatchObject({ records: 1, bytes: left[0]!.size })
        expect((yield* engine.flush).recordsFlushed).toBe(1)
        expect((yield* calls).map(keysOf)).toEqual([keyRange(0, 3), ["after"]])
      })
    )
  })

  describe("countThrottling", () => {
    const retryCounts = (storage: RecordStorage) =>
      Effect.map(cached(storage, "s"), (left) => left.map((record) => [record.partitionKey, record.retryCount]))
    const throttledCount = Metric.value(Metric.tagged(FlushEngine.recordsThrottled, "stream", "s")).pipe(
      Effect.map((state) => state.count)
    )

    /** An engine with no retries over records k0 to k3 of stream "s": k0 throttled, k1 InternalFailure, k2 refused for good. */
    const perRecord = (countThrottling: boolean) =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        for (const key of ["k0", "k1", "k2", "k3"]) yield* put(storage, "s", key, `data-${key}`)
        const codes: Readonly<Record<string, string>> = {
          k0: "ProvisionedThroughputExceededException",
          k1: "InternalFailure",
          k2: "KMSAccessDeniedException"
        }
        const { sender } = yield* makeScriptedSender((_stream, entries) =>
          Effect.succeed(
            entries.map((entry) => {
              const code = codes[entry.partitionKey]
              return code === undefined ? { _tag: "Accepted" as const } : rejected(code)
            })
          )
        )
        return { storage, engine: yield* makeEngine(storage, sender, 0, { countThrottling }) }
      })

    it.scoped("false: records refused with throttling or InternalFailure are not charged and never dropped", () =>
      Effect.gen(function* () {
        const throttledBefore = yield* throttledCount
        const { storage, engine } = yield* perRecord(false)

        expect(yield* engine.flush).toEqual(
          flushData({ recordsFlushed: 1, recordsFailed: 3, recordsDropped: 1, recordsRemaining: 2 })
        )
        for (let flush = 0; flush < 5; flush++) {
          expect(yield* engine.flush).toEqual(flushData({ recordsFailed: 2, recordsRemaining: 2 }))
        }
        expect(yield* retryCounts(storage)).toEqual([
          ["k0", 0],
          ["k1", 0]
        ])
        expect((yield* throttledCount) - throttledBefore).toBe(2 * 6)
      })
    )

    it.scoped("true: every refused record is charged, and dropped once its retries are used up", () =>
      Effect.gen(function* () {
        const throttledBefore = yield* throttledCount
        const { storage, engine } = yield* perRecord(true)

        expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 1, recordsFailed: 3, recordsDropped: 3 }))
        expect(yield* retryCounts(storage)).toEqual([])
        expect((yield* throttledCount) - throttledBefore).toBe(2)
      })
    )

    const transient: ReadonlyArray<readonly [string, number]> = [
      ["ProvisionedThroughputExceededException", 400],
      ["LimitExceededException", 400],
      ["ThrottlingException", 400],
      ["KMSThrottlingException", 400],
      ["InternalFailure", 500],
      ["ServiceUnavailable", 503],
      ["Unknown", 502]
    ]
    for (const [name, status] of transient) {
      it.scoped(`${name} (HTTP ${status}) for the whole request: not charged with false, charged with true`, () =>
        Effect.gen(function* () {
          const storage = yield* memoryStorage()
          for (const key of ["k0", "k1"]) yield* put(storage, "s", key, `data-${key}`)
          const { sender } = yield* makeScriptedSender(refusedWith(name, status))
          const throttledBefore = yield* throttledCount

          const spared = yield* makeEngine(storage, sender, 0, { countThrottling: false })
          for (let flush = 0; flush < 3; flush++) {
            expect(yield* spared.flush).toEqual(flushData({ recordsFailed: 2, recordsRemaining: 2 }))
          }
          expect(yield* retryCounts(storage)).toEqual([
            ["k0", 0],
            ["k1", 0]
          ])

          const charged = yield* makeEngine(storage, sender, 0, { countThrottling: true })
          expect(yield* charged.flush).toEqual(flushData({ recordsFailed: 2, recordsDropped: 2 }))
          expect(yield* retryCounts(storage)).toEqual([])
          expect((yield* throttledCount) - throttledBefore).toBe(2 * 4)
        })
      )
    }

    it.scoped("false: a request refused for good (ResourceNotFoundException) is still charged", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        for (const key of ["k0", "k1"]) yield* put(storage, "s", key, `data-${key}`)
        const { sender } = yield* makeScriptedSender(refusedWith("ResourceNotFoundException", 400))
        const engine = yield* makeEngine(storage, sender, 0, { countThrottling: false })

        expect(yield* engine.flush).toEqual(flushData({ recordsFailed: 2, recordsDropped: 2 }))
      })
    )
  })

  describe("FlushData", () => {
    it.scoped("a flush that finds the cache empty returns every count 0", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        const { sender, calls } = yield* makeScriptedSender()
        const engine = yield* makeEngine(storage, sender, 5)

        expect(yield* engine.flush).toEqual(flushData({}))
        expect(yield* calls).toEqual([])
      })
    )

    it.scoped("recordsRemaining counts every stream's records left, those of streams not sent yet too", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        for (let i = 0; i < 502; i++) yield* put(storage, "a", `a${i}`, "data")
        yield* put(storage, "b", "b0", "data")
        const { sender } = yield* makeScriptedSender(byStream({ b: rejectWhere(() => true, "InternalFailure") }))
        const engine = yield* makeEngine(storage, sender, 5)

        expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 500, recordsFailed: 1, recordsRemaining: 3 }))
        expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 2, recordsFailed: 1, recordsRemaining: 1 }))
      })
    )
  })

  describe("tracing", () => {
    it.scoped("a span per PutRecords request, with its stream, record count and outcome", () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        for (const stream of ["a-ok", "b-partial", "c-refused"]) {
          for (const key of ["k0", "k1"]) yield* put(storage, stream, key, "data")
        }
        yield* put(storage, "d-silent", "k0", "data")
        const { sender } = yield* makeScriptedSender(
          byStream({
            "b-partial": rejectWhere((entry) => entry.partitionKey === "k1"),
            "c-refused": refusedWith("ThrottlingException", 400),
            "d-silent": () => Effect.fail(connectionRefused())
          })
        )
        const engine = yield* makeEngine(storage, sender, 5)

        expect(yield* putRecordsSpans(engine.flush)).toEqual([
          { stream: "a-ok", records: 2, outcome: "accepted" },
          { stream: "b-partial", records: 2, outcome: "partly rejected" },
          { stream: "c-refused", records: 2, outcome: "refused: ThrottlingException" },
          { stream: "d-silent", records: 1, outcome: "no response" }
        ])
      })
    )
  })

  describe("storage failures", () => {
    /** A real cache with one record in each of streams "a" and "b", and a view of it with `overrides` in place. */
    const storageWith = (overrides: (real: RecordStorage) => Partial<RecordStorage>) =>
      Effect.gen(function* () {
        const real = yield* memoryStorage()
        for (const stream of ["a", "b"]) yield* put(real, stream, `${stream}0`, `${stream}-data`)
        return { real, failing: RecordStorage.of({ ...real, ...overrides(real) }) }
      })

    it.effect("stops with KinesisStorageException when the database is gone", () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const storage = yield* memoryStorage().pipe(Scope.extend(scope))
        yield* put(storage, "orders", "k0", "data-0")
        const { sender, calls } = yield* makeScriptedSender()
        const engine = yield* makeEngine(storage, sender, 5)
        // Closing the scope closes the SQLite connection under the engine.
        yield* Scope.close(scope, Exit.void)

        const error = yield* Effect.flip(engine.flush)

        expect(error).toBeInstanceOf(KinesisStorageException)
        expect(yield* calls).toEqual([])
      })
    )

    it.scoped("stops with KinesisStorageException when deleting sent records fails", () =>
      Effect.gen(function* () {
        const diskError = Effect.fail(new KinesisStorageException({ message: "disk I/O error" }))
        const { real, failing: failingDelete } = yield* storageWith(() => ({ settle: () => diskError }))
        const { sender, calls } = yield* makeScriptedSender()
        const engine = yield* makeEngine(failingDelete, sender, 5, { streamConcurrency: 1 })

        const error = yield* Effect.flip(engine.flush)

        expect(error).toBeInstanceOf(KinesisStorageException)
        expect((yield* calls).map((batch) => batch.stream)).toEqual(["a"])
        // The cache was not brought up to date: nothing charged, the next stream not started.
        expect((yield* cached(real, "a")).map((record) => record.retryCount)).toEqual([0])
        expect((yield* cached(real, "b")).map((record) => record.retryCount)).toEqual([0])
      })
    )

    it.scoped("stops with KinesisStorageException when charging an attempt fails", () =>
      Effect.gen(function* () {
        const { real, failing: failingCharge } = yield* storageWith((real) => ({
          settle: (answer, maxAttempts) =>
            answer._tag === "Answered" && answer.rejected.length === 0
              ? real.settle(answer, maxAttempts)
              : Effect.fail(new KinesisStorageException({ message: "database is locked" }))
        }))
        const { sender, calls } = yield* makeScriptedSender(rejectWhere(() => true))
        const engine = yield* makeEngine(failingCharge, sender, 5, { streamConcurrency: 1 })

        const error = yield* Effect.flip(engine.flush)

        expect(error).toBeInstanceOf(KinesisStorageException)
        expect((yield* calls).map((batch) => batch.stream)).toEqual(["a"])
        expect(yield* records(real)).toBe(2)
      })
    )
  })

  it("exposes the PutRecords limits", () => {
    expect(FlushEngine.batchLimits).toEqual({ maxRecords: 500, maxBytes: 10 * MiB })
  })
})
