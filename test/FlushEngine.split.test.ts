/**
 * One bad record does not sink its batch: a request refused as a whole for its content is split in
 * halves until the records at fault stand alone. A scripted sender plays the service here (refusing
 * any request that holds a record marked bad); the same path against kinesalite's real answer to an
 * oversized record is in `flush.integration.test.ts`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Metric } from "effect"
import { KinesisUnknownException } from "../src/Errors.js"
import type { RecordStorage } from "../src/engine/cache/RecordStorage.js"
import * as FlushEngine from "../src/engine/flush/FlushEngine.js"
import {
  acceptAll,
  cached,
  captureLogs,
  connectionRefused,
  flushData,
  keysOf,
  makeEngine,
  makeScriptedSender,
  memoryStorage,
  put,
  putRecordsSpans,
  type Responder,
  refusedWith
} from "./support/senders.js"

/** Refuses with `name` (HTTP 400) every request holding a record whose key starts with "bad"; accepts the others. */
const refuseBad =
  (name = "ValidationException"): Responder =>
  (stream, entries, call) =>
    entries.some((entry) => entry.partitionKey.startsWith("bad"))
      ? refusedWith(name, 400)(stream, entries, call)
      : acceptAll(stream, entries, call)

/** Caches one record per key, in order. */
const putKeys = (storage: RecordStorage, stream: string, keys: ReadonlyArray<string>) =>
  Effect.forEach(keys, (key) => put(storage, stream, key, `data-${key}`), { discard: true })

const retryCounts = (storage: RecordStorage, stream: string) =>
  Effect.map(cached(storage, stream), (records) => records.map((record) => [record.partitionKey, record.retryCount]))

const splits = (stream: string) =>
  Metric.value(Metric.tagged(FlushEngine.batchesSplit, "stream", stream)).pipe(Effect.map((state) => state.count))

const keys = (count: number, bad: ReadonlyArray<number>) =>
  Array.from({ length: count }, (_, i) => (bad.includes(i) ? `bad-${i}` : `ok-${i}`))

describe("FlushEngine: a batch refused for its content", () => {
  for (const name of ["ValidationException", "InvalidArgumentException"]) {
    it.scoped(`${name}: charges only the bad record in the middle and delivers the others in the same flush`, () =>
      Effect.gen(function* () {
        const stream = `split-one-${name}`
        const storage = yield* memoryStorage()
        const all = keys(10, [4])
        yield* putKeys(storage, stream, all)
        const { sender, calls } = yield* makeScriptedSender(refuseBad(name))
        const engine = yield* makeEngine(storage, sender, 5)

        const result = yield* engine.flush

        expect(result).toEqual(flushData({ recordsFlushed: 9, recordsFailed: 1, recordsRemaining: 1 }))
        expect(yield* retryCounts(storage, stream)).toEqual([["bad-4", 1]])
        // Halves, oldest first: [0-9] → [0-4] → [0-2] ✓, [3-4] → [3] ✓, [4] ✗; then [5-9] ✓.
        expect((yield* calls).map(keysOf)).toEqual([
          all,
          all.slice(0, 5),
          all.slice(0, 3),
          all.slice(3, 5),
          ["ok-3"],
          ["bad-4"],
          all.slice(5)
        ])
        expect(yield* splits(stream)).toBe(3)
      })
    )
  }

  it.scoped("charges each of two bad records alone and delivers the rest, in insertion order", () =>
    Effect.gen(function* () {
      const stream = "split-two"
      const storage = yield* memoryStorage()
      const all = keys(10, [1, 7])
      yield* putKeys(storage, stream, all)
      const { sender, calls } = yield* makeScriptedSender(refuseBad())
      const engine = yield* makeEngine(storage, sender, 5)

      expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 8, recordsFailed: 2, recordsRemaining: 2 }))
      expect(yield* retryCounts(storage, stream)).toEqual([
        ["bad-1", 1],
        ["bad-7", 1]
      ])
      const delivered = (yield* calls)
        .filter((batch) => batch.entries.every((entry) => entry.partitionKey.startsWith("ok")))
        .flatMap(keysOf)
      expect(delivered).toEqual(all.filter((key) => key.startsWith("ok")))
    })
  )

  it.scoped("charges a batch of one record refused so, with no split", () =>
    Effect.gen(function* () {
      const stream = "split-single"
      const storage = yield* memoryStorage()
      yield* putKeys(storage, stream, ["bad-0"])
      const { sender, calls } = yield* makeScriptedSender(refuseBad())
      const engine = yield* makeEngine(storage, sender, 5)

      expect(yield* engine.flush).toEqual(flushData({ recordsFailed: 1, recordsRemaining: 1 }))
      expect(yield* retryCounts(storage, stream)).toEqual([["bad-0", 1]])
      expect(yield* calls).toHaveLength(1)
      expect(yield* splits(stream)).toBe(0)
    })
  )

  it.scoped("drops a bad record at its last attempt, counts it, and still delivers the others", () =>
    Effect.gen(function* () {
      const stream = "split-drop"
      const logs = yield* captureLogs
      const storage = yield* memoryStorage()
      yield* putKeys(storage, stream, keys(4, [2]))
      const { sender } = yield* makeScriptedSender(refuseBad())
      const engine = yield* makeEngine(storage, sender, 1)

      expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 3, recordsFailed: 1, recordsRemaining: 1 }))
      expect(yield* retryCounts(storage, stream)).toEqual([["bad-2", 1]])
      yield* putKeys(storage, stream, ["ok-later"])

      const second = yield* engine.flush.pipe(Effect.provide(logs.layer))

      expect(second).toEqual(flushData({ recordsFlushed: 1, recordsFailed: 1, recordsDropped: 1 }))
      expect(yield* cached(storage, stream)).toEqual([])
      const warnings = (yield* logs.lines).filter((line) => line.level === "WARN" && /dropped/i.test(line.message))
      expect(warnings.map((line) => line.message)).toEqual([
        `Dropped 1 record of stream ${stream} after 2 failed attempts`
      ])
    })
  )

  it.scoped("does not split a request refused for another reason", () =>
    Effect.gen(function* () {
      const stream = "split-not-content"
      const storage = yield* memoryStorage()
      yield* putKeys(storage, stream, keys(4, []))
      const { sender, calls } = yield* makeScriptedSender(refusedWith("AccessDeniedException", 400))
      const engine = yield* makeEngine(storage, sender, 5)

      expect(yield* engine.flush).toEqual(flushData({ recordsFailed: 4, recordsRemaining: 4 }))
      expect(yield* calls).toHaveLength(1)
      expect(yield* splits(stream)).toBe(0)
    })
  )

  it.scoped("gives each part's request a span of its own", () =>
    Effect.gen(function* () {
      const stream = "split-spans"
      const storage = yield* memoryStorage()
      yield* putKeys(storage, stream, keys(2, [1]))
      const { sender } = yield* makeScriptedSender(refuseBad())
      const engine = yield* makeEngine(storage, sender, 5)
      expect(yield* putRecordsSpans(engine.flush)).toEqual([
        { stream, records: 2, outcome: "refused: ValidationException" },
        { stream, records: 1, outcome: "accepted" },
        { stream, records: 1, outcome: "refused: ValidationException" }
      ])
    })
  )

  it.scopedLive(
    "sends no further half once shutdown begins: the half in flight finishes, the rest stays uncharged",
    () =>
      Effect.gen(function* () {
        const stream = "split-shutdown"
        const storage = yield* memoryStorage()
        yield* putKeys(storage, stream, keys(4, [0]))
        const inFlight = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const { sender, calls } = yield* makeScriptedSender((name, entries, call) =>
          call === 1
            ? Deferred.succeed(inFlight, undefined).pipe(
                Effect.zipRight(Deferred.await(release)),
                Effect.zipRight(refuseBad()(name, entries, call))
              )
            : refuseBad()(name, entries, call)
        )
        const engine = yield* makeEngine(storage, sender, 5)

        const flushing = yield* Effect.fork(engine.flush)
        yield* Deferred.await(inFlight)
        const shuttingDown = yield* Effect.fork(engine.shutdown())
        yield* Effect.yieldNow()
        yield* Deferred.succeed(release, undefined)

        // The first half [bad-0, ok-1] is refused in flight: it is neither charged nor split further.
        expect(yield* Fiber.join(flushing)).toEqual(flushData({ recordsRemaining: 4 }))
        yield* Fiber.join(shuttingDown)
        expect(yield* calls).toHaveLength(2)
        expect(yield* retryCounts(storage, stream)).toEqual(keys(4, [0]).map((key) => [key, 0]))
      })
  )

  it.scoped("sends no half once another stream got no response: the flush fails and the batch stays, uncharged", () =>
    Effect.gen(function* () {
      const storage = yield* memoryStorage()
      yield* putKeys(storage, "a", keys(4, [0]))
      yield* putKeys(storage, "b", ["b-0"])
      const bFailed = yield* Deferred.make<void>()
      // a's request is refused for its content only once b's request has got no response.
      const respond: Responder = (stream, entries, call) =>
        stream === "b"
          ? Effect.zipRight(Deferred.succeed(bFailed, undefined), Effect.fail(connectionRefused()))
          : Effect.zipRight(Deferred.await(bFailed), refuseBad()(stream, entries, call))
      const { sender, calls } = yield* makeScriptedSender(respond)
      const engine = yield* makeEngine(storage, sender, 5, { streamConcurrency: 2 })

      const error = yield* Effect.flip(engine.flush)

      expect(error).toBeInstanceOf(KinesisUnknownException)
      expect((yield* calls).map((batch) => batch.stream).sort()).toEqual(["a", "b"])
      expect(yield* retryCounts(storage, "a")).toEqual(keys(4, [0]).map((key) => [key, 0]))
    })
  )
})
