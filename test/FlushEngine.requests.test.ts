/**
 * `requestsPerStream`: with `drain`, up to that many batches of one stream in flight at once, each
 * claimed after the last record claimed, so that no record is in two requests. A real SQLite cache in
 * memory, and a scripted sender that holds requests open behind `Deferred` gates wherever the test
 * must see what is in flight.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Metric } from "effect"
import { KinesisUnknownException } from "../src/Errors.js"
import { RecordStorage } from "../src/engine/cache/RecordStorage.js"
import * as FlushEngine from "../src/engine/flush/FlushEngine.js"
import { validate } from "../src/RecordInput.js"
import {
  acceptAll,
  bytes,
  cached,
  connectionRefused,
  flushData,
  keysOf,
  makeEngine,
  makeScriptedSender,
  memoryStorage,
  type Responder,
  rejectWhere,
  type SentBatch
} from "./support/senders.js"

/** Keys `<stream>-0000` to `<stream>-<count - 1>`, in the order they are recorded. */
const keyRange = (stream: string, from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `${stream}-${String(from + i).padStart(4, "0")}`)

/** Caches `count` records of `stream` in one group, each keyed and filled with its key; gives the keys. */
const fill = (storage: RecordStorage, stream: string, count: number) =>
  Effect.gen(function* () {
    const keys = keyRange(stream, 0, count)
    const records = yield* Effect.forEach(keys, (key) =>
      Effect.orDie(validate({ streamName: stream, partitionKey: key, data: bytes(key) }))
    )
    const errors = yield* storage.insertAll(records)
    expect(errors.filter((error) => error !== undefined)).toEqual([])
    return keys
  })

/** Every key sent in the given requests, in the order sent. */
const allKeys = (batches: ReadonlyArray<SentBatch>) => batches.flatMap(keysOf)

const sorted = (keys: ReadonlyArray<string>) => [...keys].sort()

/**
 * Lets the engine do what it is about to do: round trips through the cache's actor, behind any batch
 * read a flush has asked for. A request the engine would start now has started by the end.
 */
const letEngineRun = (storage: RecordStorage) => Effect.repeatN(Effect.zipRight(Effect.yieldNow(), storage.status), 20)

/** Waits on a gate, failing the test (rather than hanging it) if it never opens. */
const within = <A, E>(gate: Effect.Effect<A, E>, what: string) =>
  Effect.timeoutFail(gate, { duration: Duration.seconds(10), onTimeout: () => new Error(`never happened: ${what}`) })

/** Notes the most requests in flight at once: the count goes up as a request arrives, down as it is answered. */
const inFlightCounter = () => {
  let inFlight = 0
  const most = { inFlight: 0 }
  return {
    most,
    arrived: () => {
      inFlight++
      most.inFlight = Math.max(most.inFlight, inFlight)
      return inFlight
    },
    answered: Effect.sync(() => {
      inFlight--
    })
  }
}

/**
 * A server that holds each of the first `size` requests until the test releases it (`release(call)`)
 * and answers later ones at once, all with `respond`. `full` opens once `size` requests are in flight.
 */
const held = (size: number, respond: Responder = acceptAll) =>
  Effect.gen(function* () {
    const releases = yield* Effect.forEach(Array.from({ length: size }), () => Deferred.make<void>())
    const full = yield* Deferred.make<void>()
    const counter = inFlightCounter()
    const server: Responder = (stream, entries, call) =>
      Effect.gen(function* () {
        if (counter.arrived() >= size) yield* Deferred.succeed(full, undefined)
        if (call < size) yield* Deferred.await(releases[call]!)
        return yield* respond(stream, entries, call)
      }).pipe(Effect.ensuring(counter.answered))
    return {
      respond: server,
      most: counter.most,
      full: within(Deferred.await(full), `${size} requests in flight`),
      release: (call: number) => Deferred.succeed(releases[call]!, undefined)
    }
  })

/**
 * A server that answers in waves of `size` requests: each one waits until `size` are waiting, then
 * they are accepted together. The first wave also waits for the test (`openFirst`), once `firstFull`.
 */
const inWaves = (size: number) =>
  Effect.gen(function* () {
    const firstFull = yield* Deferred.make<void>()
    const openFirst = yield* Deferred.make<void>()
    let wave = yield* Deferred.make<void>()
    let waiting = 0
    let waves = 0
    const counter = inFlightCounter()
    const server: Responder = (stream, entries, call) =>
      Effect.gen(function* () {
        counter.arrived()
        const mine = wave
        if (++waiting === size) {
          waiting = 0
          wave = yield* Deferred.make<void>()
          if (waves++ === 0) {
            yield* Deferred.succeed(firstFull, undefined)
            yield* Deferred.await(openFirst)
          }
          yield* Deferred.succeed(mine, undefined)
        }
        yield* Deferred.await(mine)
        return yield* acceptAll(stream, entries, call)
      }).pipe(Effect.ensuring(counter.answered))
    return {
      respond: server,
      most: counter.most,
      firstFull: within(Deferred.await(firstFull), `a first wave of ${size} requests`),
      openFirst: Deferred.succeed(openFirst, undefined)
    }
  })

const counted = (counter: Metric.Metric.Counter<number>, stream: string) =>
  Metric.value(Metric.tagged(counter, "stream", stream)).pipe(Effect.map((state) => state.count))

/** The metrics of a stream that these tests check, read at once. */
const metricsOf = (stream: string) =>
  Effect.all({
    delivered: counted(FlushEngine.recordsDelivered, stream),
    failedAttempts: counted(FlushEngine.failedAttempts, stream),
    throttled: counted(FlushEngine.recordsThrottled, stream),
    dropped: counted(FlushEngine.recordsDropped, stream)
  })

const minus = (after: Record<string, number>, before: Record<string, number>) =>
  Object.fromEntries(Object.entries(after).map(([key, value]) => [key, value - before[key]!]))

describe("FlushEngine: requestsPerStream with drain", () => {
  it.scopedLive("sends a stream with up to 4 requests in flight, never 5, each record exactly once", () =>
    Effect.gen(function* () {
      const storage = yield* memoryStorage()
      const keys = yield* fill(storage, "wide", 4000)
      const server = yield* inWaves(4)
      const { sender, calls } = yield* makeScriptedSender(server.respond)
      const engine = yield* makeEngine(storage, sender, 5, { drain: true, requestsPerStream: 4 })

      const flushing = yield* Effect.fork(engine.flush)
      yield* server.firstFull
      // Four requests are held open: a fifth would have started by now, the stream has records left.
      yield* letEngineRun(storage)
      expect((yield* calls).map((batch) => batch.entries.length)).toEqual([500, 500, 500, 500])
      expect(server.most.inFlight).toBe(4)
      yield* server.openFirst

      expect(yield* Fiber.join(flushing)).toEqual(flushData({ recordsFlushed: 4000 }))
      const batches = yield* calls
      expect(batches.map((batch) => [batch.stream, batch.entries.length])).toEqual(
        Array.from({ length: 8 }, () => ["wide", 500])
      )
      expect(server.most.inFlight).toBe(4)
      // No record in two requests, none left out.
      const sent = allKeys(batches)
      expect(new Set(sent).size).toBe(sent.length)
      expect(sorted(sent)).toEqual(keys)
      expect(yield* storage.status).toEqual({ records: 0, bytes: 0, oldestCreatedAt: undefined })
    })
  )

  it.scoped("without drain, still one batch per stream per flush", () =>
    Effect.gen(function* () {
      const storage = yield* memoryStorage()
      const s = yield* fill(storage, "s", 2000)
      const t = yield* fill(storage, "t", 3)
      const { sender, calls } = yield* makeScriptedSender()
      const engine = yield* makeEngine(storage, sender, 5, { requestsPerStream: 4 })

      expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 503, recordsRemaining: 1500 }))
      expect((yield* calls).map((batch) => [batch.stream, keysOf(batch)])).toEqual([
        ["s", s.slice(0, 500)],
        ["t", t]
      ])
      expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 500, recordsRemaining: 1000 }))
      expect((yield* calls).slice(2).map((batch) => [batch.stream, keysOf(batch)])).toEqual([["s", s.slice(500, 1000)]])
    })
  )

  it.scopedLive("requestsPerStream 1: one request in flight, the batches in insertion order, as before", () =>
    Effect.gen(function* () {
      const storage = yield* memoryStorage()
      const keys = yield* fill(storage, "narrow", 1200)
      const server = yield* held(1)
      const { sender, calls } = yield* makeScriptedSender(server.respond)
      const engine = yield* makeEngine(storage, sender, 5, { drain: true, requestsPerStream: 1 })

      const flushing = yield* Effect.fork(engine.flush)
      yield* server.full
      yield* letEngineRun(storage)
      expect(yield* calls).toHaveLength(1)
      yield* server.release(0)

      expect(yield* Fiber.join(flushing)).toEqual(flushData({ recordsFlushed: 1200 }))
      const batches = yield* calls
      expect(batches.map((batch) => batch.entries.length)).toEqual([500, 500, 200])
      expect(allKeys(batches)).toEqual(keys)
      expect(server.most.inFlight).toBe(1)
      expect(yield* storage.status).toMatchObject({ records: 0, bytes: 0 })
    })
  )

  it.scopedLive(
    "a batch with throttled entries ends the stream's share once the requests in flight settle; the rest is retried later",
    () =>
      Effect.gen(function* () {
        const stream = "throttled-lane"
        const storage = yield* memoryStorage()
        const keys = yield* fill(storage, stream, 2600)
        // The second request has every entry whose key ends in 7 throttled: 50 of its 500.
        const throttled = (entry: { readonly partitionKey: string }) => entry.partitionKey.endsWith("7")
        const server = yield* held(4, (name, entries, call) =>
          call === 1 ? rejectWhere(throttled)(name, entries, call) : acceptAll(name, entries, call)
        )
        const rejectedSettled = yield* Deferred.make<void>()
        const watched = RecordStorage.of({
          ...storage,
          settle: (answer, maxAttempts) =>
            Effect.tap(storage.settle(answer, maxAttempts), () =>
              answer._tag === "Answered" && answer.rejected.length > 0
                ? Deferred.succeed(rejectedSettled, undefined)
                : Effect.void
            )
        })
        const { sender, calls } = yield* makeScriptedSender(server.respond)
        const engine = yield* makeEngine(watched, sender, 5, { drain: true, requestsPerStream: 4 })
        const before = yield* metricsOf(stream)

        const flushing = yield* Effect.fork(engine.flush)
        yield* server.full
        // The throttled batch is answered and settled first, while the three others are in flight.
        yield* server.release(1)
        yield* within(Deferred.await(rejectedSettled), "the throttled batch settled")
        yield* letEngineRun(storage)
        for (const call of [0, 2, 3]) yield* server.release(call)

        expect(yield* Fiber.join(flushing)).toEqual(
          flushData({ recordsFlushed: 2000 - 50, recordsFailed: 50, recordsRemaining: 600 + 50 })
        )
        const first = yield* calls
        // No request after those four: the share ended once they settled.
        expect(first).toHaveLength(4)
        const firstSent = allKeys(first)
        expect(new Set(firstSent).size).toBe(2000)
        const refused = keysOf(first[1]!).filter((key) => key.endsWith("7"))
        expect(refused).toHaveLength(50)
        const notSent = keys.filter((key) => !firstSent.includes(key))
        expect(notSent).toHaveLength(600)

        // Each throttled record charged one attempt, nothing else charged.
        const left = yield* cached(storage, stream)
        expect(sorted(left.filter((record) => record.retryCount === 1).map((record) => record.partitionKey))).toEqual(
          sorted(refused)
        )
        expect(sorted(left.filter((record) => record.retryCount === 0).map((record) => record.partitionKey))).toEqual(
          sorted(notSent)
        )
        expect(minus(yield* metricsOf(stream), before)).toEqual({
          delivered: 1950,
          failedAttempts: 50,
          throttled: 50,
          dropped: 0
        })

        // The next flush sends what was left, the refused records included, each once.
        expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 650 }))
        const retried = allKeys((yield* calls).slice(4))
        expect(new Set(retried).size).toBe(retried.length)
        expect(sorted(retried)).toEqual(sorted([...refused, ...notSent]))
        expect(yield* storage.status).toMatchObject({ records: 0, bytes: 0 })
      })
  )

  it.scopedLive(
    "no response to one of several requests in flight: the others settle, none starts, the flush fails, nothing charged",
    () =>
      Effect.gen(function* () {
        const stream = "halted-lane"
        const storage = yield* memoryStorage()
        const keys = yield* fill(storage, stream, 2300)
        const server = yield* held(4, (name, entries, call) =>
          call === 1 ? Effect.fail(connectionRefused()) : acceptAll(name, entries, call)
        )
        const { sender, calls } = yield* makeScriptedSender(server.respond)
        const engine = yield* makeEngine(storage, sender, 5, { drain: true, requestsPerStream: 4 })
        const before = yield* metricsOf(stream)

        const flushing = yield* Effect.fork(engine.flush)
        yield* server.full
        yield* server.release(1)
        yield* letEngineRun(storage)
        // The flush waits for the three requests still in flight.
        expect(flushing.unsafePoll()).toBeNull()
        for (const call of [0, 2, 3]) yield* server.release(call)

        const error = yield* Effect.flip(Fiber.join(flushing))
        expect(error).toBeInstanceOf(KinesisUnknownException)
        const batches = yield* calls
        expect(batches).toHaveLength(4)
        const unanswered = keysOf(batches[1]!)
        const answered = [0, 2, 3].flatMap((call) => keysOf(batches[call]!))
        expect(answered).toHaveLength(1500)
        expect(new Set([...unanswered, ...answered]).size).toBe(2000)

        // The answered ones were settled (deleted); the unanswered batch and the rest stay, uncharged.
        const left = yield* cached(storage, stream)
        expect(sorted(left.map((record) => record.partitionKey))).toEqual(
          sorted(keys.filter((key) => !answered.includes(key)))
        )
        expect(left).toHaveLength(800)
        expect(left.every((record) => record.retryCount === 0)).toBe(true)
        expect(minus(yield* metricsOf(stream), before)).toEqual({
          delivered: 1500,
          failedAttempts: 0,
          throttled: 0,
          dropped: 0
        })
      })
  )

  it.scopedLive(
    "a stream with a request that got no response goes last in the next flush, even if its other requests were answered after",
    () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        yield* fill(storage, "a", 2000)
        yield* fill(storage, "b", 3)
        const server = yield* held(4, (name, entries, call) =>
          call === 1 ? Effect.fail(connectionRefused()) : acceptAll(name, entries, call)
        )
        const { sender, calls } = yield* makeScriptedSender(server.respond)
        // One stream at a time: a (first in name order) keeps b from starting in the failed flush.
        const engine = yield* makeEngine(storage, sender, 5, {
          drain: true,
          requestsPerStream: 4,
          streamConcurrency: 1
        })

        const flushing = yield* Effect.fork(engine.flush)
        yield* server.full
        yield* server.release(1)
        yield* letEngineRun(storage)
        // a's other three requests are answered after the one that got none.
        for (const call of [0, 2, 3]) yield* server.release(call)
        expect(yield* Effect.flip(Fiber.join(flushing))).toBeInstanceOf(KinesisUnknownException)
        expect((yield* calls).map((batch) => batch.stream)).toEqual(["a", "a", "a", "a"])

        expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 503 }))
        expect((yield* calls).slice(4).map((batch) => batch.stream)).toEqual(["b", "a"])
      })
  )
})
