import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import Sqlite from "better-sqlite3"
import { Effect, Either, Exit, Fiber, TestClock } from "effect"
import { KinesisLimitExceededException, KinesisStorageException } from "../src/Errors.js"
import * as RecordStorage from "../src/engine/cache/RecordStorage.js"
import { validate } from "../src/RecordInput.js"
import { scopedTempDir } from "./support/tempDir.js"

// ---------------------------------------------------------------------------------------------
// helpers

const memory = ":memory:"
const big = { maxRecords: 10_000, maxBytes: Number.MAX_SAFE_INTEGER }

/** A validated record whose data is `size` bytes filled with `fill`. */
const record = (streamName: string, partitionKey: string, size: number, fill = 0) =>
  validate({ streamName, partitionKey, data: new Uint8Array(size).fill(fill) }).pipe(Effect.orDie)

/** A temp directory, removed when the test's scope closes (after any storage opened later in it). */
const tempDir = scopedTempDir("effect-kinesis-storage-")

const tempFile = Effect.map(tempDir, (dir) => path.join(dir, "cache.db"))

/** What is in the file, read directly with better-sqlite3 (the storage must be closed). */
const readFile = (filename: string) => {
  const db = new Sqlite(filename, { readonly: true, fileMustExist: true })
  try {
    const totals = db
      .prepare(
        `SELECT COUNT(*) AS count, COALESCE(SUM(size), 0) AS sizes,
           COALESCE(SUM(length(data) + length(CAST(partition_key AS BLOB))), 0) AS bytes FROM records`
      )
      .get() as { count: number; sizes: number; bytes: number }
    const rows = db
      .prepare("SELECT id, stream_name, partition_key, data, size, retry_count FROM records ORDER BY id")
      .all() as Array<{
      id: number
      stream_name: string
      partition_key: string
      data: Buffer
      size: number
      retry_count: number
    }>
    return { ...totals, rows }
  } finally {
    db.close()
  }
}

const open = (filename: string, cacheMaxBytes = 1024 * 1024) => RecordStorage.make({ filename, cacheMaxBytes })

const insertEach = (storage: RecordStorage.RecordStorage, records: ReadonlyArray<Parameters<typeof record>>) =>
  Effect.forEach(records, (args) => Effect.flatMap(record(...args), storage.insert), { discard: true })

/** Records s0, s1 and s2 of stream "s", of 10, 20 and 30 bytes of data. */
const threeRecords: ReadonlyArray<Parameters<typeof record>> = [
  ["s", "s0", 10],
  ["s", "s1", 20],
  ["s", "s2", 30]
]

const ids = (records: ReadonlyArray<RecordStorage.StoredRecord>) => records.map((r) => r.id)
const keys = (records: ReadonlyArray<RecordStorage.StoredRecord>) => records.map((r) => r.partitionKey)
const sizes = (records: ReadonlyArray<RecordStorage.StoredRecord>) => records.reduce((sum, r) => sum + r.size, 0)

/** The range of a batch as `settle` takes it: its stream, first and last id. */
const rangeOf = (batch: ReadonlyArray<RecordStorage.StoredRecord>) => ({
  streamName: batch[0]!.streamName,
  firstId: batch[0]!.id,
  lastId: batch[batch.length - 1]!.id
})

/** The service accepted the batch but for `rejected` (charged) and `spared` (not charged). */
const answered = (
  batch: ReadonlyArray<RecordStorage.StoredRecord>,
  rejected: ReadonlyArray<RecordStorage.StoredRecord> = [],
  spared: ReadonlyArray<RecordStorage.StoredRecord> = []
): RecordStorage.BatchAnswer => ({ _tag: "Answered", ...rangeOf(batch), rejected: ids(rejected), spared: ids(spared) })

/** The service refused the whole batch. */
const refused = (batch: ReadonlyArray<RecordStorage.StoredRecord>): RecordStorage.BatchAnswer => ({
  _tag: "Refused",
  ...rangeOf(batch)
})

const records = (storage: RecordStorage.RecordStorage) => Effect.map(storage.status, (status) => status.records)
const bytes = (storage: RecordStorage.RecordStorage) => Effect.map(storage.status, (status) => status.bytes)
const retryCounts = (storage: RecordStorage.RecordStorage, stream: string) =>
  Effect.map(storage.batch(stream, big), (batch) => batch.map((r) => [r.partitionKey, r.retryCount]))

const expectStorageError = (error: unknown) => {
  expect(error).toBeInstanceOf(KinesisStorageException)
  expect(error).toBeInstanceOf(Error)
  expect((error as KinesisStorageException)._tag).toBe("KinesisStorageException")
}

// ---------------------------------------------------------------------------------------------

describe("RecordStorage operations", () => {
  it.scoped("insert stores the record exactly; status follows", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      expect(yield* storage.status).toEqual({ records: 0, bytes: 0, oldestCreatedAt: undefined })

      const data = new Uint8Array([0, 1, 2, 254, 255])
      yield* storage.insert(yield* validate({ streamName: "orders", partitionKey: "clé", data }))
      expect(yield* storage.status).toMatchObject({ records: 1, bytes: 5 + 4 })

      const [stored, ...rest] = yield* storage.batch("orders", big)
      expect(rest).toEqual([])
      expect(stored!.streamName).toBe("orders")
      expect(stored!.partitionKey).toBe("clé")
      expect(Array.from(stored!.data)).toEqual([0, 1, 2, 254, 255])
      expect(stored!.size).toBe(9)
      expect(stored!.retryCount).toBe(0)
      expect(typeof stored!.id).toBe("number")
    })
  )

  it.scoped("status gives the time the oldest cached record was stored", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* TestClock.adjust("1000 millis")
      yield* insertEach(storage, [["a", "first", 1]])
      yield* TestClock.adjust("500 millis")
      yield* insertEach(storage, [["b", "second", 1]])
      expect((yield* storage.status).oldestCreatedAt).toBe(1000)
      yield* storage.settle(answered(yield* storage.batch("a", big)), 3)
      expect((yield* storage.status).oldestCreatedAt).toBe(1500)
      yield* storage.clear
      expect((yield* storage.status).oldestCreatedAt).toBeUndefined()
    })
  )

  it.scoped("stores only the bytes of a view, and empty data", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      const whole = new Uint8Array(64).map((_, i) => i)
      const view = whole.subarray(10, 14)
      yield* storage.insert(yield* validate({ streamName: "s", partitionKey: "view", data: view }))
      yield* storage.insert(yield* validate({ streamName: "s", partitionKey: "empty", data: new Uint8Array(0) }))
      yield* storage.insert(yield* validate({ streamName: "s", partitionKey: "buffer", data: Buffer.from("hi") }))
      const stored = yield* storage.batch("s", big)
      expect(keys(stored)).toEqual(["view", "empty", "buffer"])
      expect(Array.from(stored[0]!.data)).toEqual([10, 11, 12, 13])
      expect(stored[1]!.data.byteLength).toBe(0)
      expect(Buffer.from(stored[2]!.data).toString()).toBe("hi")
      expect(yield* bytes(storage)).toBe(4 + 4 + 0 + 5 + 2 + 6)
    })
  )

  it.scoped("streams lists each stream with records once, in name order", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      expect(yield* storage.streams).toEqual([])
      yield* insertEach(storage, [
        ["zeta", "k", 1],
        ["alpha", "k", 1],
        ["Beta", "k", 1],
        ["mid-2", "k", 1],
        ["alpha", "k", 1],
        ["mid.1", "k", 1],
        ["zeta", "k", 1]
      ])
      expect(yield* storage.streams).toEqual(["Beta", "alpha", "mid-2", "mid.1", "zeta"])
      expect(yield* storage.streams).toEqual(["Beta", "alpha", "mid-2", "mid.1", "zeta"].sort())
      // A stream disappears from the list once its records are gone
      yield* storage.settle(answered(yield* storage.batch("alpha", big)), 3)
      expect(yield* storage.streams).toEqual(["Beta", "mid-2", "mid.1", "zeta"])
    })
  )

  it.scoped("batch returns one stream's oldest records in insertion order", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertEach(storage, [
        ["b", "b1", 1],
        ["a", "a1", 1],
        ["a", "a2", 1],
        ["b", "b2", 1],
        ["a", "a3", 1]
      ])
      const a = yield* storage.batch("a", big)
      expect(keys(a)).toEqual(["a1", "a2", "a3"])
      expect(a.every((r) => r.streamName === "a")).toBe(true)
      expect(ids(a)).toEqual([...ids(a)].sort((x, y) => x - y))
      expect(keys(yield* storage.batch("b", big))).toEqual(["b1", "b2"])
      expect(yield* storage.batch("none", big)).toEqual([])
      // Reading a batch removes nothing, and reading it again gives the same batch
      expect(yield* records(storage)).toBe(5)
      expect(yield* storage.batch("a", big)).toEqual(a)
    })
  )

  it.scoped("batch is capped by maxRecords", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertEach(
        storage,
        Array.from({ length: 10 }, (_, i) => ["s", `k${i}`, 1] as const)
      )
      expect(keys(yield* storage.batch("s", { maxRecords: 3, maxBytes: 1_000 }))).toEqual(["k0", "k1", "k2"])
      expect(keys(yield* storage.batch("s", { maxRecords: 1, maxBytes: 1_000 }))).toEqual(["k0"])
      expect(yield* storage.batch("s", { maxRecords: 9, maxBytes: 1_000 })).toHaveLength(9)
      expect(yield* storage.batch("s", { maxRecords: 10, maxBytes: 1_000 })).toHaveLength(10)
      expect(yield* storage.batch("s", { maxRecords: 11, maxBytes: 1_000 })).toHaveLength(10)
    })
  )

  it.scoped("batch is a strict prefix capped by maxBytes: it stops at the first record that does not fit", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      // sizes (data + 2-byte key): 10, 30, 50, 5, 5
      yield* insertEach(storage, [
        ["s", "r0", 8],
        ["s", "r1", 28],
        ["s", "r2", 48],
        ["s", "r3", 3],
        ["s", "r4", 3]
      ])
      // 10 + 30 = 40; r2 (50) does not fit in 60 and r3 (5) must not jump ahead of it
      const capped = yield* storage.batch("s", { maxRecords: 500, maxBytes: 60 })
      expect(keys(capped)).toEqual(["r0", "r1"])
      expect(capped.map((r) => r.size)).toEqual([10, 30])
      // A batch that exactly fills maxBytes takes the record that fills it; one byte less does not
      expect(keys(yield* storage.batch("s", { maxRecords: 500, maxBytes: 90 }))).toEqual(["r0", "r1", "r2"])
      expect(keys(yield* storage.batch("s", { maxRecords: 500, maxBytes: 89 }))).toEqual(["r0", "r1"])
      // The oldest record alone is too big: nothing; exactly its size: it alone
      expect(yield* storage.batch("s", { maxRecords: 500, maxBytes: 9 })).toEqual([])
      expect(keys(yield* storage.batch("s", { maxRecords: 500, maxBytes: 10 }))).toEqual(["r0"])
      // Both caps: whichever comes first
      expect(keys(yield* storage.batch("s", { maxRecords: 2, maxBytes: 1_000 }))).toEqual(["r0", "r1"])
      expect(keys(yield* storage.batch("s", { maxRecords: 5, maxBytes: 100 }))).toEqual(["r0", "r1", "r2", "r3", "r4"])
      expect(keys(yield* storage.batch("s", { maxRecords: 5, maxBytes: 99 }))).toEqual(["r0", "r1", "r2", "r3"])
    })
  )

  it.scoped("clear deletes everything and returns how many records there were", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      expect(yield* storage.clear).toBe(0)
      yield* insertEach(
        storage,
        Array.from({ length: 7 }, (_, i) => [i % 2 === 0 ? "even" : "odd", `k${i}`, i * 10] as const)
      )
      expect(yield* records(storage)).toBe(7)
      expect(yield* storage.clear).toBe(7)
      expect(yield* storage.status).toEqual({ records: 0, bytes: 0, oldestCreatedAt: undefined })
      expect(yield* storage.streams).toEqual([])
      expect(yield* storage.batch("even", big)).toEqual([])
      expect(yield* storage.clear).toBe(0)
      // Usable again afterwards
      yield* insertEach(storage, [["odd", "again", 5]])
      expect(yield* storage.status).toMatchObject({ records: 1, bytes: 10 })
    })
  )

  it.effect("operations after the scope closed fail with KinesisStorageException, not a defect", () =>
    Effect.gen(function* () {
      const storage = yield* Effect.scoped(open(memory))
      const rec = yield* record("s", "k", 1)
      const range = { streamName: "s", firstId: 1, lastId: 1 }
      const operations = [
        storage.insert(rec),
        storage.status,
        storage.streams,
        storage.batch("s", big),
        storage.settle({ _tag: "Answered", ...range, rejected: [], spared: [] }, 3),
        storage.settle({ _tag: "Refused", ...range }, 3),
        storage.clear
      ]
      for (const operation of operations) {
        const exit = yield* Effect.exit(operation)
        expect(Exit.isFailure(exit) && exit.cause._tag).toBe("Fail")
        expectStorageError(yield* Effect.flip(operation))
      }
    })
  )
})

describe("RecordStorage settle", () => {
  it.scoped(
    "Answered with no rejection deletes exactly the batch: not other streams' records between its ids, nor newer ones",
    () =>
      Effect.gen(function* () {
        const storage = yield* open(memory)
        yield* insertEach(storage, [
          ["s", "s0", 10],
          ["t", "t0", 40],
          ["s", "s1", 20],
          ["t", "t1", 40],
          ["s", "s2", 30]
        ])
        const batch = yield* storage.batch("s", { maxRecords: 2, maxBytes: 1_000 })
        expect(keys(batch)).toEqual(["s0", "s1"])
        // Recorded after the batch was read: newer than the batch, so not part of it
        yield* insertEach(storage, [["s", "s3", 50]])

        const dropped = yield* storage.settle(answered(batch), 3)
        expect(dropped.count).toBe(0)
        expect(dropped.byStream.size).toBe(0)
        expect(keys(yield* storage.batch("s", big))).toEqual(["s2", "s3"])
        expect(keys(yield* storage.batch("t", big))).toEqual(["t0", "t1"])
        expect(yield* storage.status).toMatchObject({ records: 4, bytes: 32 + 52 + 42 + 42 })
        // Nothing left behind was charged
        expect((yield* storage.batch("s", big)).map((r) => r.retryCount)).toEqual([0, 0])
        expect((yield* storage.batch("t", big)).map((r) => r.retryCount)).toEqual([0, 0])
        // Settling it again deletes nothing and leaves the byte count alone
        yield* storage.settle(answered(batch), 3)
        expect(yield* storage.status).toMatchObject({ records: 4, bytes: 32 + 52 + 42 + 42 })
      })
  )

  it.scoped(
    "Answered with rejections deletes the rest of the batch and charges one attempt to each rejected record",
    () =>
      Effect.gen(function* () {
        const storage = yield* open(memory)
        yield* insertEach(storage, [
          ["s", "s0", 10],
          ["s", "s1", 20],
          ["t", "t0", 40],
          ["s", "s2", 30],
          ["s", "s3", 40],
          ["s", "s4", 50]
        ])
        const batch = yield* storage.batch("s", { maxRecords: 4, maxBytes: 1_000 })
        expect(keys(batch)).toEqual(["s0", "s1", "s2", "s3"])
        const [s0, s1, s2, s3] = batch

        const dropped = yield* storage.settle(answered(batch, [s1!, s3!]), 3)
        expect(dropped).toMatchObject({ count: 0 })
        expect(yield* retryCounts(storage, "s")).toEqual([
          ["s1", 1],
          ["s3", 1],
          ["s4", 0]
        ])
        expect(yield* retryCounts(storage, "t")).toEqual([["t0", 0]])
        expect(yield* bytes(storage)).toBe(22 + 42 + 52 + 42)

        // Every record rejected: nothing deleted, each charged
        const again = yield* storage.batch("s", big)
        yield* storage.settle(answered(again, again), 3)
        expect(yield* retryCounts(storage, "s")).toEqual([
          ["s1", 2],
          ["s3", 2],
          ["s4", 1]
        ])
        expect(yield* bytes(storage)).toBe(22 + 42 + 52 + 42)
        expect(ids([s0!, s2!]).every((id) => !ids(again).includes(id))).toBe(true)
      })
  )

  it.scoped("Answered with spared records keeps them as they are: not deleted, not charged, never dropped", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertEach(storage, threeRecords)
      const batch = yield* storage.batch("s", big)
      const [, s1, s2] = batch
      expect(yield* storage.settle(answered(batch, [s2!], [s1!]), 1)).toMatchObject({ count: 1 })
      for (let settled = 0; settled < 3; settled++) {
        const again = yield* storage.batch("s", big)
        expect(keys(again)).toEqual(["s1"])
        expect(yield* storage.settle(answered(again, [], again), 1)).toMatchObject({ count: 0 })
      }
      expect(yield* retryCounts(storage, "s")).toEqual([["s1", 0]])
      expect(yield* bytes(storage)).toBe(22)
    })
  )

  it.scoped(
    "Answered with rejections drops a rejected record that reaches maxAttempts and deletes the accepted ones",
    () =>
      Effect.gen(function* () {
        const storage = yield* open(memory)
        yield* insertEach(storage, threeRecords)
        const first = yield* storage.batch("s", big)
        yield* storage.settle(answered(first, first), 2)
        expect(yield* retryCounts(storage, "s")).toEqual([
          ["s0", 1],
          ["s1", 1],
          ["s2", 1]
        ])
        // Second attempt: s0 accepted, s1 rejected (reaches 2 of 2: dropped), s2 rejected likewise
        const second = yield* storage.batch("s", big)
        const dropped = yield* storage.settle(answered(second, second.slice(1)), 2)
        expect(dropped.count).toBe(2)
        expect(Object.fromEntries(dropped.byStream)).toEqual({ s: 2 })
        expect(yield* storage.status).toEqual({ records: 0, bytes: 0, oldestCreatedAt: undefined })
        expect(yield* storage.streams).toEqual([])
      })
  )

  it.scoped("Refused charges every record of the range and drops those that reach maxAttempts", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertEach(storage, [
        ["a", "a0", 10],
        ["b", "b0", 20],
        ["a", "a1", 10],
        ["a", "a2", 10]
      ])
      const maxAttempts = 3
      // a0 is charged alone first, so that it reaches the limit one settle before a1
      yield* storage.settle(refused((yield* storage.batch("a", big)).slice(0, 1)), maxAttempts)
      const none = yield* storage.settle(
        refused(yield* storage.batch("a", { maxRecords: 2, maxBytes: 1_000 })),
        maxAttempts
      )
      expect(none.count).toBe(0)
      expect(none.byStream.size).toBe(0)
      expect(yield* retryCounts(storage, "a")).toEqual([
        ["a0", 2],
        ["a1", 1],
        ["a2", 0]
      ])
      // b0 sits between a0 and a1 by id and is not part of stream a's range
      expect(yield* retryCounts(storage, "b")).toEqual([["b0", 0]])

      const bytesBefore = yield* bytes(storage)
      const third = yield* storage.settle(refused(yield* storage.batch("a", big)), maxAttempts)
      expect(third.count).toBe(1)
      expect(Object.fromEntries(third.byStream)).toEqual({ a: 1 })
      expect(yield* retryCounts(storage, "a")).toEqual([
        ["a1", 2],
        ["a2", 1]
      ])
      expect(yield* storage.status).toMatchObject({ records: 3, bytes: bytesBefore - 12 })
      expect(yield* retryCounts(storage, "b")).toEqual([["b0", 0]])
    })
  )

  it.scoped("Refused with maxAttempts 1 drops the whole batch at once and nothing else", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertEach(storage, [
        ["x", "x0", 1],
        ["x", "x1", 1],
        ["y", "y0", 1],
        ["x", "x2", 1],
        ["z", "z0", 1]
      ])
      const x = yield* storage.batch("x", big)
      yield* insertEach(storage, [["x", "x3", 1]])

      const dropped = yield* storage.settle(refused(x), 1)
      expect(dropped.count).toBe(3)
      expect(Object.fromEntries(dropped.byStream)).toEqual({ x: 3 })
      expect(yield* storage.streams).toEqual(["x", "y", "z"])
      expect(yield* retryCounts(storage, "x")).toEqual([["x3", 0]])
      expect(yield* storage.status).toMatchObject({ records: 3, bytes: 9 })
    })
  )

  it.scoped("settle of a range with no records left deletes and charges nothing", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertEach(storage, [["s", "s0", 1]])
      const range = { streamName: "s", firstId: 1_000, lastId: 2_000 }
      expect(yield* storage.settle({ _tag: "Refused", ...range }, 1)).toMatchObject({ count: 0 })
      expect(yield* storage.settle({ _tag: "Answered", ...range, rejected: [], spared: [] }, 1)).toMatchObject({
        count: 0
      })
      expect(
        yield* storage.settle({ _tag: "Answered", ...range, rejected: [1_500], spared: [1_501] }, 1)
      ).toMatchObject({ count: 0 })
      expect(yield* retryCounts(storage, "s")).toEqual([["s0", 0]])
      expect(yield* storage.status).toMatchObject({ records: 1, bytes: 3 })
    })
  )

  it.scoped("settle after clear during the request keeps the byte count exact for what was recorded since", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertEach(storage, [
        ["s", "s0", 10],
        ["s", "s1", 20]
      ])
      const batch = yield* storage.batch("s", big)
      expect(yield* storage.clear).toBe(2)
      yield* insertEach(storage, [["s", "s2", 30]])

      expect(yield* storage.settle(answered(batch), 3)).toMatchObject({ count: 0 })
      expect(keys(yield* storage.batch("s", big))).toEqual(["s2"])
      expect(yield* storage.status).toMatchObject({ records: 1, bytes: 32 })
      expect(yield* storage.settle(answered(batch, batch), 1)).toMatchObject({ count: 0 })
      expect(yield* storage.settle(refused(batch), 1)).toMatchObject({ count: 0 })
      expect(yield* retryCounts(storage, "s")).toEqual([["s2", 0]])
      expect(yield* storage.status).toMatchObject({ records: 1, bytes: 32 })
    })
  )
})

describe("RecordStorage expire", () => {
  it.scoped("deletes the records stored before the given time, counted by stream; the byte count follows", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* TestClock.adjust("1000 millis")
      yield* insertEach(storage, [
        ["a", "old-a1", 10],
        ["b", "old-b1", 20],
        ["a", "old-a2", 30]
      ])
      yield* TestClock.adjust("1000 millis")
      yield* insertEach(storage, [
        ["a", "new-a3", 40],
        ["b", "new-b2", 50]
      ])

      const expired = yield* storage.expire(2000)

      expect(expired).toEqual({
        count: 3,
        byStream: new Map([
          ["a", 2],
          ["b", 1]
        ])
      })
      expect(keys(yield* storage.batch("a", big))).toEqual(["new-a3"])
      expect(keys(yield* storage.batch("b", big))).toEqual(["new-b2"])
      const left = [...(yield* storage.batch("a", big)), ...(yield* storage.batch("b", big))]
      expect(yield* storage.status).toEqual({ records: 2, bytes: sizes(left), oldestCreatedAt: 2000 })
    })
  )

  it.scoped("deletes nothing when every record was stored at or after the given time", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* TestClock.adjust("1000 millis")
      yield* insertEach(storage, threeRecords)
      expect(yield* storage.expire(1000)).toEqual(RecordStorage.noneDropped)
      expect(yield* records(storage)).toBe(3)
      expect(yield* storage.expire(1001)).toMatchObject({ count: 3 })
      expect(yield* storage.status).toEqual({ records: 0, bytes: 0, oldestCreatedAt: undefined })
      expect(yield* storage.expire(5000)).toEqual(RecordStorage.noneDropped)
    })
  )
})

describe("RecordStorage byte count", () => {
  it.scoped("matches the database through insert, settle, dropped attempts, clear and reopen", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      const keys = ["k", "é", "😀", "キー", "key-long-ascii"]
      let expected = 0

      // Insert records with multi-byte keys; deliver some; drop some through attempts
      yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* open(filename)
          for (let i = 0; i < 30; i++) {
            const rec = yield* record(`s${i % 3}`, keys[i % keys.length]!, i * 7)
            yield* storage.insert(rec)
            expected += rec.size
          }
          expect(yield* bytes(storage)).toBe(expected)

          const s0 = yield* storage.batch("s0", { maxRecords: 4, maxBytes: Number.MAX_SAFE_INTEGER })
          yield* storage.settle(answered(s0), 2)
          expected -= sizes(s0)
          expect(yield* bytes(storage)).toBe(expected)

          const s1 = yield* storage.batch("s1", big)
          yield* storage.settle(refused(s1), 2)
          expect(yield* bytes(storage)).toBe(expected)
          // Second attempt: the first three rejected (dropped), the rest accepted (deleted)
          const dropped = yield* storage.settle(answered(s1, s1.slice(0, 3)), 2)
          expect(dropped.count).toBe(3)
          expected -= sizes(s1)
          expect(yield* bytes(storage)).toBe(expected)
          expect(yield* records(storage)).toBe(30 - 4 - 10)
        })
      )

      const onDisk = readFile(filename)
      expect(onDisk.sizes).toBe(expected)
      expect(onDisk.bytes).toBe(expected)
      expect(onDisk.count).toBe(30 - 4 - 10)

      // Reopen: the count comes back from the file
      yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* open(filename)
          expect(yield* storage.status).toMatchObject({ records: onDisk.count, bytes: expected })
          // ...and keeps counting from there
          const rec = yield* record("s2", "😀", 100)
          yield* storage.insert(rec)
          expected += rec.size
          expect(yield* bytes(storage)).toBe(expected)
        })
      )
      expect(readFile(filename).sizes).toBe(expected)

      // Clear, then reopen: zero
      yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* open(filename)
          expect(yield* storage.clear).toBe(onDisk.count + 1)
          expect(yield* bytes(storage)).toBe(0)
        })
      )
      expect(readFile(filename)).toMatchObject({ count: 0, sizes: 0 })
      yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* open(filename)
          expect(yield* storage.status).toEqual({ records: 0, bytes: 0, oldestCreatedAt: undefined })
        })
      )
    })
  )

  it.scoped("the limit counts the bytes already in the file when it is reopened", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      yield* Effect.scoped(Effect.flatMap(open(filename, 100), (storage) => insertEach(storage, [["s", "k", 79]])))
      const storage = yield* open(filename, 100)
      expect(yield* bytes(storage)).toBe(80)
      const refused = yield* Effect.flip(Effect.flatMap(record("s", "k", 20), storage.insert))
      expect(refused).toBeInstanceOf(KinesisLimitExceededException)
      yield* insertEach(storage, [["s", "k", 19]])
      expect(yield* bytes(storage)).toBe(100)
    })
  )
})

describe("RecordStorage cache limit", () => {
  it.scoped("200 concurrent inserts into room for 50: exactly 50 stored, 150 refused", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      const rec = yield* record("s", "key", 97) // 100 bytes
      expect(rec.size).toBe(100)

      const outcomes = yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* open(filename, 50 * 100)
          const outcomes = yield* Effect.forEach(
            Array.from({ length: 200 }, () => rec),
            (r) => Effect.either(storage.insert(r)),
            { concurrency: "unbounded" }
          )
          expect(yield* records(storage)).toBe(50)
          expect(yield* bytes(storage)).toBe(5_000)
          return outcomes
        })
      )

      const stored = outcomes.filter(Either.isRight)
      const refused = outcomes.filter(Either.isLeft).map((e) => e.left)
      expect(stored).toHaveLength(50)
      expect(refused).toHaveLength(150)
      for (const error of refused) {
        expect(error).toBeInstanceOf(KinesisLimitExceededException)
        expect(error._tag).toBe("KinesisLimitExceededException")
      }
      const onDisk = readFile(filename)
      expect(onDisk.count).toBe(50)
      expect(onDisk.sizes).toBe(5_000)
      expect(onDisk.bytes).toBe(5_000)
    })
  )

  it.scoped("concurrent inserts of mixed sizes never exceed the limit and count exactly", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      const limit = 10_000
      const sizes = Array.from({ length: 300 }, (_, i) => 1 + ((i * 37) % 181))
      const counted = yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* open(filename, limit)
          const outcomes = yield* Effect.forEach(
            sizes,
            (size) => Effect.either(Effect.flatMap(record("s", "k", size - 1), storage.insert)),
            { concurrency: "unbounded" }
          )
          const accepted = sizes.filter((_, i) => Either.isRight(outcomes[i]!))
          const cached = yield* bytes(storage)
          expect(cached).toBe(accepted.reduce((a, b) => a + b, 0))
          expect(cached).toBeLessThanOrEqual(limit)
          expect(outcomes.filter(Either.isLeft).every((e) => e.left._tag === "KinesisLimitExceededException")).toBe(
            true
          )
          return cached
        })
      )
      expect(readFile(filename).sizes).toBe(counted)
    })
  )

  it.scoped("a record that exactly fills the remaining space is accepted; one byte more is refused", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory, 100)
      yield* insertEach(storage, [["s", "k", 59]]) // 60 bytes
      // 41 bytes into 40 remaining: refused, and nothing changes
      const error = yield* Effect.flip(Effect.flatMap(record("s", "k", 40), storage.insert))
      expect(error).toBeInstanceOf(KinesisLimitExceededException)
      expect(error._tag).toBe("KinesisLimitExceededException")
      expect(yield* bytes(storage)).toBe(60)
      expect(yield* records(storage)).toBe(1)
      // 40 bytes into 40 remaining: accepted
      yield* insertEach(storage, [["s", "k", 39]])
      expect(yield* bytes(storage)).toBe(100)
      // Full: even the smallest record is refused
      const full = yield* Effect.flip(Effect.flatMap(record("s", "k", 0), storage.insert))
      expect(full).toBeInstanceOf(KinesisLimitExceededException)
      expect(yield* records(storage)).toBe(2)
      // Delivering makes room again
      yield* storage.settle(answered((yield* storage.batch("s", big)).slice(0, 1)), 3)
      yield* insertEach(storage, [["s", "k", 59]])
      expect(yield* bytes(storage)).toBe(100)
    })
  )

  it.scoped("a record larger than the whole cache is refused", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory, 10)
      const error = yield* Effect.flip(Effect.flatMap(record("s", "k", 10), storage.insert))
      expect(error).toBeInstanceOf(KinesisLimitExceededException)
      expect(yield* records(storage)).toBe(0)
    })
  )
})

describe("RecordStorage insertAll", () => {
  it.scoped("stores records handed over together in order and answers each", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      const given = yield* Effect.forEach(["a0", "b0", "a1"], (key) => record(key.slice(0, 1), key, 3))
      expect(yield* storage.insertAll(given)).toEqual([undefined, undefined, undefined])
      expect(keys(yield* storage.batch("a", big))).toEqual(["a0", "a1"])
      expect(keys(yield* storage.batch("b", big))).toEqual(["b0"])
      expect(yield* storage.status).toMatchObject({ records: 3, bytes: 15 })
      expect(yield* storage.insertAll([])).toEqual([])
      expect(yield* records(storage)).toBe(3)
    })
  )

  it.scoped(
    "checks the cache limit record by record: a record that does not fit is refused, a later one that fits is stored",
    () =>
      Effect.gen(function* () {
        const storage = yield* open(memory, 100)
        // sizes (2-byte keys) 60, 50, 40, 2: 60 fits, 50 does not (40 left), 40 exactly fills the rest, 2 does not
        const given = yield* Effect.forEach([58, 48, 38, 0], (size, i) => record("s", `k${i}`, size))
        const answers = yield* storage.insertAll(given)
        expect(answers[0]).toBeUndefined()
        expect(answers[1]).toBeInstanceOf(KinesisLimitExceededException)
        expect(answers[2]).toBeUndefined()
        expect(answers[3]).toBeInstanceOf(KinesisLimitExceededException)
        expect(keys(yield* storage.batch("s", big))).toEqual(["k0", "k2"])
        expect(yield* storage.status).toMatchObject({ records: 2, bytes: 100 })
      })
  )

  it.scoped("concurrent insertAll and insert calls never take the cache over its limit and count exactly", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      const rec = yield* record("s", "key", 97) // 100 bytes
      const storage = yield* open(filename, 50 * 100)
      const outcomes = yield* Effect.all(
        [
          ...Array.from({ length: 20 }, () =>
            Effect.map(storage.insertAll([rec, rec, rec, rec, rec]), (answers) =>
              answers.map((answer) => answer === undefined)
            )
          ),
          ...Array.from({ length: 50 }, () =>
            Effect.map(Effect.either(storage.insert(rec)), (e) => [Either.isRight(e)])
          )
        ],
        { concurrency: "unbounded" }
      )
      expect(outcomes.flat().filter((stored) => stored)).toHaveLength(50)
      expect(yield* storage.status).toMatchObject({ records: 50, bytes: 5_000 })
    })
  )

  it.effect("after the scope closed, answers each record with KinesisStorageException", () =>
    Effect.gen(function* () {
      const storage = yield* Effect.scoped(open(memory))
      const answers = yield* storage.insertAll([yield* record("s", "k", 1), yield* record("s", "k", 2)])
      expect(answers).toHaveLength(2)
      for (const answer of answers) expectStorageError(answer)
    })
  )
})

describe("RecordStorage group commit", () => {
  // Real clock: the point is what a sustained burst of inserts does to timers of the event loop.
  it.scopedLive("a burst of inserts in a tight loop lets timers run before it ends", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory, 64 * 1024 * 1024)
      const data = yield* record("s", "k", 100)
      const callers = 256
      const each = 80
      let stored = 0
      const burst = yield* Effect.fork(
        Effect.forEach(
          Array.from({ length: callers }, (_, caller) => caller),
          () =>
            Effect.gen(function* () {
              for (let i = 0; i < each; i++) {
                yield* storage.insert(data)
                stored++
              }
            }),
          { concurrency: "unbounded", discard: true }
        )
      )
      yield* Effect.sleep("1 millis")
      const storedWhenAwake = stored
      yield* Fiber.join(burst)

      expect(stored).toBe(callers * each)
      expect(yield* records(storage)).toBe(callers * each)
      // The timer fired while the burst was still going, not once it had ended.
      expect(storedWhenAwake).toBeLessThan(callers * each)
    })
  )
})

describe("RecordStorage persistence", () => {
  it.scoped("records and retry counts survive closing and reopening the file", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      const before = yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* open(filename)
          for (let i = 0; i < 6; i++) {
            const data = crypto.randomBytes(50 + i)
            yield* storage.insert(
              yield* validate({ streamName: i < 4 ? "alpha" : "beta", partitionKey: `key-${i}-é`, data })
            )
          }
          const alpha = yield* storage.batch("alpha", big)
          yield* storage.settle(refused(alpha.slice(0, 2)), 10)
          yield* storage.settle(refused(alpha.slice(1, 2)), 10)
          return {
            alpha: yield* storage.batch("alpha", big),
            beta: yield* storage.batch("beta", big)
          }
        })
      )
      expect(before.alpha.map((r) => r.retryCount)).toEqual([1, 2, 0, 0])

      const storage = yield* open(filename)
      const alpha = yield* storage.batch("alpha", big)
      const beta = yield* storage.batch("beta", big)
      for (const [after, was] of [
        [alpha, before.alpha],
        [beta, before.beta]
      ] as const) {
        expect(after.map((r) => r.id)).toEqual(was.map((r) => r.id))
        expect(after.map((r) => r.partitionKey)).toEqual(was.map((r) => r.partitionKey))
        expect(after.map((r) => r.streamName)).toEqual(was.map((r) => r.streamName))
        expect(after.map((r) => r.size)).toEqual(was.map((r) => r.size))
        expect(after.map((r) => r.retryCount)).toEqual(was.map((r) => r.retryCount))
        expect(after.map((r) => Buffer.from(r.data).toString("hex"))).toEqual(
          was.map((r) => Buffer.from(r.data).toString("hex"))
        )
      }
      expect(alpha.map((r) => r.retryCount)).toEqual([1, 2, 0, 0])
      expect(yield* storage.streams).toEqual(["alpha", "beta"])

      // A record inserted after reopening comes after the old ones, and the old counts still apply
      yield* insertEach(storage, [["alpha", "new", 1]])
      expect(keys(yield* storage.batch("alpha", big)).at(-1)).toBe("new")
      const dropped = yield* storage.settle(refused(alpha.slice(1, 2)), 3)
      expect(dropped.count).toBe(1)
      expect(yield* retryCounts(storage, "alpha")).toEqual([
        ["key-0-é", 1],
        ["key-2-é", 0],
        ["key-3-é", 0],
        ["new", 0]
      ])
    })
  )

  it.scoped("a record is on disk as soon as insert returns", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      const storage = yield* open(filename)
      yield* insertEach(storage, [["s", "durable", 3]])
      // Another connection cannot read while the owner holds the file, so check the write-ahead log and
      // database files hold the key (the record must not wait in memory for a later commit)
      const dir = path.dirname(filename)
      const onDisk = fs
        .readdirSync(dir)
        .filter((name) => name.startsWith(path.basename(filename)))
        .map((name) => fs.readFileSync(path.join(dir, name)))
      expect(onDisk.some((content) => content.includes("durable"))).toBe(true)
    })
  )

  it.scoped(
    "a file without incremental auto-vacuum (an earlier version's) is converted at open and keeps its records",
    () =>
      Effect.gen(function* () {
        const filename = yield* tempFile
        yield* Effect.scoped(Effect.flatMap(open(filename), (storage) => insertEach(storage, [["s", "kept", 5]])))
        const db = new Sqlite(filename)
        db.pragma("auto_vacuum = NONE")
        db.exec("VACUUM")
        expect(db.pragma("auto_vacuum", { simple: true })).toBe(0)
        db.close()

        yield* Effect.scoped(
          Effect.gen(function* () {
            const storage = yield* open(filename)
            expect(keys(yield* storage.batch("s", big))).toEqual(["kept"])
            expect(yield* storage.status).toMatchObject({ records: 1, bytes: 9 })
          })
        )
        const check = new Sqlite(filename, { readonly: true })
        const mode = check.pragma("auto_vacuum", { simple: true })
        check.close()
        expect(mode).toBe(2)
      })
  )
})

describe("RecordStorage opening the file", () => {
  it.scoped("a file of random bytes gives KinesisStorageException and is left as it was", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      const garbage = crypto.randomBytes(8192)
      fs.writeFileSync(filename, garbage)
      const exit = yield* Effect.exit(Effect.scoped(open(filename)))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(Effect.scoped(open(filename)))
      expectStorageError(error)
      expect(error.message).toContain(filename)
      expect(fs.readFileSync(filename).equals(garbage)).toBe(true)
    })
  )

  it.scoped("a SQLite file that is not a cache gives KinesisStorageException", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      const other = new Sqlite(filename)
      other.exec("CREATE TABLE records (something TEXT); INSERT INTO records VALUES ('theirs')")
      other.close()
      expectStorageError(yield* Effect.flip(Effect.scoped(open(filename))))
    })
  )

  it.scoped("a directory where the file should be, or a file where the directory should be, is a storage error", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const asDir = path.join(dir, "cache.db")
      fs.mkdirSync(asDir)
      expectStorageError(yield* Effect.flip(Effect.scoped(open(asDir))))

      const blocker = path.join(dir, "not-a-dir")
      fs.writeFileSync(blocker, "x")
      expectStorageError(yield* Effect.flip(Effect.scoped(open(path.join(blocker, "cache.db")))))
    })
  )

  it.scoped("creates a missing directory and the file with mode 0600", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const filename = path.join(dir, "nested", "deeper", "cache.db")
      const storage = yield* open(filename)
      yield* insertEach(storage, [["s", "k", 10]])
      expect(fs.statSync(filename).mode & 0o777).toBe(0o600)
      // The write-ahead log holds record data too: it must be as private as the database
      for (const name of fs.readdirSync(path.dirname(filename))) {
        expect([name, fs.statSync(path.join(path.dirname(filename), name)).mode & 0o777]).toEqual([name, 0o600])
      }
    })
  )

  it.scoped("an existing file with wider permissions is narrowed to 0600", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      yield* Effect.scoped(open(filename))
      fs.chmodSync(filename, 0o644)
      yield* open(filename)
      expect(fs.statSync(filename).mode & 0o777).toBe(0o600)
    })
  )

  it.scoped("a second open of a file in use fails fast with KinesisStorageException, and works once it is closed", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      yield* Effect.scoped(
        Effect.gen(function* () {
          const first = yield* open(filename)
          yield* insertEach(first, [["s", "first", 1]])

          const started = Date.now()
          const error = yield* Effect.flip(Effect.scoped(open(filename)))
          const elapsed = Date.now() - started
          expectStorageError(error)
          expect(elapsed).toBeLessThan(1_000)

          // The first owner is unaffected
          yield* insertEach(first, [["s", "still-mine", 1]])
          expect(keys(yield* first.batch("s", big))).toEqual(["first", "still-mine"])
        })
      )

      const second = yield* open(filename)
      expect(keys(yield* second.batch("s", big))).toEqual(["first", "still-mine"])
    })
  )

  it("cacheFilename includes the region", () => {
    const a = RecordStorage.cacheFilename("/some/dir", "us-east-1")
    const b = RecordStorage.cacheFilename("/some/dir", "eu-west-1")
    expect(path.dirname(a)).toBe("/some/dir")
    expect(path.basename(a)).toContain("us-east-1")
    expect(path.basename(b)).toContain("eu-west-1")
    expect(a).not.toBe(b)
    expect(path.dirname(RecordStorage.cacheFilename("/some/dir", "../../x"))).toBe("/some/dir")
  })

  it.scoped("two regions in one directory are two independent caches, open at the same time", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const east = yield* open(RecordStorage.cacheFilename(dir, "us-east-1"))
      const west = yield* open(RecordStorage.cacheFilename(dir, "us-west-2"))
      yield* insertEach(east, [
        ["s", "east-1", 1],
        ["s", "east-2", 1]
      ])
      yield* insertEach(west, [["s", "west", 5]])
      expect(keys(yield* east.batch("s", big))).toEqual(["east-1", "east-2"])
      expect(keys(yield* west.batch("s", big))).toEqual(["west"])
      expect(yield* bytes(west)).toBe(9)
      expect(yield* east.clear).toBe(2)
      expect(yield* records(west)).toBe(1)
    })
  )
})

describe("RecordStorage batch after an id", () => {
  /** Records s0 to s4 of stream "s", with a record of stream "t" between each two; gives the ids of s's records. */
  const interleaved = (storage: RecordStorage.RecordStorage) =>
    Effect.gen(function* () {
      for (let i = 0; i < 5; i++) {
        yield* insertEach(storage, [
          ["s", `s${i}`, 1],
          ["t", `t${i}`, 1]
        ])
      }
      return ids(yield* storage.batch("s", big))
    })

  it.scoped("gives the oldest records of the stream after that id, within the limits", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      const sIds = yield* interleaved(storage)
      expect(sIds).toHaveLength(5)

      expect(keys(yield* storage.batch("s", big, sIds[1]!))).toEqual(["s2", "s3", "s4"])
      expect(keys(yield* storage.batch("s", big, sIds[0]!))).toEqual(["s1", "s2", "s3", "s4"])
      // Just before an existing id: that record is the first
      expect(keys(yield* storage.batch("s", big, sIds[2]! - 1))).toEqual(["s2", "s3", "s4"])
      // An id of another stream counts as a position only
      const [t1] = (yield* storage.batch("t", big)).slice(1)
      expect(keys(yield* storage.batch("s", big, t1!.id))).toEqual(["s2", "s3", "s4"])
      // The limits apply from there
      expect(keys(yield* storage.batch("s", { maxRecords: 2, maxBytes: 1_000 }, sIds[0]!))).toEqual(["s1", "s2"])
      expect(keys(yield* storage.batch("s", { maxRecords: 500, maxBytes: 3 + 3 }, sIds[0]!))).toEqual(["s1", "s2"])
      // 0 is the same as no `after`
      expect(yield* storage.batch("s", big, 0)).toEqual(yield* storage.batch("s", big))
      // Reading after an id removes nothing
      expect(yield* records(storage)).toBe(10)
    })
  )

  it.scoped("after the stream's last id, or past it, the batch is empty, though other streams have later ids", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      const sIds = yield* interleaved(storage)
      const last = sIds[sIds.length - 1]!
      expect(keys(yield* storage.batch("s", big, last - 1))).toEqual(["s4"])
      expect(yield* storage.batch("s", big, last)).toEqual([])
      expect(yield* storage.batch("s", big, last + 1_000)).toEqual([])
      // t's last record came after s's last one
      expect(keys(yield* storage.batch("t", big, last))).toEqual(["t4"])
    })
  )

  it.scoped("after an id whose record is gone, the batch starts at the next record still cached", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      const sIds = yield* interleaved(storage)
      // s1 and s2 delivered
      const delivered = (yield* storage.batch("s", big)).slice(1, 3)
      yield* storage.settle(answered(delivered), 3)
      expect(keys(yield* storage.batch("s", big))).toEqual(["s0", "s3", "s4"])
      expect(keys(yield* storage.batch("s", big, sIds[1]!))).toEqual(["s3", "s4"])
      expect(keys(yield* storage.batch("s", big, sIds[2]!))).toEqual(["s3", "s4"])
    })
  )

  it.scoped("batches claimed one after the other cover the stream once, in order", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertEach(
        storage,
        Array.from({ length: 23 }, (_, i) => ["s", `k${String(i).padStart(2, "0")}`, 1] as const)
      )
      const limits = { maxRecords: 5, maxBytes: 1_000 }
      const claimed: Array<ReadonlyArray<RecordStorage.StoredRecord>> = []
      let after = 0
      for (;;) {
        const batch = yield* storage.batch("s", limits, after)
        if (batch.length === 0) break
        claimed.push(batch)
        after = batch[batch.length - 1]!.id
      }
      expect(claimed.map((batch) => batch.length)).toEqual([5, 5, 5, 5, 3])
      expect(claimed.flatMap(keys)).toEqual(keys(yield* storage.batch("s", big)))
    })
  )
})
