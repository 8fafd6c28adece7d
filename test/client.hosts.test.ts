/**
 * One client suite over both hosts of the engine, as a user sees the client: `KinesisClient.make`
 * on a configuration that crosses (`http: { version: "1.1" }`), so the engine runs on a Worker
 * ("worker"), and the same configuration with `engine: "caller"` ("caller"). Real kinesalite on
 * 127.0.0.1, real SQLite in temporary directories, real clocks.
 *
 * Workers are observed by wrapping `node:worker_threads`'s `Worker` (a test-only spy): it shows
 * which host runs, and lets a test terminate the engine's thread.
 */
import * as http from "node:http"
import { createRequire, syncBuiltinESMExports } from "node:module"
import type { AddressInfo } from "node:net"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { fileURLToPath } from "node:url"
import type * as WorkerThreads from "node:worker_threads"
import { DescribeStreamSummaryCommand } from "@aws-sdk/client-kinesis"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import Sqlite from "better-sqlite3"
import {
  Chunk,
  Clock,
  Deferred,
  Effect,
  Either,
  Exit,
  Fiber,
  HashMap,
  Logger,
  Metric,
  Option,
  type Scope,
  Stream,
  Tracer
} from "effect"
import {
  ClientClosedException,
  KinesisLimitExceededException,
  KinesisStorageException,
  KinesisUnknownException,
  KinesisValidationException
} from "../src/Errors.js"
import { cacheFilename } from "../src/engine/cache/RecordStorage.js"
import * as FlushEngine from "../src/engine/flush/FlushEngine.js"
import { FlushInterval, FlushNone } from "../src/FlushStrategy.js"
import * as KinesisClient from "../src/KinesisClient.js"
import type { KinesisClientConfig } from "../src/KinesisClientConfig.js"
import { AmplifyKinesisClient } from "../src/Promise.js"
import type { RecordInput } from "../src/RecordInput.js"
import { type LocalKinesisServer, startLocalKinesis } from "../src/testing.js"
import { runFixture } from "./support/fixtureProcess.js"
import { scopedTempDir, tempDirs } from "./support/tempDir.js"

// ---- the Worker spy ---------------------------------------------------------------------------

const require = createRequire(import.meta.url)
const workerThreads = require("node:worker_threads") as typeof WorkerThreads
const OriginalWorker = workerThreads.Worker
/** Every Worker started since the spy was installed, in order. */
const workersStarted: Array<WorkerThreads.Worker> = []

class SpyWorker extends OriginalWorker {
  constructor(...args: ConstructorParameters<typeof OriginalWorker>) {
    super(...args)
    workersStarted.push(this)
  }
}

// ---- kinesalite -------------------------------------------------------------------------------

let local: LocalKinesisServer
const processDirs = tempDirs("effect-kinesis-hosts-process-")

beforeAll(async () => {
  workerThreads.Worker = SpyWorker
  syncBuiltinESMExports()
  local = await startLocalKinesis()
})

afterAll(async () => {
  workerThreads.Worker = OriginalWorker
  syncBuiltinESMExports()
  await local?.dispose()
  processDirs.removeAll()
})

// ---- helpers ----------------------------------------------------------------------------------

interface Host {
  readonly name: "worker" | "caller"
  /** What the host adds to the configuration. */
  readonly engine: Partial<KinesisClientConfig>
}

const hosts: ReadonlyArray<Host> = [
  { name: "worker", engine: {} },
  { name: "caller", engine: { engine: "caller" } }
]

const encoder = new TextEncoder()
const decoder = new TextDecoder()

let streamCount = 0
/** A fresh stream name for one test (the metric registry and kinesalite are shared by the file). */
const freshName = (host: Host, what: string) => `${host.name}-${what}-${++streamCount}`

/** Creates a fresh stream on kinesalite and returns its name. */
const newStream = (host: Host, what: string) =>
  Effect.gen(function* () {
    const name = freshName(host, what)
    yield* Effect.promise(() => local.createStream(name))
    return name
  })

const input = (text: string, streamName: string): RecordInput => ({
  data: encoder.encode(text),
  partitionKey: `key-${text}`,
  streamName
})

/** The texts a stream holds, in the order kinesalite gives them back (one shard: arrival order). */
const texts = (stream: string) =>
  Effect.promise(() => local.readStream(stream)).pipe(
    Effect.map((records) => records.map((record) => decoder.decode(record.data)))
  )

/** The configuration of a client of `host`, manual flushes only unless `options` say otherwise. */
const configOf = (host: Host, storagePath: string, extra: Partial<KinesisClientConfig> = {}): KinesisClientConfig => ({
  ...local.config,
  ...host.engine,
  storagePath,
  ...extra,
  options: { flushStrategy: FlushNone(), ...extra.options }
})

/** A client of `host` on a fresh cache directory (or `storagePath`), closed with the scope. */
const makeClient = (
  host: Host,
  extra: Partial<KinesisClientConfig> = {},
  storagePath?: string
): Effect.Effect<KinesisClient.KinesisClient, never, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = storagePath ?? (yield* scopedTempDir("effect-kinesis-hosts-"))
    return yield* Effect.orDie(KinesisClient.make(configOf(host, dir, extra)))
  })

/** `cause` as a user would print it: an Error's name and message, or the description that crossed. */
const describeCause = (cause: unknown): string =>
  cause instanceof Error ? `${cause.name}: ${cause.message}` : typeof cause === "string" ? cause : String(cause)

interface LogLine {
  readonly level: string
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
}

/** A logger in place of the default one; what it receives is kept in `lines`. */
const collectLogs = () => {
  const lines: Array<LogLine> = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    lines.push({
      level: logLevel.label,
      message: (Array.isArray(message) ? message : [message]).map(String).join(" "),
      annotations: Object.fromEntries(HashMap.toEntries(annotations))
    })
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

interface SpanRecord {
  readonly name: string
  readonly spanId: string
  readonly parentId: string | undefined
  readonly start: bigint
  readonly end: bigint
}

/** A tracer that keeps every span that ends (Effect's own spans underneath); `onEnd` hears each. */
const collectSpans = (onEnd: (span: SpanRecord) => void = () => {}) => {
  const native = Effect.runSync(Effect.tracer)
  const ended: Array<SpanRecord> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      const span = native.span(name, parent, context, links, startTime, kind, options)
      const end = span.end.bind(span)
      span.end = (endTime, exit) => {
        end(endTime, exit)
        const parentSpan = Option.getOrUndefined(parent)
        const record: SpanRecord = {
          name,
          spanId: span.spanId,
          parentId: parentSpan?.spanId,
          start: startTime,
          end: endTime
        }
        ended.push(record)
        onEnd(record)
      }
      return span
    },
    context: (f) => f()
  })
  return { ended, tracer }
}

/** The difference the clocks of two threads may show for one instant: each reads its origin from `Date.now()` (ms). */
const clockSlack = 2_000_000n

// ---- the suite --------------------------------------------------------------------------------

describe.each(hosts)("client on the $name host", (host) => {
  it.scopedLive("runs its engine where the host says", () =>
    Effect.gen(function* () {
      const before = workersStarted.length
      yield* makeClient(host)
      expect(workersStarted.length - before).toBe(host.name === "worker" ? 1 : 0)
    })
  )

  describe("records and delivery", () => {
    it.scopedLive("record, then flush, delivers the record to kinesalite", () =>
      Effect.gen(function* () {
        const stream = yield* newStream(host, "deliver")
        const client = yield* makeClient(host)
        expect(yield* client.record(input("a", stream))).toEqual({})
        const flushed = yield* client.flush()
        expect(flushed).toEqual({
          recordsFlushed: 1,
          recordsFailed: 0,
          recordsDropped: 0,
          recordsRemaining: 0,
          flushInProgress: false
        })
        expect(yield* texts(stream)).toEqual(["a"])
      })
    )

    it.scopedLive(
      "recordAll gives one outcome per input, in order; an invalid and an oversized record fail alone",
      () =>
        Effect.gen(function* () {
          const stream = yield* newStream(host, "all")
          const client = yield* makeClient(host, { options: { cacheMaxBytes: 1000 } })
          const outcomes = yield* client.recordAll([
            input("first", stream),
            input("bad-stream", "not a stream name"),
            { data: new Uint8Array(2000), partitionKey: "big", streamName: stream },
            input("second", stream)
          ])
          expect(outcomes.map((outcome) => (Either.isRight(outcome) ? "ok" : outcome.left._tag))).toEqual([
            "ok",
            "KinesisValidationException",
            "KinesisLimitExceededException",
            "ok"
          ])
          const invalid = Either.getLeft(outcomes[1]!).pipe(Option.getOrThrow)
          expect(invalid).toBeInstanceOf(KinesisValidationException)
          expect(invalid.message).toMatch(/stream/i)
          const overLimit = Either.getLeft(outcomes[2]!).pipe(Option.getOrThrow)
          expect(overLimit).toBeInstanceOf(KinesisLimitExceededException)
          expect(overLimit.message).toMatch(/2003 bytes/)
          expect(overLimit.recoverySuggestion).toMatch(/cacheMaxBytes/)

          expect(yield* client.cacheStatus()).toMatchObject({ records: 2 })
          expect(yield* client.flush()).toMatchObject({ recordsFlushed: 2, recordsRemaining: 0 })
          expect(yield* texts(stream)).toEqual(["first", "second"])
        })
    )

    it.scopedLive("sink stores every record of a stream, pulling each chunk once the ones before are stored", () =>
      Effect.gen(function* () {
        const stream = yield* newStream(host, "sink")
        const client = yield* makeClient(host)
        // What the cache holds each time the sink pulls a chunk: with backpressure, every chunk before it.
        const seen: Array<number> = []
        yield* Stream.range(1, 50).pipe(
          Stream.rechunk(10),
          Stream.mapChunksEffect((chunk) =>
            Effect.map(client.cacheStatus(), (status) => {
              seen.push(status.records)
              return Chunk.map(chunk, (n) => input(`r${n}`, stream))
            })
          ),
          Stream.run(client.sink)
        )
        expect(seen).toEqual([0, 10, 20, 30, 40])
        expect(yield* client.cacheStatus()).toMatchObject({ records: 50 })
        expect(yield* client.flush()).toMatchObject({ recordsFlushed: 50 })
        expect(yield* texts(stream)).toEqual(Array.from({ length: 50 }, (_, i) => `r${i + 1}`))
      })
    )

    it.scopedLive("sink fails with the first refused record; the records before it are stored", () =>
      Effect.gen(function* () {
        const stream = yield* newStream(host, "sinkfail")
        const client = yield* makeClient(host)
        const pulled: Array<number> = []
        const refused = yield* Stream.range(1, 30).pipe(
          Stream.rechunk(10),
          Stream.mapChunks((chunk) => {
            pulled.push(...chunk)
            return Chunk.map(chunk, (n) => (n === 15 ? input(`r${n}`, "bad stream") : input(`r${n}`, stream)))
          }),
          Stream.run(client.sink),
          Effect.flip
        )
        expect(refused).toBeInstanceOf(KinesisValidationException)
        // The chunk after the refused one is never pulled; the refused record's chunk is settled.
        expect(Math.max(...pulled)).toBeLessThanOrEqual(20)
        expect(yield* client.cacheStatus()).toMatchObject({ records: 19 })
      })
    )
  })

  describe("ordering", () => {
    it.scopedLive("record(a) and clearCache() started in the same tick: a is cleared", () =>
      Effect.gen(function* () {
        const stream = freshName(host, "clear")
        const client = yield* makeClient(host)
        const [recorded, cleared] = yield* Effect.all([client.record(input("a", stream)), client.clearCache()], {
          concurrency: "unbounded"
        })
        expect(recorded).toEqual({})
        expect(cleared).toEqual({ recordsCleared: 1 })
        expect(yield* client.cacheStatus()).toEqual({ records: 0, bytes: 0, oldestRecordAgeMs: undefined })
      })
    )

    it.scopedLive("record(a); flush() in one tick delivers a", () =>
      Effect.gen(function* () {
        const stream = yield* newStream(host, "recflush")
        const client = yield* makeClient(host)
        const [, flushed] = yield* Effect.all([client.record(input("a", stream)), client.flush()], {
          concurrency: "unbounded"
        })
        expect(flushed).toMatchObject({ recordsFlushed: 1, recordsRemaining: 0, flushInProgress: false })
        expect(yield* texts(stream)).toEqual(["a"])
      })
    )

    it.scopedLive("record after close begins fails with ClientClosedException", () =>
      Effect.gen(function* () {
        const stream = freshName(host, "closed")
        const client = yield* makeClient(host)
        const [, recorded] = yield* Effect.all([client.close(), Effect.either(client.record(input("a", stream)))], {
          concurrency: "unbounded"
        })
        expect(Either.getLeft(recorded).pipe(Option.getOrThrow)).toBeInstanceOf(ClientClosedException)
        const flushed = yield* Effect.either(client.flush())
        expect(Either.getLeft(flushed).pipe(Option.getOrThrow)).toBeInstanceOf(ClientClosedException)
      })
    )

    it.scopedLive("record(a) and close() started in the same tick: a is stored, and the next client sees it", () =>
      Effect.gen(function* () {
        const dir = yield* scopedTempDir("effect-kinesis-hosts-")
        const stream = freshName(host, "recclose")
        const client = yield* Effect.orDie(KinesisClient.make(configOf(host, dir)))
        const [recorded] = yield* Effect.all([Effect.either(client.record(input("a", stream))), client.close()], {
          concurrency: "unbounded"
        })
        expect(recorded).toEqual(Either.right({}))
        const next = yield* makeClient(host, {}, dir)
        expect(yield* next.cacheStatus()).toMatchObject({ records: 1 })
      })
    )

    it.scopedLive("flush() and close() started in the same tick: the flush runs to its end and delivers", () =>
      Effect.gen(function* () {
        const stream = yield* newStream(host, "flushclose")
        const client = yield* makeClient(host)
        yield* client.record(input("a", stream))
        const [flushed] = yield* Effect.all([Effect.either(client.flush()), client.close()], {
          concurrency: "unbounded"
        })
        expect(flushed).toEqual(
          Either.right({
            recordsFlushed: 1,
            recordsFailed: 0,
            recordsDropped: 0,
            recordsRemaining: 0,
            flushInProgress: false
          })
        )
        expect(yield* texts(stream)).toEqual(["a"])
        const status = yield* Effect.either(client.cacheStatus())
        expect(Either.getLeft(status).pipe(Option.getOrThrow)).toBeInstanceOf(ClientClosedException)
      })
    )

    it.scopedLive("close with flushTimeout delivers what is cached before the engine stops", () =>
      Effect.gen(function* () {
        const stream = yield* newStream(host, "finalflush")
        const client = yield* makeClient(host)
        yield* client.recordAll([input("a", stream), input("b", stream)])
        yield* client.close({ flushTimeout: "2 seconds" })
        expect(yield* texts(stream)).toEqual(["a", "b"])
      })
    )

    it.scopedLive("disabled, a record is dropped; enabled again, it is stored", () =>
      Effect.gen(function* () {
        const client = yield* makeClient(host)
        const stream = freshName(host, "toggle")
        yield* client.disable()
        expect(yield* client.isEnabled).toBe(false)
        expect(yield* client.record(input("dropped", stream))).toEqual({})
        expect(yield* client.cacheStatus()).toMatchObject({ records: 0 })
        yield* client.enable()
        yield* client.record(input("kept", stream))
        expect(yield* client.cacheStatus()).toMatchObject({ records: 1 })
      })
    )

    it.live("facade: record(a) and clearCache() without await in between: a is cleared", () =>
      Effect.gen(function* () {
        const dir = yield* scopedTempDir("effect-kinesis-hosts-")
        const client = yield* Effect.promise(() => AmplifyKinesisClient.create(configOf(host, dir)))
        yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
        const stream = freshName(host, "fclear")
        const [recorded, cleared] = yield* Effect.promise(() =>
          Promise.all([client.record(input("a", stream)), client.clearCache()])
        )
        expect(recorded).toEqual({ _tag: "Ok", value: {} })
        expect(cleared).toEqual({ _tag: "Ok", value: { recordsCleared: 1 } })
        expect(yield* Effect.promise(() => client.cacheStatus())).toMatchObject({ _tag: "Ok", value: { records: 0 } })
      }).pipe(Effect.scoped)
    )

    it.live("facade: record right after close() is called fails with ClientClosedException", () =>
      Effect.gen(function* () {
        const dir = yield* scopedTempDir("effect-kinesis-hosts-")
        const client = yield* Effect.promise(() => AmplifyKinesisClient.create(configOf(host, dir)))
        const stream = freshName(host, "fclosed")
        const [, recorded] = yield* Effect.promise(() =>
          Promise.all([client.close(), client.record(input("a", stream))])
        )
        expect(recorded._tag).toBe("Error")
        expect(recorded._tag === "Error" ? recorded.error : undefined).toBeInstanceOf(ClientClosedException)
      }).pipe(Effect.scoped)
    )
  })

  describe("errors across the thread", () => {
    it.scopedLive("a second client on the same storagePath fails with KinesisStorageException, inUse", () =>
      Effect.gen(function* () {
        const dir = yield* scopedTempDir("effect-kinesis-hosts-")
        yield* makeClient(host, {}, dir)
        const error = yield* Effect.flip(KinesisClient.make(configOf(host, dir)))
        expect(error).toBeInstanceOf(KinesisStorageException)
        expect(error._tag).toBe("KinesisStorageException")
        expect((error as KinesisStorageException).inUse).toBe(true)
        expect(error.message).toMatch(/in use by another client/)
        expect(error.recoverySuggestion).toMatch(/Close the other client/)
        expect(describeCause(error.cause)).toMatch(/locked|busy/i)
      })
    )

    // A race: two clients opening one file at once. Each round is a fresh directory; a few rounds
    // make a lost race likely to show (it did in about half the runs of one round on this machine).
    it.scopedLive("two clients opened at once on one storagePath: one opens, the other fails with inUse", () =>
      Effect.gen(function* () {
        for (let round = 0; round < 2; round++) {
          yield* Effect.scoped(
            Effect.gen(function* () {
              const dir = yield* scopedTempDir("effect-kinesis-hosts-")
              const outcomes = yield* Effect.all(
                [
                  Effect.either(KinesisClient.make(configOf(host, dir))),
                  Effect.either(KinesisClient.make(configOf(host, dir)))
                ],
                { concurrency: "unbounded" }
              )
              const seen = outcomes
                .map((outcome) =>
                  Either.isRight(outcome)
                    ? "opened"
                    : `${outcome.left._tag} inUse=${String((outcome.left as KinesisStorageException).inUse)}: ${outcome.left.message} (${describeCause(outcome.left.cause)})`
                )
                .join("\n")
              expect(outcomes.filter(Either.isRight), seen).toHaveLength(1)
              const [refused] = outcomes.filter(Either.isLeft).map((outcome) => outcome.left)
              expect(refused, seen).toBeInstanceOf(KinesisStorageException)
              expect((refused as KinesisStorageException).inUse, seen).toBe(true)
              expect(refused!.message).toMatch(/in use by another client/)
              expect(refused!.recoverySuggestion).toMatch(/Close the other client/)
              expect(describeCause(refused!.cause)).toMatch(/locked|busy/i)
            })
          )
        }
      })
    )

    it.scopedLive(
      "a flush to a stopped kinesalite fails with KinesisUnknownException; the record stays for the next",
      () =>
        Effect.gen(function* () {
          const stream = yield* newStream(host, "down")
          const client = yield* makeClient(host)
          yield* client.record(input("a", stream))
          yield* Effect.promise(() => local.stop())
          const error = yield* Effect.flip(client.flush()).pipe(Effect.ensuring(Effect.promise(() => local.start())))
          expect(error).toBeInstanceOf(KinesisUnknownException)
          expect(error._tag).toBe("KinesisUnknownException")
          expect(error.message).not.toBe("")
          expect(error.recoverySuggestion).toMatch(/network/)
          expect(describeCause(error.cause)).toMatch(/ECONNREFUSED/)
          expect(yield* client.flush()).toMatchObject({ recordsFlushed: 1, recordsFailed: 0 })
          expect(yield* texts(stream)).toEqual(["a"])
        })
    )

    it.scopedLive(
      "a flush that gets no response while close begins answers KinesisUnknownException; close returns",
      () =>
        Effect.gen(function* () {
          const stream = yield* newStream(host, "closing")
          const client = yield* makeClient(host)
          yield* client.record(input("a", stream))
          yield* Effect.promise(() => local.stop())
          const [flushed] = yield* Effect.all([Effect.either(client.flush()), client.close()], {
            concurrency: "unbounded"
          }).pipe(Effect.ensuring(Effect.promise(() => local.start())))
          expect(Either.isLeft(flushed) && flushed.left).toBeInstanceOf(KinesisUnknownException)
          expect(yield* client.isClosed).toBe(true)
        })
    )
  })

  describe("observability crosses back", () => {
    it.scopedLive("a flush's warning reaches the caller's logger with its level and stream annotation", () => {
      const logs = collectLogs()
      return Effect.gen(function* () {
        const stream = freshName(host, "missing")
        const client = yield* makeClient(host)
        yield* client.record(input("a", stream))
        const failed = Metric.tagged(FlushEngine.failedAttempts, "stream", stream)
        expect(yield* client.flush()).toMatchObject({ recordsFlushed: 0, recordsFailed: 1 })
        expect((yield* Metric.value(failed)).count).toBe(1)
        const line = logs.lines.find((l) => l.message.includes("PutRecords failed: ResourceNotFoundException"))
        expect(line).toMatchObject({ level: "WARN", annotations: { stream } })
      }).pipe(Effect.provide(logs.layer))
    })

    it.scopedLive("recordsDelivered, tagged with the stream, increases in the caller's registry", () =>
      Effect.gen(function* () {
        const stream = yield* newStream(host, "metric")
        const delivered = Metric.tagged(FlushEngine.recordsDelivered, "stream", stream)
        const before = (yield* Metric.value(delivered)).count
        const client = yield* makeClient(host)
        yield* client.recordAll([input("a", stream), input("b", stream), input("c", stream)])
        expect(yield* client.flush()).toMatchObject({ recordsFlushed: 3 })
        expect((yield* Metric.value(delivered)).count - before).toBe(3)
      })
    )

    it.scopedLive(
      "KinesisClient.flush has children FlushEngine.flush and FlushEngine.putRecords, with real times",
      () => {
        const spans = collectSpans()
        return Effect.gen(function* () {
          const stream = yield* newStream(host, "spans")
          const client = yield* makeClient(host)
          yield* client.record(input("a", stream))
          const before = yield* Clock.currentTimeNanos
          yield* client.flush()
          const after = yield* Clock.currentTimeNanos

          const call = spans.ended.filter((span) => span.name === "KinesisClient.flush")
          expect(call).toHaveLength(1)
          const flush = spans.ended.filter((span) => span.name === "FlushEngine.flush")
          expect(flush).toHaveLength(1)
          const put = spans.ended.filter((span) => span.name === "FlushEngine.putRecords")
          expect(put).toHaveLength(1)
          expect(flush[0]!.parentId).toBe(call[0]!.spanId)
          expect(put[0]!.parentId).toBe(flush[0]!.spanId)

          // The caller's span, on the caller's clock, within the call.
          expect(call[0]!.start).toBeGreaterThanOrEqual(before)
          expect(call[0]!.end).toBeLessThanOrEqual(after)
          // The engine's spans, on the engine's clock, within the caller's span (up to the clocks' slack).
          expect(flush[0]!.start).toBeGreaterThanOrEqual(call[0]!.start - clockSlack)
          expect(flush[0]!.end).toBeLessThanOrEqual(call[0]!.end + clockSlack)
          expect(put[0]!.start).toBeGreaterThanOrEqual(flush[0]!.start)
          expect(put[0]!.end).toBeLessThanOrEqual(flush[0]!.end)
          // Real times, not the moment of the replay: the request took time, and the flush span took longer.
          expect(put[0]!.end).toBeGreaterThan(put[0]!.start)
          expect(flush[0]!.end - flush[0]!.start).toBeGreaterThan(put[0]!.end - put[0]!.start)
        }).pipe(Effect.withTracer(spans.tracer))
      }
    )

    it.scopedLive("an automatic flush appears as a root span, with its putRecords child", () =>
      Effect.gen(function* () {
        const rootFlush = yield* Deferred.make<SpanRecord>()
        const spans = collectSpans((span) => {
          if (span.name !== "FlushEngine.flush" || span.parentId !== undefined) return
          const sent = spans.ended.some((s) => s.name === "FlushEngine.putRecords" && s.parentId === span.spanId)
          if (sent) Deferred.unsafeDone(rootFlush, Exit.succeed(span))
        })
        yield* Effect.gen(function* () {
          const stream = yield* newStream(host, "auto")
          const client = yield* makeClient(host, {
            options: { flushStrategy: FlushInterval({ interval: "100 millis" }) }
          })
          yield* client.record(input("a", stream))
          const root = yield* Deferred.await(rootFlush)
          expect(root.parentId).toBeUndefined()
          expect(spans.ended.some((span) => span.name === "KinesisClient.flush")).toBe(false)
          expect(yield* texts(stream)).toEqual(["a"])
        }).pipe(Effect.withTracer(spans.tracer))
      })
    )
  })

  it.scopedLive("a credentialsProvider function is asked on the caller's thread, and records are delivered", () =>
    Effect.gen(function* () {
      const stream = yield* newStream(host, "creds")
      const askedOn: Array<number> = []
      const credentialsProvider = async () => {
        askedOn.push(workerThreads.threadId)
        return { accessKeyId: "AKIDASKED", secretAccessKey: "asked-secret" }
      }
      const before = workersStarted.length
      const client = yield* makeClient(host, { credentialsProvider })
      // A provider function does not keep the engine off its worker.
      expect(workersStarted.length - before).toBe(host.name === "worker" ? 1 : 0)
      yield* client.record(input("a", stream))
      expect(yield* client.flush()).toMatchObject({ recordsFlushed: 1 })
      expect(yield* texts(stream)).toEqual(["a"])
      expect(askedOn.length).toBeGreaterThanOrEqual(1)
      expect(new Set(askedOn)).toEqual(new Set([workerThreads.threadId]))
    })
  )

  it.scopedLive("a credentialsProvider that fails: the flush fails with KinesisUnknownException naming why", () =>
    Effect.gen(function* () {
      const stream = yield* newStream(host, "nocreds")
      const credentialsProvider = () => Promise.reject(new Error("no token in the vault"))
      const client = yield* makeClient(host, { credentialsProvider })
      yield* client.record(input("a", stream))
      const error = yield* Effect.flip(client.flush())
      expect(error).toBeInstanceOf(KinesisUnknownException)
      expect(`${error.message} ${describeCause(error.cause)}`).toMatch(/no token in the vault/)
      expect(yield* client.cacheStatus()).toMatchObject({ records: 1 })
    })
  )

  it.live("facade: writable() stores what is written and emits the first refusal as error", () =>
    Effect.gen(function* () {
      const dir = yield* scopedTempDir("effect-kinesis-hosts-")
      const stream = yield* newStream(host, "writable")
      const client = yield* Effect.promise(() => AmplifyKinesisClient.create(configOf(host, dir)))
      yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
      const good = Array.from({ length: 20 }, (_, i) => input(`w${i}`, stream))
      yield* Effect.promise(() => pipeline(Readable.from(good), client.writable({ highWaterMark: 8 })))
      expect(yield* Effect.promise(() => client.cacheStatus())).toMatchObject({ _tag: "Ok", value: { records: 20 } })

      const refused = yield* Effect.promise(() =>
        pipeline(
          Readable.from([input("x1", stream), input("x2", "bad stream"), input("x3", stream)]),
          client.writable()
        ).then(
          () => undefined,
          (error: unknown) => error
        )
      )
      expect(refused).toBeInstanceOf(KinesisValidationException)
      const status = yield* Effect.promise(() => client.cacheStatus())
      expect(status._tag === "Ok" ? status.value.records : -1).toBeGreaterThanOrEqual(21)
      expect(yield* Effect.promise(() => client.flush())).toMatchObject({ _tag: "Ok" })
      expect((yield* texts(stream)).slice(0, 21)).toEqual([...good.map((r) => decoder.decode(r.data)), "x1"])
    }).pipe(Effect.scoped)
  )

  describe("lifecycle", () => {
    it.scopedLive("close() returns, and a second client opens the same cache and sees its record", () =>
      Effect.gen(function* () {
        const dir = yield* scopedTempDir("effect-kinesis-hosts-")
        const stream = yield* newStream(host, "reopen")
        const first = yield* Effect.orDie(KinesisClient.make(configOf(host, dir)))
        yield* first.record(input("a", stream))
        yield* first.close()
        expect(yield* first.isClosed).toBe(true)
        const second = yield* makeClient(host, {}, dir)
        expect(yield* second.cacheStatus()).toMatchObject({ records: 1 })
        expect(yield* second.flush()).toMatchObject({ recordsFlushed: 1 })
        expect(yield* texts(stream)).toEqual(["a"])
      })
    )

    it("an idle facade client lets its process exit; the record waits in the cache", async () => {
      const storagePath = processDirs.make()
      const exit = await runFixture(fixture, [host.name, storagePath, local.endpoint], 15_000)
      expect(exit.signal).toBeNull()
      expect(exit.stderr).toBe("")
      expect(exit.code).toBe(0)
      expect(exit.stdout).toBe("recorded\n")
      const next = await AmplifyKinesisClient.create(configOf(host, storagePath))
      try {
        expect(await next.cacheStatus()).toMatchObject({ _tag: "Ok", value: { records: 1 } })
      } finally {
        await next.close()
      }
    })

    it("a facade client closed at the end of a program: close() returns and the process exits", async () => {
      const storagePath = processDirs.make()
      const exit = await runFixture(fixture, [host.name, storagePath, local.endpoint, "close"], 15_000)
      expect(exit.signal).toBeNull()
      expect(exit.stderr).toBe("")
      expect(exit.code).toBe(0)
      expect(exit.stdout).toBe("recorded\nclosed\n")
    })
  })

  describe("faults", () => {
    it.scopedLive("a cached row whose data is TEXT: the flush answers and delivers the good rows", () => {
      const logs = collectLogs()
      return Effect.gen(function* () {
        const dir = yield* scopedTempDir("effect-kinesis-hosts-")
        const stream = yield* newStream(host, "text")
        const first = yield* Effect.orDie(KinesisClient.make(configOf(host, dir)))
        yield* first.record(input("g1", stream))
        yield* first.close()
        const db = new Sqlite(cacheFilename(dir, local.config.region!))
        try {
          db.prepare(
            "INSERT INTO records (stream_name, partition_key, data, size, created_at) VALUES (?, ?, ?, ?, ?)"
          ).run(stream, "key-bad", "not bytes", 16, Date.now())
        } finally {
          db.close()
        }
        const client = yield* makeClient(host, {}, dir)
        yield* client.record(input("g2", stream))
        const flushed = yield* client
          .flush()
          .pipe(Effect.timeoutFail({ duration: "3 seconds", onTimeout: () => new Error("the flush did not answer") }))
        expect(flushed).toMatchObject({ recordsFlushed: 2, recordsRemaining: 0 })
        expect(yield* texts(stream)).toEqual(["g1", "g2"])
        expect(yield* client.cacheStatus()).toMatchObject({ records: 0, bytes: 0 })
        const warning = logs.lines.find((l) => l.message.includes("Set aside 1 unreadable"))
        expect(warning).toMatchObject({ level: "WARN", annotations: { stream, dropped: 1 } })
      }).pipe(Effect.provide(logs.layer))
    })

    it.scopedLive("20,000 concurrent cacheStatus() calls all succeed", () =>
      Effect.gen(function* () {
        const client = yield* makeClient(host)
        yield* client.record(input("a", freshName(host, "status")))
        const statuses = yield* Effect.all(
          Array.from({ length: 20_000 }, () => client.cacheStatus()),
          { concurrency: "unbounded" }
        )
        expect(statuses).toHaveLength(20_000)
        expect(statuses.every((status) => status.records === 1)).toBe(true)
      })
    )

    it.live("facade: 20,000 concurrent cacheStatus() calls all succeed", () =>
      Effect.gen(function* () {
        const dir = yield* scopedTempDir("effect-kinesis-hosts-")
        const client = yield* Effect.promise(() => AmplifyKinesisClient.create(configOf(host, dir)))
        yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
        const results = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 20_000 }, () => client.cacheStatus()))
        )
        expect(results.filter((result) => result._tag === "Ok")).toHaveLength(20_000)
      }).pipe(Effect.scoped)
    )
  })

  it.scopedLive("the kinesisClient escape hatch reaches kinesalite", () =>
    Effect.gen(function* () {
      const stream = yield* newStream(host, "hatch")
      const client = yield* makeClient(host)
      const summary = yield* Effect.promise(() =>
        client.kinesisClient.send(new DescribeStreamSummaryCommand({ StreamName: stream }))
      )
      expect(summary.StreamDescriptionSummary).toMatchObject({ StreamName: stream, StreamStatus: "ACTIVE" })
    })
  )
})

describe("worker host only", () => {
  const worker = hosts[0]!

  it.scopedLive(
    "the engine's thread dies while a flush waits: the flush fails, the next call starts a new engine",
    () =>
      Effect.gen(function* () {
        // A server that takes requests and never answers: the flush waits on it.
        const requested = yield* Deferred.make<void>()
        const server = yield* Effect.acquireRelease(
          Effect.async<http.Server>((resume) => {
            const silent = http.createServer(() => Deferred.unsafeDone(requested, Exit.void))
            silent.listen(0, "127.0.0.1", () => resume(Effect.succeed(silent)))
          }),
          (silent) =>
            Effect.async<void>((resume) => {
              silent.closeAllConnections()
              silent.close(() => resume(Effect.void))
            })
        )
        const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
        const before = workersStarted.length
        const client = yield* makeClient(worker, { kinesisClientConfig: { endpoint, maxAttempts: 1 } })
        expect(workersStarted.length - before).toBe(1)
        yield* client.record(input("a", "held"))
        const flush = yield* Effect.fork(Effect.flip(client.flush()))
        yield* Deferred.await(requested)
        yield* Effect.promise(() => workersStarted[before]!.terminate())
        const error = yield* Fiber.join(flush)
        expect(error).toBeInstanceOf(KinesisStorageException)
        expect(error.message).toMatch(/engine stopped/)
        expect(error.recoverySuggestion).toMatch(/new engine/)
        // The next call starts a new engine on the same cache: the record is still there.
        expect(yield* client.cacheStatus()).toMatchObject({ records: 1 })
        expect(workersStarted.length - before).toBe(2)
      })
  )
})

describe("worker host only, idle engine", () => {
  it.scopedLive("an uncaught error on the engine's thread: the call waiting fails once, the next call is stored", () =>
    Effect.gen(function* () {
      const dir = yield* scopedTempDir("effect-kinesis-hosts-")
      const stream = freshName(hosts[0]!, "crash")
      const before = workersStarted.length
      const client = yield* Effect.orDie(KinesisClient.make(configOf(hosts[0]!, dir)))
      yield* client.record(input("a", stream))
      const engine = workersStarted[before]!
      const exited = yield* Deferred.make<void>()
      engine.once("exit", () => Deferred.unsafeDone(exited, Exit.void))
      // A waiting call, then a message the engine's port listener throws on (outside any fiber): the
      // thread reports the error, then exits.
      const waiting = yield* Effect.fork(Effect.either(client.cacheStatus()))
      engine.postMessage(["Credentials", 0, null])
      const first = yield* Fiber.join(waiting)
      expect(Either.isLeft(first) && first.left).toBeInstanceOf(KinesisStorageException)
      expect(Either.isLeft(first) && first.left.message).toMatch(/Cannot read properties of null/)
      yield* Deferred.await(exited)
      expect(yield* client.record(input("b", stream))).toEqual({})
      expect(workersStarted.length - before).toBe(2)
      expect(yield* client.cacheStatus()).toMatchObject({ records: 2 })
    })
  )

  it.scopedLive("the engine's thread dies while idle: the next record starts a new engine; close returns", () =>
    Effect.gen(function* () {
      const dir = yield* scopedTempDir("effect-kinesis-hosts-")
      const stream = freshName(hosts[0]!, "revive")
      const before = workersStarted.length
      const client = yield* Effect.orDie(KinesisClient.make(configOf(hosts[0]!, dir)))
      yield* client.record(input("a", stream))
      const exited = Effect.async<number>((resume) => {
        workersStarted[before]!.once("exit", (code) => resume(Effect.succeed(code)))
      })
      yield* Effect.promise(() => workersStarted[before]!.terminate())
      yield* exited.pipe(Effect.timeout("1 second"), Effect.ignore)
      expect(yield* client.record(input("b", stream))).toEqual({})
      expect(workersStarted.length - before).toBe(2)
      expect(yield* client.cacheStatus()).toMatchObject({ records: 2 })
      yield* client.close()
      // The engines' hold on the file is gone: another client (on this thread, the quickest) opens it.
      const next = yield* makeClient(hosts[1]!, {}, dir)
      expect(yield* next.cacheStatus()).toMatchObject({ records: 2 })
    })
  )
})

// ---- child processes --------------------------------------------------------------------------

const fixture = fileURLToPath(new URL("./fixtures/facade-host-client.ts", import.meta.url))
