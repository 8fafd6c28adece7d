/**
 * The Effect API's lifecycle: disabled collection, clearCache, close (idempotent, waiting for a
 * flush in progress, closing everything after it), the layer's scope, and one owner per cache file.
 *
 * The cache is real SQLite: in memory where persistence is not the point, in a temporary directory
 * where it is. The sender is a scripted one that accepts everything and records what it was sent;
 * a gate (a Deferred) holds a call open where a test needs a flush in progress.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { KinesisClient as SdkClient } from "@aws-sdk/client-kinesis"
import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Clock,
  Config,
  ConfigError,
  ConfigProvider,
  Context,
  Deferred,
  type Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Queue,
  Ref,
  Scope,
  TestClock
} from "effect"
import { ClientClosedException, KinesisStorageException, KinesisValidationException } from "../src/Errors.js"
import * as RecordStorage from "../src/engine/cache/RecordStorage.js"
import type * as RecordSender from "../src/engine/send/RecordSender.js"
import { RecordSender as RecordSenderTag } from "../src/engine/send/RecordSender.js"
import { FlushInterval, FlushNone } from "../src/FlushStrategy.js"
import * as EventLoop from "../src/internal/eventLoop.js"
import * as KinesisClient from "../src/KinesisClient.js"
import { type KinesisClientConfig, type KinesisClientOptions, resolveOptions } from "../src/KinesisClientConfig.js"
import type { RecordInput } from "../src/RecordInput.js"
import {
  acceptAll,
  byStream,
  captureLogs,
  connectionRefused,
  flushData,
  makeScriptedSender,
  type Responder,
  rejected,
  rejectWhere,
  respondAfter,
  type SentBatch,
  sentTexts
} from "./support/senders.js"
import { scopedTempDir } from "./support/tempDir.js"

const encoder = new TextEncoder()
const accepted: RecordSender.EntryResult = { _tag: "Accepted" }
/** An SDK client for the escape hatch of a sender written inline; never called. */
const unusedSdkClient = () => new SdkClient({ region: "us-east-1", endpoint: "http://127.0.0.1:9" })
const record = (text: string, streamName = "events"): RecordInput => ({
  data: encoder.encode(text),
  partitionKey: `key-${text}`,
  streamName
})

const tempDir = scopedTempDir("effect-kinesis-client-")

interface Gate {
  readonly started: Deferred.Deferred<void>
  readonly release: Deferred.Deferred<void>
}

/** A sender that accepts everything; `gate`, when given, holds every call open until it is opened. */
const makeSender = (gate?: Gate) =>
  makeScriptedSender(
    gate
      ? respondAfter(() => Effect.zipRight(Deferred.succeed(gate.started, undefined), Deferred.await(gate.release)))
      : acceptAll
  )

/** A client over the sender, with manual flushes only and a 1 MiB cache unless `options` say otherwise. */
const makeClient = (
  sender: Layer.Layer<RecordSender.RecordSender>,
  options: KinesisClientOptions & { readonly filename?: string } = {}
) =>
  Effect.gen(function* () {
    const { filename = ":memory:", ...clientOptions } = options
    const resolved = yield* resolveOptions({ flushStrategy: FlushNone(), cacheMaxBytes: 1024 * 1024, ...clientOptions })
    return yield* KinesisClient.makeWith(
      resolved,
      Layer.merge(RecordStorage.layer({ filename, cacheMaxBytes: resolved.cacheMaxBytes }), sender)
    )
  })

/**
 * A client over a cache file in a fresh temp directory, whose sender holds every call open until
 * `gate.release` is opened.
 */
const makeGatedClient = (options: KinesisClientOptions = {}) =>
  Effect.gen(function* () {
    const filename = path.join(yield* tempDir, "cache.db")
    const gate: Gate = { started: yield* Deferred.make<void>(), release: yield* Deferred.make<void>() }
    const blocked = yield* makeSender(gate)
    const client = yield* makeClient(blocked.layer, { ...options, filename })
    return { filename, gate, blocked, client }
  })

/** Starts closing the client and checks that close is still waiting (for the flush in progress). */
const startClose = (client: KinesisClient.KinesisClient) =>
  Effect.gen(function* () {
    const closing = yield* Effect.fork(client.close())
    yield* Effect.yieldNow()
    yield* Effect.yieldNow()
    expect(Option.isNone(yield* Fiber.poll(closing))).toBe(true)
    return closing
  })

/** The next owner of a cache file, after the one before it closed. */
const reopen = (filename: string) => Effect.flatMap(makeSender(), (next) => makeClient(next.layer, { filename }))

/** A configuration for the real layer; the endpoint is never called (manual flushes only, none made). */
const configFor = (storagePath: string, region = "us-east-1"): KinesisClientConfig => ({
  region,
  storagePath,
  credentialsProvider: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" },
  options: { flushStrategy: FlushNone() },
  kinesisClientConfig: { endpoint: "http://127.0.0.1:9", maxAttempts: 1 }
})

/** The error an exit failed with, or "succeeded" (kept short, unlike a whole client in a failure message). */
const failureOf = <A, E>(exit: Exit.Exit<A, E>): unknown =>
  Exit.match(exit, { onSuccess: () => "succeeded", onFailure: (cause) => Cause.squash(cause) })

describe("KinesisClient: disabled", () => {
  it.scoped("record while disabled returns Ok and stores nothing, not even invalid input", () =>
    Effect.gen(function* () {
      const sender = yield* makeSender()
      const client = yield* makeClient(sender.layer)
      const invalid = [
        { data: "not bytes", partitionKey: "k", streamName: "events" },
        { data: new Uint8Array(1), partitionKey: "", streamName: "events" },
        { data: new Uint8Array(1), partitionKey: "k", streamName: "bad stream name!" },
        null,
        42
      ] as unknown as ReadonlyArray<RecordInput>
      // Enabled, the same input is refused: the checks are skipped only because the client is disabled.
      const refused = yield* Effect.flip(client.record(invalid[0]!))
      expect(refused).toBeInstanceOf(KinesisValidationException)

      yield* client.disable()
      expect(yield* client.isEnabled).toBe(false)
      expect(yield* client.record(record("dropped"))).toEqual({})
      for (const input of invalid) expect(yield* client.record(input)).toEqual({})

      yield* client.enable()
      expect(yield* client.flush()).toEqual(flushData({ recordsFlushed: 0 }))
      expect(sentTexts(yield* sender.calls)).toEqual([])
      expect(yield* client.clearCache()).toEqual({ recordsCleared: 0 })
    })
  )

  it.scoped("flush and clearCache work while disabled", () =>
    Effect.gen(function* () {
      const sender = yield* makeSender()
      const client = yield* makeClient(sender.layer)
      yield* Effect.forEach(["a", "b", "c"], (text) => client.record(record(text)))
      yield* client.disable()
      expect(yield* client.flush()).toEqual(flushData({ recordsFlushed: 3 }))
      expect(sentTexts(yield* sender.calls)).toEqual(["a", "b", "c"])

      yield* client.enable()
      yield* Effect.forEach(["d", "e"], (text) => client.record(record(text)))
      yield* client.disable()
      expect(yield* client.clearCache()).toEqual({ recordsCleared: 2 })
      expect(yield* client.isEnabled).toBe(false)
    })
  )
})

describe("KinesisClient: clearCache", () => {
  it.scoped("returns how many records it deleted and gives back the whole cache limit", () =>
    Effect.gen(function* () {
      const sender = yield* makeSender()
      const client = yield* makeClient(sender.layer, { cacheMaxBytes: 100 })
      // 48 bytes of data + a 2-byte partition key: 50 bytes each.
      const half = (key: string, streamName: string): RecordInput => ({
        data: new Uint8Array(48),
        partitionKey: key,
        streamName
      })
      yield* client.record(half("k1", "alpha"))
      yield* client.record(half("k2", "beta"))
      const full = yield* Effect.flip(
        client.record({ data: new Uint8Array(0), partitionKey: "k", streamName: "alpha" })
      )
      expect(full._tag).toBe("KinesisLimitExceededException")

      expect(yield* client.clearCache()).toEqual({ recordsCleared: 2 })
      // The cached byte count is back to 0: a record of exactly cacheMaxBytes fits, and one byte more does not.
      yield* client.record({ data: new Uint8Array(99), partitionKey: "k", streamName: "alpha" })
      const over = yield* Effect.flip(
        client.record({ data: new Uint8Array(0), partitionKey: "k", streamName: "alpha" })
      )
      expect(over._tag).toBe("KinesisLimitExceededException")
      expect(yield* client.clearCache()).toEqual({ recordsCleared: 1 })
      expect(yield* client.clearCache()).toEqual({ recordsCleared: 0 })
      expect(yield* client.flush()).toEqual(flushData({ recordsFlushed: 0 }))
      expect(sentTexts(yield* sender.calls)).toEqual([])
    })
  )
})

describe("KinesisClient: cacheStatus", () => {
  const empty = { records: 0, bytes: 0, oldestRecordAgeMs: undefined }

  it.scoped("counts the cached records and bytes, and the age of the oldest record on the Clock", () =>
    Effect.gen(function* () {
      const sender = yield* makeSender()
      const client = yield* makeClient(sender.layer)
      expect(yield* client.cacheStatus()).toEqual(empty)

      yield* client.record(record("first")) // 5 bytes of data + 9 of partition key
      yield* TestClock.adjust("5 seconds")
      yield* client.record(record("second", "other")) // 6 + 10
      expect(yield* client.cacheStatus()).toEqual({ records: 2, bytes: 30, oldestRecordAgeMs: 5000 })
      yield* TestClock.adjust("2 seconds")
      expect(yield* client.cacheStatus()).toEqual({ records: 2, bytes: 30, oldestRecordAgeMs: 7000 })

      expect(yield* client.flush()).toEqual(flushData({ recordsFlushed: 2 }))
      expect(yield* client.cacheStatus()).toEqual(empty)
    })
  )

  it.scoped("works while disabled, and fails with ClientClosedException once closed", () =>
    Effect.gen(function* () {
      const sender = yield* makeSender()
      const client = yield* makeClient(sender.layer)
      yield* client.record(record("kept"))
      yield* client.disable()
      yield* TestClock.adjust("1 minute")
      expect(yield* client.cacheStatus()).toEqual({ records: 1, bytes: 12, oldestRecordAgeMs: 60_000 })

      yield* client.close()
      expect(yield* Effect.flip(client.cacheStatus())).toBeInstanceOf(ClientClosedException)
    })
  )
})

describe("KinesisClient: close", () => {
  it.scoped("is idempotent, called twice or concurrently", () =>
    Effect.gen(function* () {
      const sender = yield* makeSender()
      const client = yield* makeClient(sender.layer)
      yield* client.record(record("a"))
      yield* Effect.all([client.close(), client.close(), client.close()], { concurrency: "unbounded" })
      expect(yield* client.isClosed).toBe(true)
      yield* client.close()
      yield* client.close()
      expect(yield* client.isClosed).toBe(true)
    })
  )

  it.scoped(
    "after close, record / flush / clearCache fail with ClientClosedException and enable / disable do nothing",
    () =>
      Effect.gen(function* () {
        const sender = yield* makeSender()
        const client = yield* makeClient(sender.layer)
        yield* client.record(record("a"))
        expect(yield* client.isClosed).toBe(false)
        yield* client.close()
        expect(yield* client.isClosed).toBe(true)
        expect(yield* client.isEnabled).toBe(false)

        expect(yield* Effect.flip(client.record(record("b")))).toBeInstanceOf(ClientClosedException)
        // Closed comes before validation.
        expect(yield* Effect.flip(client.record(null as unknown as RecordInput))).toBeInstanceOf(ClientClosedException)
        expect(yield* Effect.flip(client.flush())).toBeInstanceOf(ClientClosedException)
        expect(yield* Effect.flip(client.clearCache())).toBeInstanceOf(ClientClosedException)

        yield* client.enable()
        expect(yield* client.isEnabled).toBe(false)
        yield* client.disable()
        yield* client.enable()
        expect(yield* client.isEnabled).toBe(false)
        // Still closed, not merely disabled: a disabled client would return Ok.
        expect(yield* Effect.flip(client.record(record("c")))).toBeInstanceOf(ClientClosedException)
        expect(sentTexts(yield* sender.calls)).toEqual([])
      })
  )

  it.scoped("an operation that began before close and meets the closed cache fails with ClientClosedException", () =>
    Effect.gen(function* () {
      const cacheMaxBytes = 1024 * 1024
      const reached = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      // The real cache, with clear held at its start until the test lets it go on.
      const storage = Layer.effect(
        RecordStorage.RecordStorage,
        Effect.map(RecordStorage.RecordStorage, (real) => ({
          ...real,
          clear: Deferred.succeed(reached, undefined).pipe(
            Effect.zipRight(Deferred.await(release)),
            Effect.zipRight(real.clear)
          )
        }))
      ).pipe(Layer.provide(RecordStorage.layer({ filename: ":memory:", cacheMaxBytes })))
      const sender = yield* makeSender()
      const resolved = yield* resolveOptions({ flushStrategy: FlushNone(), cacheMaxBytes })
      const client = yield* KinesisClient.makeWith(resolved, Layer.merge(storage, sender.layer))

      const clearing = yield* Effect.fork(client.clearCache())
      yield* Deferred.await(reached)
      yield* client.close()
      yield* Deferred.succeed(release, undefined)

      expect(yield* Effect.flip(Fiber.join(clearing))).toBeInstanceOf(ClientClosedException)
    })
  )

  it.scoped("a client closed while disabled also refuses every operation", () =>
    Effect.gen(function* () {
      const sender = yield* makeSender()
      const client = yield* makeClient(sender.layer)
      yield* client.disable()
      yield* client.close()
      expect(yield* Effect.flip(client.record(record("a")))).toBeInstanceOf(ClientClosedException)
      expect(yield* Effect.flip(client.flush())).toBeInstanceOf(ClientClosedException)
      expect(yield* Effect.flip(client.clearCache())).toBeInstanceOf(ClientClosedException)
    })
  )

  it.scoped("waits for a manual flush in progress, which completes and deletes what it sent", () =>
    Effect.gen(function* () {
      const { filename, gate, blocked, client } = yield* makeGatedClient()
      yield* Effect.forEach(["a", "b", "c"], (text) => client.record(record(text)))

      const flushing = yield* Effect.fork(client.flush())
      yield* Deferred.await(gate.started)
      const closing = yield* startClose(client)
      // From the moment close starts, new calls are refused, while the flush goes on.
      expect(yield* client.isClosed).toBe(true)
      expect(yield* Effect.flip(client.record(record("d")))).toBeInstanceOf(ClientClosedException)
      expect(yield* Effect.flip(client.flush())).toBeInstanceOf(ClientClosedException)

      yield* Deferred.succeed(gate.release, undefined)
      expect(yield* Fiber.join(flushing)).toEqual(flushData({ recordsFlushed: 3 }))
      yield* Fiber.join(closing)
      expect(sentTexts(yield* blocked.calls)).toEqual(["a", "b", "c"])

      // The flush was not abandoned: the next owner of the cache finds the records gone.
      const reopened = yield* reopen(filename)
      expect(yield* reopened.flush()).toEqual(flushData({ recordsFlushed: 0 }))
      expect(yield* reopened.clearCache()).toEqual({ recordsCleared: 0 })
    })
  )

  it.scoped("waits for an automatic flush in progress, which completes and deletes what it sent", () =>
    Effect.gen(function* () {
      const { filename, gate, blocked, client } = yield* makeGatedClient({
        flushStrategy: FlushInterval({ interval: "1 second" })
      })
      yield* Effect.forEach(["a", "b"], (text) => client.record(record(text)))
      yield* TestClock.adjust("1 second")
      yield* Deferred.await(gate.started)
      const closing = yield* startClose(client)
      yield* Deferred.succeed(gate.release, undefined)
      yield* Fiber.join(closing)
      expect(sentTexts(yield* blocked.calls)).toEqual(["a", "b"])

      const reopened = yield* reopen(filename)
      expect(yield* reopened.clearCache()).toEqual({ recordsCleared: 0 })
    })
  )

  it.scoped("a multi-stream flush in progress finishes its request in flight and starts no other stream", () =>
    Effect.gen(function* () {
      // One stream at a time: s1's request is the only one in flight when close begins.
      const { filename, gate, blocked, client } = yield* makeGatedClient({ streamConcurrency: 1 })
      yield* Effect.forEach(["s1", "s2", "s3"], (stream) => client.record(record(`on-${stream}`, stream)))

      const flushing = yield* Effect.fork(client.flush())
      yield* Deferred.await(gate.started)
      const closing = yield* startClose(client)
      // Close reaches the engine with the next turn of the event loop.
      yield* EventLoop.turn
      yield* Deferred.succeed(gate.release, undefined)
      expect(yield* Fiber.join(flushing)).toEqual(flushData({ recordsFlushed: 1, recordsRemaining: 2 }))
      yield* Fiber.join(closing)
      // Only the request that was in flight when close began was sent.
      expect(sentTexts(yield* blocked.calls)).toEqual(["on-s1"])

      const reopened = yield* reopen(filename)
      expect(yield* reopened.clearCache()).toEqual({ recordsCleared: 2 })
    })
  )

  it.scoped("flushes called after close send nothing, however flush and close interleave", () =>
    Effect.gen(function* () {
      for (let round = 0; round < 20; round++) {
        const requests = yield* Ref.make(0)
        const sender = RecordSenderTag.of({
          sdkClient: unusedSdkClient(),
          putRecords: (_stream, entries) =>
            Effect.as(
              Ref.update(requests, (n) => n + 1),
              entries.map(() => accepted)
            )
        })
        const client = yield* makeClient(Layer.succeed(RecordSenderTag, sender))
        yield* Effect.forEach(["s1", "s2", "s3"], (stream) => client.record(record("x", stream)))
        // Flushes and close started together, in a different order each round.
        const flushes = Array.from({ length: 3 }, () => Effect.exit(client.flush()))
        const before = round % 4
        const exits = yield* Effect.all(
          [...flushes.slice(0, before), Effect.exit(client.close()), ...flushes.slice(before)],
          {
            concurrency: "unbounded"
          }
        )
        // Those called after close are refused; those before were served, and no record went twice.
        const outcomes: ReadonlyArray<Exit.Exit<unknown, unknown>> = exits
        for (const exit of outcomes.slice(before + 1)) {
          expect(Exit.isFailure(exit) && Cause.squash(exit.cause)).toBeInstanceOf(ClientClosedException)
        }
        for (const exit of outcomes.slice(0, before)) expect(Exit.isSuccess(exit)).toBe(true)
        expect(yield* Ref.get(requests)).toBe(before === 0 ? 0 : 3)
      }
    })
  )

  it.scoped("a close whose release fails still finishes, and every later close returns", () =>
    Effect.gen(function* () {
      const failingSender = Layer.scoped(
        RecordSenderTag,
        Effect.acquireRelease(
          Effect.map(makeSender(), (made) => made.sender),
          () => Effect.die(new Error("boom"))
        )
      )
      const client = yield* makeClient(failingSender)
      yield* Effect.exit(client.close())
      expect(yield* client.isClosed).toBe(true)
      // Would wait forever (and the test time out) if the first close had not finished.
      yield* client.close()
      yield* client.close()
    })
  )

  it.scoped("closing the layer's scope closes the client and releases the cache file", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(KinesisClient.layer(configFor(dir)), scope)
      const client = Context.get(context, KinesisClient.KinesisClient)
      yield* client.record(record("kept"))
      yield* Scope.close(scope, Exit.void)

      expect(yield* client.isClosed).toBe(true)
      expect(yield* Effect.flip(client.record(record("late")))).toBeInstanceOf(ClientClosedException)
      // The file is free again, and the record committed before close is still in it.
      const reopened = yield* KinesisClient.make(configFor(dir))
      expect(yield* reopened.clearCache()).toEqual({ recordsCleared: 1 })
    })
  )
})

describe("KinesisClient: close with a final flush", () => {
  /** A cache file in a fresh temp directory holding one record in each of `streams`. */
  const cacheWith = (streams: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const filename = path.join(yield* tempDir, "cache.db")
      const seeded = yield* makeClient(Layer.succeed(RecordSenderTag, (yield* makeSender()).sender), { filename })
      yield* Effect.forEach(streams, (stream) => seeded.record(record(`on-${stream}`, stream)))
      yield* seeded.close()
      return filename
    })

  it.scoped("against a slow server: returns by the time limit plus one request, and leaves the rest cached", () =>
    Effect.gen(function* () {
      const filename = yield* cacheWith(["s0", "s1", "s2", "s3", "s4"])
      // Each request takes a second on the Clock; the streams go one at a time.
      const started = yield* Queue.unbounded<string>()
      const slow = yield* makeScriptedSender(
        respondAfter((call) => Effect.zipRight(Queue.offer(started, `s${call}`), Effect.sleep("1 second")))
      )
      const client = yield* makeClient(slow.layer, { filename, streamConcurrency: 1 })
      const start = yield* Clock.currentTimeMillis

      const closing = yield* Effect.fork(client.close({ flushTimeout: "2500 millis" }))
      expect(yield* Queue.take(started)).toBe("s0")
      // From the moment close starts, every call is refused; a second close waits for the first.
      expect(yield* Effect.flip(client.record(record("late")))).toBeInstanceOf(ClientClosedException)
      expect(yield* Effect.flip(client.flush())).toBeInstanceOf(ClientClosedException)
      const second = yield* Effect.fork(client.close())
      yield* TestClock.adjust("1 second")
      expect(yield* Queue.take(started)).toBe("s1")
      yield* TestClock.adjust("1 second")
      expect(yield* Queue.take(started)).toBe("s2")
      // The time limit passes while s2 is in flight: it finishes, and nothing starts after it.
      yield* TestClock.adjust("500 millis")
      expect(Option.isNone(yield* Fiber.poll(closing))).toBe(true)
      expect(Option.isNone(yield* Fiber.poll(second))).toBe(true)
      yield* TestClock.adjust("500 millis")
      yield* Fiber.join(closing)
      yield* Fiber.join(second)

      expect((yield* Clock.currentTimeMillis) - start).toBe(3000)
      expect(sentTexts(yield* slow.calls)).toEqual(["on-s0", "on-s1", "on-s2"])
      expect(yield* Queue.size(started)).toBe(0)
      const next = yield* makeSender()
      const reopened = yield* makeClient(next.layer, { filename })
      expect(yield* reopened.flush()).toEqual(flushData({ recordsFlushed: 2 }))
      expect(sentTexts(yield* next.calls)).toEqual(["on-s3", "on-s4"])
    })
  )

  /** Sizes of the batches sent, by stream. */
  const batchSizes = (batches: ReadonlyArray<SentBatch>) => {
    const sizes: Record<string, ReadonlyArray<number>> = {}
    for (const batch of batches) sizes[batch.stream] = [...(sizes[batch.stream] ?? []), batch.entries.length]
    return sizes
  }

  /** Refuses the first record of stream "big"'s first request (throttled), and accepts everything else. */
  const throttledOnceInFirstRequest = (): Responder => {
    let first = true
    return (stream, entries, call) => {
      if (stream !== "big" || !first) return acceptAll(stream, entries, call)
      first = false
      return Effect.succeed(entries.map((_, i) => (i === 0 ? rejected() : accepted)))
    }
  }

  for (const [label, respond, sizes, left] of [
    ["returns once the cache is empty", acceptAll, { big: [500, 500, 100], other: [1] }, 0],
    [
      "goes on after a flush that left a record failed, while a flush delivers",
      throttledOnceInFirstRequest(),
      { big: [500, 500, 101], other: [1] },
      0
    ],
    [
      "stops after a flush that delivered nothing",
      byStream({ other: rejectWhere(() => true) }),
      { big: [500, 500, 100], other: [1, 1] },
      1
    ]
  ] as const) {
    it.scopedLive(`sends each stream's batches until it is empty, drain or not; ${label}`, () =>
      Effect.gen(function* () {
        const filename = path.join(yield* tempDir, "cache.db")
        const sender = yield* makeScriptedSender(respond)
        const client = yield* makeClient(sender.layer, { filename, cacheMaxBytes: 10 * 1024 * 1024 })
        const texts = Array.from({ length: 1100 }, (_, i) => `r${i}`)
        yield* Effect.forEach(texts, (text) => client.record(record(text, "big")))
        yield* client.record(record("small", "other"))

        yield* client.close({ flushTimeout: "1 hour" }).pipe(
          Effect.timeoutFail({
            duration: "20 seconds",
            onTimeout: () => new Error("close waited for its time limit")
          })
        )

        expect(batchSizes(yield* sender.calls)).toEqual(sizes)
        const reopened = yield* reopen(filename)
        expect(yield* reopened.clearCache()).toEqual({ recordsCleared: left })
      })
    )
  }

  it.scopedLive("stops at the first flush that gets no response, and leaves what it did not deliver", () =>
    Effect.gen(function* () {
      const filename = yield* cacheWith(["a", "b", "c"])
      const silent = yield* makeScriptedSender(
        byStream({ b: () => Effect.fail(connectionRefused()), c: () => Effect.fail(connectionRefused()) })
      )
      // One stream at a time: with streams in parallel, c's request could be in flight already.
      const client = yield* makeClient(silent.layer, { filename, streamConcurrency: 1 })

      yield* client
        .close({ flushTimeout: "1 hour" })
        .pipe(
          Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("close went on after no response") })
        )

      expect((yield* silent.calls).map((batch) => batch.stream)).toEqual(["a", "b"])
      const reopened = yield* reopen(filename)
      expect(yield* reopened.clearCache()).toEqual({ recordsCleared: 2 })
    })
  )

  const withoutFinalFlush: ReadonlyArray<readonly [string, KinesisClient.CloseOptions | undefined, boolean]> = [
    ["close()", undefined, false],
    ["close({})", {}, false],
    ["close({ flushTimeout: 0 })", { flushTimeout: 0 }, true],
    ['close({ flushTimeout: "-1 seconds" })', { flushTimeout: "-1 seconds" as Duration.DurationInput }, true]
  ]
  for (const [label, options, warns] of withoutFinalFlush) {
    it.scoped(`${label} sends nothing and leaves the cache as it was${warns ? ", with a warning" : ""}`, () =>
      Effect.gen(function* () {
        const filename = yield* cacheWith(["a", "b"])
        const sender = yield* makeSender()
        const client = yield* makeClient(sender.layer, { filename })
        const logs = yield* captureLogs

        yield* client.close(options).pipe(Effect.provide(logs.layer))

        expect(yield* client.isClosed).toBe(true)
        expect(yield* sender.calls).toEqual([])
        const warnings = (yield* logs.lines).filter((line) => line.level === "WARN")
        expect(warnings.map((line) => line.message)).toEqual(
          warns
            ? [expect.stringMatching(/flushTimeout must be a duration longer than zero.*without a final flush/)]
            : []
        )
        const reopened = yield* reopen(filename)
        expect(yield* reopened.clearCache()).toEqual({ recordsCleared: 2 })
      })
    )
  }
})

describe("KinesisClient: one owner per cache file", () => {
  it.scopedLive("a second client on the same storagePath and region fails fast; another region works", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const ownerScope = yield* Scope.make()
      const owner = yield* KinesisClient.make(configFor(dir)).pipe(Scope.extend(ownerScope))
      yield* owner.record(record("owned"))

      const attempt = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
        Effect.gen(function* () {
          const start = yield* Clock.currentTimeMillis
          const exit = yield* Effect.exit(Effect.scoped(effect))
          return { exit, elapsed: (yield* Clock.currentTimeMillis) - start }
        })

      const viaMake = yield* attempt(KinesisClient.make(configFor(dir)))
      expect(viaMake.elapsed).toBeLessThan(1000)
      expect(failureOf(viaMake.exit)).toBeInstanceOf(KinesisStorageException)

      const viaLayer = yield* attempt(Layer.build(KinesisClient.layer(configFor(dir))))
      expect(viaLayer.elapsed).toBeLessThan(1000)
      expect(failureOf(viaLayer.exit)).toBeInstanceOf(KinesisStorageException)

      // The owner is unharmed by the failed attempts.
      yield* owner.record(record("still-owned"))

      // Another region in the same directory is another file.
      const other = yield* KinesisClient.make(configFor(dir, "eu-west-1"))
      yield* other.record(record("other-region"))
      expect(yield* other.clearCache()).toEqual({ recordsCleared: 1 })

      // Once the owner closes, the next client opens the file and finds its records.
      yield* Scope.close(ownerScope, Exit.void)
      const successor = yield* KinesisClient.make(configFor(dir))
      expect(yield* successor.clearCache()).toEqual({ recordsCleared: 2 })
    })
  )

  it.scopedLive("a client that reopens an existing cache file owns it as well", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      // The first client creates the file and leaves a record in it.
      yield* Effect.scoped(
        Effect.flatMap(KinesisClient.make(configFor(dir)), (first) => first.record(record("from-first")))
      )
      // The second one opens the existing file and writes nothing while opening.
      const owner = yield* KinesisClient.make(configFor(dir))
      const start = yield* Clock.currentTimeMillis
      const third = yield* Effect.exit(Effect.scoped(KinesisClient.make(configFor(dir))))
      expect((yield* Clock.currentTimeMillis) - start).toBeLessThan(1000)
      expect(failureOf(third)).toBeInstanceOf(KinesisStorageException)
      // And the owner goes on working.
      yield* owner.record(record("from-owner"))
      expect(yield* owner.clearCache()).toEqual({ recordsCleared: 2 })
    })
  )
})

describe("KinesisClient.layerConfig", () => {
  it.scoped("reads region and storagePath from Effect Config and opens the cache there", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const layer = KinesisClient.layerConfig({
        region: Config.string("AWS_REGION"),
        storagePath: Config.string("CACHE_DIR"),
        options: Config.succeed({ flushStrategy: FlushNone() })
      })
      const provider = ConfigProvider.fromMap(
        new Map([
          ["AWS_REGION", "eu-west-1"],
          ["CACHE_DIR", dir]
        ])
      )
      const client = yield* Layer.build(layer).pipe(
        Effect.map(Context.get(KinesisClient.KinesisClient)),
        Effect.withConfigProvider(provider)
      )
      yield* client.record(record("from-config"))
      expect(fs.existsSync(path.join(dir, "kinesis-records-eu-west-1.db"))).toBe(true)
    })
  )

  it.effect("fails with a ConfigError when a setting is missing, and opens nothing", () =>
    Effect.gen(function* () {
      const layer = KinesisClient.layerConfig({ region: Config.string("AWS_REGION") })
      const exit = yield* Effect.scoped(Layer.build(layer)).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
        Effect.exit
      )
      expect(Exit.isFailure(exit) && Option.map(Cause.failureOption(exit.cause), ConfigError.isConfigError)).toEqual(
        Option.some(true)
      )
    })
  )
})
