/**
 * Flushing against a real Kinesis API (kinesalite on 127.0.0.1) with the real SDK sender: what
 * arrives, byte for byte; a missing stream next to a good one; a server that is down, then back.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { KinesisClient as SdkClient } from "@aws-sdk/client-kinesis"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { KinesisStorageException, KinesisUnknownException } from "../src/Errors.js"
import type { RecordStorage } from "../src/engine/cache/RecordStorage.js"
import * as RecordSender from "../src/engine/send/RecordSender.js"
import { FlushNone } from "../src/FlushStrategy.js"
import * as KinesisClient from "../src/KinesisClient.js"
import { credentials, type LocalKinesisServer, startLocalKinesis } from "../src/testing.js"
import { bytes, cached, captureLogs, flushData, inProgress, makeEngine, memoryStorage, put } from "./support/senders.js"
import { tempDirs } from "./support/tempDir.js"

let local: LocalKinesisServer
const { make: tempDir, removeAll: removeTempDirs } = tempDirs("effect-kinesis-flush-")

beforeAll(async () => {
  local = await startLocalKinesis()
})

afterAll(async () => {
  await local?.dispose()
  removeTempDirs()
})

const createStream = (name: string, shards = 1) => Effect.promise(() => local.createStream(name, shards))
const readStream = (name: string) =>
  Effect.promise(() => local.readStream(name)).pipe(
    Effect.map((records) => records.map((record) => [record.partitionKey, Buffer.from(record.data).toString("hex")]))
  )

/** The whole client, with its real storage in a temp directory and its real sender, flushing only when asked. */
const clientLayer = () =>
  KinesisClient.layer({
    region: "us-east-1",
    storagePath: tempDir(),
    credentialsProvider: credentials,
    options: { flushStrategy: FlushNone() },
    kinesisClientConfig: local.clientConfig
  })

/** The real sender over an SDK client of its own, destroyed with the scope. */
const realSender = Effect.acquireRelease(
  Effect.sync(() => new SdkClient({ ...local.clientConfig })),
  (client) => Effect.sync(() => client.destroy())
).pipe(Effect.map((client) => RecordSender.fromSdkClient(client, "10 seconds")))

const retryCounts = (storage: RecordStorage, stream: string) =>
  cached(storage, stream).pipe(
    Effect.map((records) => records.map((record) => [record.partitionKey, record.retryCount]))
  )

const hex = (data: Uint8Array) => Buffer.from(data).toString("hex")

describe("flush against kinesalite", () => {
  it.scopedLive("delivers every record byte for byte with its partition key", () =>
    Effect.gen(function* () {
      yield* createStream("roundtrip-one", 1)
      yield* createStream("roundtrip-many", 3)
      const client = yield* KinesisClient.KinesisClient
      const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i)
      const ordered = [
        { partitionKey: "binary", data: allBytes },
        { partitionKey: "binary-reversed", data: Uint8Array.from(allBytes).reverse() },
        { partitionKey: "empty", data: new Uint8Array(0) },
        { partitionKey: "ключ-🔑-鍵-ü", data: bytes("héllo wörld ✓ 🚀") },
        // 256 UTF-16 code units: the most kinesalite takes (it counts units, not code points).
        { partitionKey: "🔑".repeat(128), data: bytes("a key of 128 emoji") },
        { partitionKey: "zeros", data: new Uint8Array(1024) },
        ...Array.from({ length: 20 }, (_, i) => ({ partitionKey: `seq-${i}`, data: bytes(`record ${i}`) }))
      ]
      const spread = Array.from({ length: 30 }, (_, i) => ({
        partitionKey: `spread-${i}`,
        data: Uint8Array.from({ length: 100 }, (_, j) => (i * 31 + j * 7) % 256)
      }))
      for (const record of ordered) yield* client.record({ ...record, streamName: "roundtrip-one" })
      for (const record of spread) yield* client.record({ ...record, streamName: "roundtrip-many" })

      expect(yield* client.flush()).toEqual(flushData({ recordsFlushed: ordered.length + spread.length }))
      expect(yield* client.flush()).toEqual(flushData({ recordsFlushed: 0 }))

      // One shard keeps the order of the flush; three shards only keep the set.
      expect(yield* readStream("roundtrip-one")).toEqual(
        ordered.map((record) => [record.partitionKey, hex(record.data)])
      )
      const many = yield* readStream("roundtrip-many")
      expect([...many].sort()).toEqual(spread.map((record) => [record.partitionKey, hex(record.data)]).sort())
    }).pipe(Effect.provide(clientLayer()))
  )

  it.scopedLive("delivers a good stream next to a missing one, which is charged an attempt and kept", () =>
    Effect.gen(function* () {
      yield* createStream("b-present", 1)
      const logs = yield* captureLogs
      const storage = yield* memoryStorage()
      const engine = yield* makeEngine(storage, yield* realSender, 5)
      yield* put(storage, "a-does-not-exist", "lost-1", "for nobody")
      yield* put(storage, "a-does-not-exist", "lost-2", "for nobody either")
      for (let i = 0; i < 5; i++) yield* put(storage, "b-present", `p${i}`, `present-${i}`)

      const result = yield* engine.flush.pipe(Effect.provide(logs.layer))

      expect(result).toEqual(flushData({ recordsFlushed: 5, recordsFailed: 2, recordsRemaining: 2 }))
      expect(yield* readStream("b-present")).toEqual(
        Array.from({ length: 5 }, (_, i) => [`p${i}`, hex(bytes(`present-${i}`))])
      )
      expect(yield* cached(storage, "b-present")).toEqual([])
      expect(yield* retryCounts(storage, "a-does-not-exist")).toEqual([
        ["lost-1", 1],
        ["lost-2", 1]
      ])
      const warnings = (yield* logs.lines).filter((line) => line.level === "WARN")
      expect(warnings.some((line) => line.message.includes("ResourceNotFoundException"))).toBe(true)

      // Each flush charges one more attempt; the good stream has nothing left to send.
      expect(yield* engine.flush).toEqual(flushData({ recordsFailed: 2, recordsRemaining: 2 }))
      expect(yield* retryCounts(storage, "a-does-not-exist")).toEqual([
        ["lost-1", 2],
        ["lost-2", 2]
      ])
      expect(yield* readStream("b-present")).toHaveLength(5)
    })
  )

  it.scopedLive(
    "splits a batch kinesalite refuses for one record over 1 MiB: the others arrive, that one is charged alone",
    () =>
      Effect.gen(function* () {
        yield* createStream("split-oversized", 1)
        const storage = yield* memoryStorage()
        const engine = yield* makeEngine(storage, yield* realSender, 1)
        const small = Array.from({ length: 6 }, (_, i) => [`small-${i}`, hex(bytes(`small-${i}`))])
        for (const [key] of small.slice(0, 3)) yield* put(storage, "split-oversized", key!, key!)
        // kinesalite takes records up to 1 MiB of data and refuses the whole request otherwise
        // (ValidationException, HTTP 400); the library's own limit is 10 MiB.
        yield* put(storage, "split-oversized", "too-big", new Uint8Array(1024 * 1024 + 1))
        for (const [key] of small.slice(3)) yield* put(storage, "split-oversized", key!, key!)

        expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 6, recordsFailed: 1, recordsRemaining: 1 }))
        expect(yield* readStream("split-oversized")).toEqual(small)
        expect(yield* retryCounts(storage, "split-oversized")).toEqual([["too-big", 1]])

        // Its second attempt is its last (maxRetries 1): it is dropped.
        expect(yield* engine.flush).toEqual(flushData({ recordsFailed: 1, recordsDropped: 1 }))
        expect(yield* cached(storage, "split-oversized")).toEqual([])
        expect(yield* readStream("split-oversized")).toEqual(small)
      })
  )

  it.scopedLive("loses nothing while the server is down and delivers everything once it is back", () =>
    Effect.gen(function* () {
      yield* createStream("down-a", 1)
      yield* createStream("down-b", 1)
      const storage = yield* memoryStorage()
      const engine = yield* makeEngine(storage, yield* realSender, 5)
      // A record already charged once, so that "unchanged" means more than "still zero".
      yield* put(storage, "down-0-missing", "charged", "charged once")
      expect(yield* engine.flush).toEqual(flushData({ recordsFailed: 1, recordsRemaining: 1 }))
      for (let i = 0; i < 3; i++) yield* put(storage, "down-a", `a${i}`, `a-${i}`)
      for (let i = 0; i < 4; i++) yield* put(storage, "down-b", `b${i}`, `b-${i}`)
      const snapshot = Effect.all({
        missing: retryCounts(storage, "down-0-missing"),
        a: retryCounts(storage, "down-a"),
        b: retryCounts(storage, "down-b"),
        status: storage.status
      })
      const before = yield* snapshot
      expect(before.missing).toEqual([["charged", 1]])
      expect(before.status.records).toBe(8)

      yield* Effect.acquireRelease(
        Effect.promise(() => local.stop()),
        () => Effect.promise(() => local.start())
      )
      for (let i = 0; i < 2; i++) {
        const error = yield* Effect.flip(engine.flush)
        expect(error).toBeInstanceOf(KinesisUnknownException)
        expect(yield* snapshot).toEqual(before)
      }
      yield* Effect.promise(() => local.start())

      expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 7, recordsFailed: 1, recordsRemaining: 1 }))
      expect(yield* readStream("down-a")).toEqual(Array.from({ length: 3 }, (_, i) => [`a${i}`, hex(bytes(`a-${i}`))]))
      expect(yield* readStream("down-b")).toEqual(Array.from({ length: 4 }, (_, i) => [`b${i}`, hex(bytes(`b-${i}`))]))
      expect(yield* retryCounts(storage, "down-0-missing")).toEqual([["charged", 2]])
      expect(yield* storage.status).toMatchObject({ records: 1 })
    })
  )

  it.scopedLive("the whole client reports a server that is down as KinesisUnknownException and keeps the records", () =>
    Effect.gen(function* () {
      yield* createStream("client-down", 1)
      const client = yield* KinesisClient.KinesisClient
      for (let i = 0; i < 3; i++) {
        yield* client.record({ streamName: "client-down", partitionKey: `c${i}`, data: bytes(`c-${i}`) })
      }
      yield* Effect.acquireRelease(
        Effect.promise(() => local.stop()),
        () => Effect.promise(() => local.start())
      )

      const error = yield* Effect.flip(client.flush())
      expect(error).toBeInstanceOf(KinesisUnknownException)
      expect(error).not.toBeInstanceOf(KinesisStorageException)

      yield* Effect.promise(() => local.start())
      expect(yield* client.flush()).toEqual(flushData({ recordsFlushed: 3 }))
      expect(yield* readStream("client-down")).toEqual(
        Array.from({ length: 3 }, (_, i) => [`c${i}`, hex(bytes(`c-${i}`))])
      )
    }).pipe(Effect.provide(clientLayer()))
  )

  it.scopedLive("counts a request that never gets an answer as no response once requestTimeout passes", () =>
    Effect.gen(function* () {
      // A server that takes the request and never answers it.
      const received = yield* Effect.makeLatch(false)
      const silent = yield* Effect.acquireRelease(
        Effect.promise(
          () =>
            new Promise<http.Server>((resolve) => {
              const server = http.createServer(() => Effect.runSync(received.open))
              server.listen(0, "127.0.0.1", () => resolve(server))
            })
        ),
        (server) =>
          Effect.promise(
            () =>
              new Promise<void>((resolve) => {
                server.closeAllConnections()
                server.close(() => resolve())
              })
          )
      )
      const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
      const sdk = yield* Effect.acquireRelease(
        Effect.sync(() => new SdkClient({ ...local.clientConfig, endpoint })),
        (client) => Effect.sync(() => client.destroy())
      )
      const storage = yield* memoryStorage()
      const engine = yield* makeEngine(storage, RecordSender.fromSdkClient(sdk, "300 millis"), 5)
      yield* put(storage, "silent", "s0", "waiting")

      const error = yield* Effect.flip(engine.flush).pipe(
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the request timeout did not fire") })
      )

      expect(yield* received.await.pipe(Effect.timeout("1 second"), Effect.as(true))).toBe(true)
      expect(error).toBeInstanceOf(KinesisUnknownException)
      expect(yield* retryCounts(storage, "silent")).toEqual([["s0", 0]])
    })
  )

  it.scopedLive("counts credentials that can't be resolved as no response", () =>
    Effect.gen(function* () {
      yield* createStream("no-credentials", 1)
      const sdk = yield* Effect.acquireRelease(
        Effect.sync(
          () =>
            new SdkClient({
              ...local.clientConfig,
              credentials: () => Promise.reject(new Error("Could not load credentials from any providers"))
            })
        ),
        (client) => Effect.sync(() => client.destroy())
      )
      const storage = yield* memoryStorage()
      const engine = yield* makeEngine(storage, RecordSender.fromSdkClient(sdk, "10 seconds"), 5)
      yield* put(storage, "no-credentials", "n0", "unsigned")

      const error = yield* Effect.flip(engine.flush)

      expect(error).toBeInstanceOf(KinesisUnknownException)
      expect(yield* retryCounts(storage, "no-credentials")).toEqual([["n0", 0]])
      expect(yield* readStream("no-credentials")).toEqual([])
    })
  )
})

describe("flush with credentials that never resolve", () => {
  it.scopedLive("gives up after requestTimeout as no response, charges nothing, and lets close finish", () =>
    Effect.gen(function* () {
      const sdk = yield* Effect.acquireRelease(
        Effect.sync(() => new SdkClient({ ...local.clientConfig, credentials: () => new Promise(() => {}) })),
        (client) => Effect.sync(() => client.destroy())
      )
      const storage = yield* memoryStorage()
      const engine = yield* makeEngine(storage, RecordSender.fromSdkClient(sdk, "300 millis"), 5)
      yield* put(storage, "stuck-credentials", "c0", "waiting")

      const error = yield* Effect.flip(engine.flush).pipe(Effect.timeout("5 seconds"))

      expect(error).toBeInstanceOf(KinesisUnknownException)
      expect(yield* retryCounts(storage, "stuck-credentials")).toEqual([["c0", 0]])
      yield* engine.shutdown().pipe(Effect.timeout("1 second"))
      expect(yield* engine.flush).toEqual(inProgress)
    })
  )
})
