/**
 * The flush engine's streams over a real SQLite cache: `drain` (a stream's batches until it is empty)
 * and `streamConcurrency` (several streams at once, one request in flight per stream), with a
 * scripted sender that holds requests open where a test must see what is in flight.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { KinesisStorageException, KinesisUnknownException } from "../src/Errors.js"
import { RecordStorage } from "../src/engine/cache/RecordStorage.js"
import {
  acceptAll,
  byStream,
  cached,
  connectionRefused,
  flushData,
  keysOf,
  makeEngine,
  makeScriptedSender,
  memoryStorage,
  put,
  type Responder,
  refusedWith,
  rejectWhere,
  type SentBatch
} from "./support/senders.js"

/** Keys `<prefix>0000` to `<prefix><count - 1>`, in the order they are recorded. */
const keyRange = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(4, "0")}`)

/** Records `count` records in `stream`, keyed with the stream's name; returns their keys. */
const fill = (storage: RecordStorage, stream: string, count: number) =>
  Effect.gen(function* () {
    const keys = keyRange(`${stream}-`, count)
    for (const key of keys) yield* put(storage, stream, key, key)
    return keys
  })

const streamsOf = (batches: ReadonlyArray<SentBatch>) => batches.map((batch) => batch.stream)

/** The keys sent for each stream, in the order sent. */
const keysByStream = (batches: ReadonlyArray<SentBatch>) => {
  const sent: Record<string, ReadonlyArray<string>> = {}
  for (const batch of batches) sent[batch.stream] = [...(sent[batch.stream] ?? []), ...keysOf(batch)]
  return sent
}

describe("FlushEngine: drain", () => {
  it.scoped("one flush empties each stream, batch after batch, in insertion order", () =>
    Effect.gen(function* () {
      const storage = yield* memoryStorage()
      const s = yield* fill(storage, "s", 1200)
      const t = yield* fill(storage, "t", 3)
      const { sender, calls } = yield* makeScriptedSender()
      const engine = yield* makeEngine(storage, sender, 5, { drain: true })

      expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 1203 }))

      const batches = yield* calls
      expect(batches.filter((batch) => batch.stream === "s").map((batch) => batch.entries.length)).toEqual([
        500, 500, 200
      ])
      expect(keysByStream(batches)).toEqual({ s, t })
      expect(yield* storage.status).toMatchObject({ records: 0, bytes: 0 })
    })
  )

  it.scoped("without drain, one flush sends one batch per stream", () =>
    Effect.gen(function* () {
      const storage = yield* memoryStorage()
      yield* fill(storage, "s", 1200)
      yield* fill(storage, "t", 3)
      const { sender, calls } = yield* makeScriptedSender()
      const engine = yield* makeEngine(storage, sender, 5)

      expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 503, recordsRemaining: 700 }))
      expect((yield* calls).map((batch) => [batch.stream, batch.entries.length])).toEqual([
        ["s", 500],
        ["t", 3]
      ])
    })
  )

  const notWhole: ReadonlyArray<readonly [string, Responder, Partial<ReturnType<typeof flushData>>]> = [
    [
      "one record of it rejected",
      rejectWhere((entry) => entry.partitionKey === "s-0700"),
      { recordsFlushed: 999 + 3, recordsFailed: 1, recordsRemaining: 201 }
    ],
    [
      "the request refused",
      (stream, entries, call) =>
        call === 1
          ? refusedWith("ResourceNotFoundException", 400)(stream, entries, call)
          : acceptAll(stream, entries, call),
      { recordsFlushed: 500 + 3, recordsFailed: 500, recordsRemaining: 700 }
    ]
  ]
  for (const [label, respond, counts] of notWhole) {
    it.scoped(`stops a stream at a batch not accepted whole (${label}); the other streams go on`, () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        yield* fill(storage, "s", 1200)
        yield* fill(storage, "t", 3)
        // One stream at a time, so that the second request is s's second batch.
        const { sender, calls } = yield* makeScriptedSender(respond)
        const engine = yield* makeEngine(storage, sender, 5, { drain: true, streamConcurrency: 1 })

        expect(yield* engine.flush).toEqual(flushData(counts))
        expect((yield* calls).map((batch) => [batch.stream, batch.entries.length])).toEqual([
          ["s", 500],
          ["s", 500],
          ["t", 3]
        ])
      })
    )
  }

  it.scopedLive("sends no further batch once shutdown has begun; the request in flight finishes", () =>
    Effect.gen(function* () {
      const storage = yield* memoryStorage()
      yield* fill(storage, "s", 1200)
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
      const engine = yield* makeEngine(storage, sender, 5, { drain: true })

      const flushing = yield* Effect.fork(engine.flush)
      yield* Deferred.await(sent)
      const shuttingDown = yield* Effect.fork(engine.shutdown())
      yield* Deferred.succeed(release, undefined)

      expect(yield* Fiber.join(flushing)).toEqual(flushData({ recordsFlushed: 500, recordsRemaining: 700 }))
      yield* Fiber.join(shuttingDown)
      expect((yield* calls).map((batch) => batch.entries.length)).toEqual([500])
    })
  )
})

/**
 * A server that answers in waves: each request waits until `size` requests are waiting, then all of
 * them are accepted together. It notes the most requests in flight at once, overall and per stream.
 */
const inWaves = (size: number) =>
  Effect.gen(function* () {
    let wave = yield* Deferred.make<void>()
    let waiting = 0
    let inFlight = 0
    const perStream = new Map<string, number>()
    const most = { inFlight: 0, perStream: 0 }
    const respond: Responder = (stream, entries, call) =>
      Effect.gen(function* () {
        inFlight++
        perStream.set(stream, (perStream.get(stream) ?? 0) + 1)
        most.inFlight = Math.max(most.inFlight, inFlight)
        most.perStream = Math.max(most.perStream, perStream.get(stream)!)
        const mine = wave
        if (++waiting === size) {
          waiting = 0
          wave = yield* Deferred.make<void>()
          yield* Deferred.succeed(mine, undefined)
        }
        yield* Deferred.await(mine)
        inFlight--
        perStream.set(stream, perStream.get(stream)! - 1)
        return yield* acceptAll(stream, entries, call)
      })
    return { respond, most }
  })

describe("FlushEngine: streams in parallel", () => {
  it.scoped("sends to streamConcurrency streams at once, one request per stream, each stream in order", () =>
    Effect.gen(function* () {
      const storage = yield* memoryStorage()
      // Six streams of two batches each: with three at once, every wave of requests is full.
      const streams = ["a", "b", "c", "d", "e", "f"]
      const recorded: Record<string, ReadonlyArray<string>> = {}
      for (const stream of streams) recorded[stream] = yield* fill(storage, stream, 501)
      const server = yield* inWaves(3)
      const { sender, calls } = yield* makeScriptedSender(server.respond)
      const engine = yield* makeEngine(storage, sender, 5, { drain: true, streamConcurrency: 3 })

      expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 6 * 501 }))

      expect(server.most).toEqual({ inFlight: 3, perStream: 1 })
      expect(yield* calls).toHaveLength(12)
      expect(keysByStream(yield* calls)).toEqual(recorded)
    })
  )

  it.scoped("counts what every stream did in one FlushData", () =>
    Effect.gen(function* () {
      const storage = yield* memoryStorage()
      for (const stream of ["a", "b", "c", "d", "e"]) yield* fill(storage, stream, 4)
      const { sender } = yield* makeScriptedSender(
        byStream({
          b: rejectWhere((entry) => entry.partitionKey === "b-0000"),
          d: refusedWith("ResourceNotFoundException", 400)
        })
      )
      const engine = yield* makeEngine(storage, sender, 0, { streamConcurrency: 4 })

      expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 15, recordsFailed: 5, recordsDropped: 5 }))
    })
  )

  it.scoped("a stream that got no response goes last in the next flush, and the others are delivered", () =>
    Effect.gen(function* () {
      const storage = yield* memoryStorage()
      for (const stream of ["a", "b", "c", "d"]) yield* fill(storage, stream, 2)
      let bAnswers = false
      const { sender, calls } = yield* makeScriptedSender(
        byStream({ b: (...request) => (bAnswers ? acceptAll(...request) : Effect.fail(connectionRefused())) })
      )
      const engine = yield* makeEngine(storage, sender, 5, { streamConcurrency: 2 })

      // a and b go first; b's missing answer keeps c and d from starting.
      expect(yield* Effect.flip(engine.flush)).toBeInstanceOf(KinesisUnknownException)
      expect([...streamsOf(yield* calls)].sort()).toEqual(["a", "b"])
      // c and d first now; b, still not answering, last.
      expect(yield* Effect.flip(engine.flush)).toBeInstanceOf(KinesisUnknownException)
      expect(streamsOf((yield* calls).slice(2))).toEqual(["c", "d", "b"])
      for (const stream of ["a", "c", "d"]) expect(yield* cached(storage, stream)).toEqual([])

      // Once b answers, it takes its place in name order again: before c.
      bAnswers = true
      expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 2 }))
      for (const stream of ["a", "b", "c"]) yield* put(storage, stream, `${stream}-late`, "late")
      expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 3 }))
      expect(streamsOf(yield* calls).at(-1)).toBe("c")
    })
  )

  const failures: ReadonlyArray<
    readonly [string, (storage: RecordStorage) => RecordStorage, Responder, abstract new (...args: never) => Error]
  > = [
    [
      "no response",
      (storage) => storage,
      byStream({ b: () => Effect.fail(connectionRefused()) }),
      KinesisUnknownException
    ],
    [
      "a storage error",
      (storage) =>
        RecordStorage.of({
          ...storage,
          settle: (answer, maxAttempts) =>
            answer.streamName === "b"
              ? Effect.fail(new KinesisStorageException({ message: "disk I/O error" }))
              : storage.settle(answer, maxAttempts)
        }),
      acceptAll,
      KinesisStorageException
    ]
  ]
  for (const [label, failing, respond, errorClass] of failures) {
    it.scopedLive(`${label} on one stream lets the request in flight for another settle, and starts no other`, () =>
      Effect.gen(function* () {
        const storage = yield* memoryStorage()
        for (const stream of ["a", "b", "c"]) yield* fill(storage, stream, 2)
        const aSent = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const bAnswered = yield* Deferred.make<void>()
        const { sender, calls } = yield* makeScriptedSender(
          byStream({
            a: (stream, entries, call) =>
              Deferred.succeed(aSent, undefined).pipe(
                Effect.zipRight(Deferred.await(release)),
                Effect.zipRight(acceptAll(stream, entries, call))
              ),
            b: (stream, entries, call) =>
              Effect.ensuring(respond(stream, entries, call), Deferred.succeed(bAnswered, undefined))
          })
        )
        const engine = yield* makeEngine(failing(storage), sender, 5, { streamConcurrency: 2 })

        const flushing = yield* Effect.fork(engine.flush)
        yield* Deferred.await(aSent)
        yield* Deferred.await(bAnswered)
        yield* Deferred.succeed(release, undefined)

        expect(yield* Effect.flip(Fiber.join(flushing))).toBeInstanceOf(errorClass)
        expect([...streamsOf(yield* calls)].sort()).toEqual(["a", "b"])
        expect(yield* cached(storage, "a")).toEqual([])
        expect((yield* cached(storage, "c")).map((record) => record.retryCount)).toEqual([0, 0])
      })
    )
  }
})
