/**
 * Automatic flushing, driven by `TestClock`: when flushes happen, what enable / disable / close do
 * to the schedule, and that a failed flush never stops the loop.
 *
 * The cache is real SQLite (in memory). The sender is a scripted one that accepts everything and
 * notes the (test clock) time of each call. Every test caches 5,000 records in one stream up
 * front: one flush sends at most 500 records per stream, so every flush has work and makes exactly
 * one sender call, and two flushes at the same instant would show up as two calls.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Deferred, type Duration, Effect, Fiber, Layer, Logger, Metric, Option, TestClock } from "effect"
import * as RecordStorage from "../src/engine/cache/RecordStorage.js"
import { backoffWaits } from "../src/engine/flush/FlushScheduler.js"
import * as RecordSender from "../src/engine/send/RecordSender.js"
import type { FlushStrategy } from "../src/FlushStrategy.js"
import { FlushInterval, FlushNone } from "../src/FlushStrategy.js"
import * as KinesisClient from "../src/KinesisClient.js"
import { resolveOptions } from "../src/KinesisClientConfig.js"
import {
  acceptAll,
  flushData,
  makeScriptedSender,
  type Responder,
  refusedWith,
  rejectWhere,
  respondAfter
} from "./support/senders.js"

const batchSize = 500
const initialRecords = 6 * batchSize
const stream = "events"

/** What the sender does on its n-th call (from 0), before accepting the batch. */
type Behaviour = (call: number) => Effect.Effect<void, RecordSender.NoResponse | RecordSender.ServiceError>

interface Harness {
  readonly client: KinesisClient.KinesisClient
  /** The test clock time of every sender call so far. */
  readonly flushTimes: () => ReadonlyArray<number>
  /** How many records the cache holds, read by clearing it (so only at the end of a test). */
  readonly drainCount: Effect.Effect<number, unknown>
}

const setup = (strategy: FlushStrategy, behaviour: Behaviour = () => Effect.void, respond: Responder = acceptAll) =>
  Effect.gen(function* () {
    const times: Array<number> = []
    const sender = yield* makeScriptedSender(
      respondAfter(
        (call) =>
          Effect.gen(function* () {
            times.push(yield* Clock.currentTimeMillis)
            yield* behaviour(call)
          }),
        respond
      )
    )
    const cacheMaxBytes = 50 * 1024 * 1024
    const options = yield* resolveOptions({ flushStrategy: strategy, cacheMaxBytes })
    const client = yield* KinesisClient.makeWith(
      options,
      Layer.merge(RecordStorage.layer({ filename: ":memory:", cacheMaxBytes }), sender.layer)
    )
    const data = new Uint8Array(16)
    yield* Effect.forEach(
      Array.from({ length: initialRecords }, (_, i) => i),
      (i) => client.record({ data, partitionKey: `key-${i}`, streamName: stream }),
      { concurrency: "unbounded", discard: true }
    )
    const harness: Harness = {
      client,
      flushTimes: () => [...times],
      drainCount: Effect.map(client.clearCache(), ({ recordsCleared }) => recordsCleared)
    }
    return harness
  })

const everySecond = FlushInterval({ interval: "1 second" })

/**
 * Flushing every second, with the first flush (at 1 s) held in progress: the sender's first call
 * waits until `release` is run. Returns once that flush has started.
 */
const setupWithFlushInProgress = () =>
  Effect.gen(function* () {
    const started = yield* Deferred.make<void>()
    const gate = yield* Deferred.make<void>()
    const harness = yield* setup(everySecond, (call) =>
      call === 0 ? Deferred.succeed(started, undefined).pipe(Effect.zipRight(Deferred.await(gate))) : Effect.void
    )
    yield* TestClock.adjust("1 second")
    yield* Deferred.await(started)
    return { ...harness, release: Deferred.succeed(gate, undefined) }
  })

/** A logger that keeps every line with its level. */
const capturingLogger = () => {
  const lines: Array<{ readonly level: string; readonly message: string }> = []
  const logger = Logger.make(({ logLevel, message }) => {
    const parts = Array.isArray(message) ? message : [message]
    lines.push({ level: logLevel.label, message: parts.map(String).join(" ") })
  })
  return { lines, layer: Logger.add(logger) }
}

describe("FlushScheduler", () => {
  it.scoped("FlushInterval flushes once per interval, the first one interval after start", () =>
    Effect.gen(function* () {
      const { flushTimes, drainCount } = yield* setup(everySecond)
      yield* TestClock.adjust("999 millis")
      expect(flushTimes()).toEqual([])
      yield* TestClock.adjust("1501 millis")
      expect(flushTimes()).toEqual([1000, 2000])
      expect(yield* drainCount).toBe(initialRecords - 2 * batchSize)
    })
  )

  it.scoped("disable stops automatic flushing for as long as the client is disabled", () =>
    Effect.gen(function* () {
      const { client, flushTimes, drainCount } = yield* setup(everySecond)
      yield* TestClock.adjust("1500 millis")
      yield* client.disable()
      expect(yield* client.isEnabled).toBe(false)
      yield* TestClock.adjust("1000 millis")
      expect(flushTimes()).toEqual([1000])
      yield* TestClock.adjust("1 hour")
      expect(flushTimes()).toEqual([1000])
      expect(yield* drainCount).toBe(initialRecords - batchSize)
    })
  )

  it.scoped("enable restarts the interval from the moment it is called", () =>
    Effect.gen(function* () {
      const { client, flushTimes } = yield* setup(everySecond)
      yield* TestClock.adjust("1500 millis")
      yield* client.disable()
      yield* TestClock.adjust("200 millis")
      yield* client.enable()
      expect(yield* client.isEnabled).toBe(true)
      yield* TestClock.adjust("999 millis") // 2.699 s
      expect(flushTimes()).toEqual([1000])
      yield* TestClock.adjust("1 millis") // 2.7 s
      expect(flushTimes()).toEqual([1000, 2700])
      yield* TestClock.adjust("1 second")
      expect(flushTimes()).toEqual([1000, 2700, 3700])
    })
  )

  it.scoped("enable on an enabled client changes nothing, not even the schedule", () =>
    Effect.gen(function* () {
      const { client, flushTimes } = yield* setup(everySecond)
      yield* TestClock.adjust("500 millis")
      yield* client.enable()
      yield* TestClock.adjust("500 millis")
      expect(flushTimes()).toEqual([1000])
    })
  )

  it.scoped("rapid enable / disable / enable leaves one loop running", () =>
    Effect.gen(function* () {
      const { client, flushTimes } = yield* setup(everySecond)
      yield* TestClock.adjust("500 millis")
      yield* client.enable()
      yield* client.disable()
      yield* client.enable()
      yield* client.disable()
      yield* client.enable()
      yield* Effect.all([client.disable(), client.enable(), client.disable(), client.enable()], {
        concurrency: "unbounded",
        discard: true
      })
      expect(yield* client.isEnabled).toBe(true)
      yield* TestClock.adjust("3 seconds")
      expect(flushTimes()).toEqual([1500, 2500, 3500])
    })
  )

  it.scoped("toggles racing a flush in progress end in the last state asked for, with one loop", () =>
    Effect.gen(function* () {
      const { client, flushTimes, release } = yield* setupWithFlushInProgress()
      // The first disable has to wait for the flush to finish; the others queue up behind it.
      const toggles = yield* Effect.forEach(
        [client.disable(), client.enable(), client.disable(), client.enable()],
        (toggle) => Effect.fork(toggle)
      )
      yield* Effect.yieldNow()
      expect(Option.isNone(yield* Fiber.poll(toggles[0]!))).toBe(true)
      yield* release
      yield* Fiber.joinAll(toggles)
      expect(yield* client.isEnabled).toBe(true)
      yield* TestClock.adjust("3 seconds")
      expect(flushTimes()).toEqual([1000, 2000, 3000, 4000])
    })
  )

  it.scoped("a toggle that arrives as the scheduler lock is released does not leave a loop behind it", () =>
    Effect.gen(function* () {
      const { client, flushTimes, release } = yield* setupWithFlushInProgress()
      const disabling = yield* Effect.fork(client.disable()) // holds the lock until the flush ends
      yield* Effect.yieldNow()
      const enabling = yield* Effect.fork(client.enable()) // waits for the lock
      yield* Effect.yieldNow()
      yield* release
      yield* Fiber.join(disabling)
      // This disable comes right as the lock is released, before the waiting enable has taken it.
      yield* client.disable()
      yield* Fiber.join(enabling)
      expect(yield* client.isEnabled).toBe(false)
      yield* TestClock.adjust("1 hour")
      expect(flushTimes()).toEqual([1000])
    })
  )

  it.scoped("disable waits for an automatic flush in progress, which completes", () =>
    Effect.gen(function* () {
      const { client, flushTimes, drainCount, release } = yield* setupWithFlushInProgress()
      const disabling = yield* Effect.fork(client.disable())
      yield* Effect.yieldNow()
      expect(Option.isNone(yield* Fiber.poll(disabling))).toBe(true)
      yield* release
      yield* Fiber.join(disabling)
      yield* TestClock.adjust("1 hour")
      expect(flushTimes()).toEqual([1000])
      // The flush that was in progress was not cut off: its batch was delivered and deleted.
      expect(yield* drainCount).toBe(initialRecords - batchSize)
    })
  )

  it.scoped("a failed automatic flush is logged and the loop goes on, after a backoff", () => {
    const logs = capturingLogger()
    return Effect.gen(function* () {
      const { flushTimes, drainCount } = yield* setup(everySecond, (call) =>
        call === 0
          ? Effect.fail(new RecordSender.NoResponse({ message: "connect ECONNREFUSED 127.0.0.1:1" }))
          : Effect.void
      ).pipe(Effect.withRandomFixed([1]))
      yield* TestClock.adjust("1 second")
      expect(flushTimes()).toEqual([1000])
      const warnings = logs.lines.filter((line) => line.level === "WARN")
      expect(warnings).toHaveLength(1)
      expect(warnings[0]!.message).toContain("Automatic flush failed")
      expect(warnings[0]!.message).toContain("ECONNREFUSED")
      // No response is trouble: the next flush waits up to twice the interval, then the interval again.
      yield* TestClock.adjust("3 seconds")
      expect(flushTimes()).toEqual([1000, 3000, 4000])
      // The failed flush delivered nothing; the next two delivered a batch each.
      expect(yield* drainCount).toBe(initialRecords - 2 * batchSize)
    }).pipe(Effect.provide(logs.layer))
  })

  it.scoped("an automatic flush that dies is logged and the loop goes on", () => {
    const logs = capturingLogger()
    return Effect.gen(function* () {
      const { flushTimes } = yield* setup(everySecond, (call) =>
        call === 0 ? Effect.die(new Error("sender bug")) : Effect.void
      )
      yield* TestClock.adjust("1 second")
      expect(logs.lines.filter((line) => line.level === "WARN").map((line) => line.message)).toEqual([
        expect.stringContaining("Automatic flush failed")
      ])
      yield* TestClock.adjust("1 second")
      expect(flushTimes()).toEqual([1000, 2000])
    }).pipe(Effect.provide(logs.layer))
  })

  it.scoped("a manual flush does not move the automatic schedule", () =>
    Effect.gen(function* () {
      const { client, flushTimes } = yield* setup(everySecond)
      yield* TestClock.adjust("500 millis")
      expect(yield* client.flush()).toEqual(
        flushData({ recordsFlushed: batchSize, recordsRemaining: initialRecords - batchSize })
      )
      expect(flushTimes()).toEqual([500])
      yield* TestClock.adjust("500 millis")
      expect(flushTimes()).toEqual([500, 1000])
      yield* TestClock.adjust("1200 millis")
      expect(yield* client.flush()).toEqual(
        flushData({ recordsFlushed: batchSize, recordsRemaining: initialRecords - 4 * batchSize })
      )
      yield* TestClock.adjust("800 millis")
      expect(flushTimes()).toEqual([500, 1000, 2000, 2200, 3000])
    })
  )

  it.scoped("FlushNone never flushes on its own, enabled or not", () =>
    Effect.gen(function* () {
      const { client, flushTimes, drainCount } = yield* setup(FlushNone())
      yield* TestClock.adjust("1 hour")
      expect(flushTimes()).toEqual([])
      yield* client.disable()
      yield* client.enable()
      yield* TestClock.adjust("1 hour")
      expect(flushTimes()).toEqual([])
      expect(yield* client.flush()).toEqual(
        flushData({ recordsFlushed: batchSize, recordsRemaining: initialRecords - batchSize })
      )
      yield* TestClock.adjust("1 hour")
      expect(flushTimes()).toEqual([2 * 3_600_000])
      expect(yield* drainCount).toBe(initialRecords - batchSize)
    })
  )

  it.scoped("close stops automatic flushing", () =>
    Effect.gen(function* () {
      const { client, flushTimes } = yield* setup(everySecond)
      yield* TestClock.adjust("1500 millis")
      yield* client.close()
      yield* TestClock.adjust("1 hour")
      expect(flushTimes()).toEqual([1000])
      // enable after close is a no-op: no loop comes back.
      yield* client.enable()
      expect(yield* client.isEnabled).toBe(false)
      yield* TestClock.adjust("1 hour")
      expect(flushTimes()).toEqual([1000])
    })
  )

  describe("backoff after trouble", () => {
    const throttled = rejectWhere(() => true)

    /**
     * Moves the test clock to each time in turn and checks that the next automatic flush comes exactly
     * then: not a millisecond before.
     */
    const expectFlushesAt = (flushTimes: () => ReadonlyArray<number>, times: ReadonlyArray<number>) =>
      Effect.gen(function* () {
        for (const time of times) {
          const before = flushTimes()
          yield* TestClock.adjust(time - 1 - (yield* Clock.currentTimeMillis))
          expect(flushTimes()).toEqual(before)
          yield* TestClock.adjust(1)
          expect(flushTimes()).toEqual([...before, time])
        }
      })

    const backoff = (maxBackoff: Duration.DurationInput) => FlushInterval({ interval: "1 second", maxBackoff })

    for (const [random, times] of [
      // waits after k troubled flushes: between half and all of min(10 s, 1 s * 2^k), never below 1 s
      [0, [1000, 2000, 4000, 8000, 13000, 18000]],
      [0.5, [1000, 2500, 5500, 11500, 19000, 26500]],
      [1, [1000, 3000, 7000, 15000, 25000, 35000]]
    ] as const) {
      it.scoped(
        `waits ${random === 0 ? "half" : random === 1 ? "all" : "three quarters"} of min(maxBackoff, interval * 2^k) after k troubled flushes`,
        () =>
          Effect.gen(function* () {
            const count = Effect.map(Metric.value(backoffWaits), (state) => [state.count, state.sum])
            const [countBefore, sumBefore] = yield* count
            const { flushTimes } = yield* setup(backoff("10 seconds"), undefined, throttled).pipe(
              Effect.withRandomFixed([random])
            )
            yield* expectFlushesAt(flushTimes, times)
            // One wait measured after each of the six troubled flushes, the next one's included.
            const waits = times.slice(1).map((time, i) => time - times[i]!)
            const lastCap = 10_000
            const [countAfter, sumAfter] = yield* count
            expect(countAfter! - countBefore!).toBe(6)
            expect(sumAfter! - sumBefore!).toBe(
              waits.reduce((a, b) => a + b, 0) + Math.max(1000, lastCap * (0.5 + random / 2))
            )
          })
      )
    }

    it.scoped("never waits less than the interval, even when half of maxBackoff is shorter", () =>
      Effect.gen(function* () {
        const lowest = yield* setup(backoff("1500 millis"), undefined, throttled).pipe(Effect.withRandomFixed([0]))
        yield* expectFlushesAt(lowest.flushTimes, [1000, 2000, 3000, 4000])
        const highest = yield* setup(backoff("1500 millis"), undefined, throttled).pipe(Effect.withRandomFixed([1]))
        yield* expectFlushesAt(highest.flushTimes, [5000, 6500, 8000])
      })
    )

    for (const maxBackoff of ["1 second", "500 millis"] as const) {
      it.scoped(`a maxBackoff of ${maxBackoff} with an interval of 1 second turns backoff off`, () =>
        Effect.gen(function* () {
          const waits = Effect.map(Metric.value(backoffWaits), (state) => state.count)
          const waitsBefore = yield* waits
          const { flushTimes } = yield* setup(backoff(maxBackoff), undefined, throttled).pipe(
            Effect.withRandomFixed([1])
          )
          yield* expectFlushesAt(flushTimes, [1000, 2000, 3000, 4000])
          expect(yield* waits).toBe(waitsBefore)
        })
      )
    }

    it.scoped("an untroubled flush brings the wait back to the interval", () =>
      Effect.gen(function* () {
        const { flushTimes } = yield* setup(backoff("1 minute"), undefined, (stream, entries, call) =>
          (call < 2 ? throttled : acceptAll)(stream, entries, call)
        ).pipe(Effect.withRandomFixed([1]))
        yield* expectFlushesAt(flushTimes, [1000, 3000, 7000, 8000, 9000])
      })
    )

    it.scoped("manual flushes run when called and neither raise nor reset the count of troubled flushes", () =>
      Effect.gen(function* () {
        let respond: Responder = throttled
        const { client, flushTimes } = yield* setup(backoff("1 minute"), undefined, (stream, entries, call) =>
          respond(stream, entries, call)
        ).pipe(Effect.withRandomFixed([1]))
        yield* expectFlushesAt(flushTimes, [1000])
        // A clean manual flush at 1.5 s does not reset the backoff: the next automatic one is at 3 s.
        respond = acceptAll
        yield* TestClock.adjust(500)
        expect((yield* client.flush()).recordsFlushed).toBe(batchSize)
        yield* expectFlushesAt(flushTimes, [3000])
        // A troubled manual flush at 3.5 s does not raise it: the next automatic one is at 4 s.
        respond = throttled
        yield* TestClock.adjust(500)
        expect((yield* client.flush()).recordsFailed).toBe(batchSize)
        respond = acceptAll
        yield* expectFlushesAt(flushTimes, [4000, 5000])
        expect(flushTimes()).toEqual([1000, 1500, 3000, 3500, 4000, 5000])
      })
    )

    it.scoped("an automatic flush that finds a manual one running leaves the count of troubled flushes as it was", () =>
      Effect.gen(function* () {
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const { client, flushTimes } = yield* setup(
          backoff("1 minute"),
          (call) =>
            call === 1 ? Effect.zipRight(Deferred.succeed(started, undefined), Deferred.await(gate)) : Effect.void,
          (stream, entries, call) => (call === 0 ? throttled : acceptAll)(stream, entries, call)
        ).pipe(Effect.withRandomFixed([1]))
        yield* expectFlushesAt(flushTimes, [1000])
        // A manual flush from 2.5 s to 3.5 s holds the guard when the automatic one is due, at 3 s.
        yield* TestClock.adjust(1500)
        const manual = yield* Effect.fork(client.flush())
        yield* Deferred.await(started)
        yield* TestClock.adjust(1000)
        yield* Deferred.succeed(gate, undefined)
        expect((yield* Fiber.join(manual)).recordsFlushed).toBe(batchSize)
        // Still one troubled flush in a row: the next automatic flush waits up to 2 s from 3 s.
        yield* expectFlushesAt(flushTimes, [5000, 6000])
        expect(flushTimes()).toEqual([1000, 2500, 5000, 6000])
      })
    )

    const outcomes: ReadonlyArray<readonly [string, Responder, boolean]> = [
      ["records refused with ProvisionedThroughputExceededException", throttled, true],
      ["records refused with InternalFailure", rejectWhere(() => true, "InternalFailure"), true],
      ["one record of the batch throttled", rejectWhere((entry) => entry.partitionKey === "key-0"), true],
      ["records refused with KMSAccessDeniedException", rejectWhere(() => true, "KMSAccessDeniedException"), false],
      [
        "ProvisionedThroughputExceededException for the request",
        refusedWith("ProvisionedThroughputExceededException", 400),
        true
      ],
      ["LimitExceededException for the request", refusedWith("LimitExceededException", 400), true],
      ["ThrottlingException for the request", refusedWith("ThrottlingException", 400), true],
      ["KMSThrottlingException for the request", refusedWith("KMSThrottlingException", 400), true],
      ["InternalFailure (HTTP 500) for the request", refusedWith("InternalFailure", 500), true],
      ["ServiceUnavailable (HTTP 503) for the request", refusedWith("ServiceUnavailable", 503), true],
      ["any 5xx for the request", refusedWith("Unknown", 502), true],
      ["no response", () => Effect.fail(new RecordSender.NoResponse({ message: "ECONNRESET" })), true],
      ["ResourceNotFoundException for the request", refusedWith("ResourceNotFoundException", 400), false],
      ["AccessDeniedException for the request", refusedWith("AccessDeniedException", 400), false],
      ["every record accepted", acceptAll, false]
    ]
    for (const [outcome, respond, troubled] of outcomes) {
      it.scoped(`${outcome} ${troubled ? "is" : "is not"} trouble`, () =>
        Effect.gen(function* () {
          const { flushTimes } = yield* setup(backoff("1 minute"), undefined, respond).pipe(Effect.withRandomFixed([1]))
          yield* expectFlushesAt(flushTimes, [1000, troubled ? 3000 : 2000])
        })
      )
    }
  })
})
