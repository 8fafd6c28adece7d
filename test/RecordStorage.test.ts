import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import Sqlite from "better-sqlite3"
import { Effect, Either, Exit, Fiber, Option } from "effect"
import { KinesisLimitExceededException, KinesisStorageException } from "../src/Errors.js"
import { validate } from "../src/RecordInput.js"
import * as RecordStorage from "../src/RecordStorage.js"
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

const insertAll = (storage: RecordStorage.RecordStorage, records: ReadonlyArray<Parameters<typeof record>>) =>
  Effect.forEach(records, (args) => Effect.flatMap(record(...args), storage.insert), { discard: true })

const ids = (records: ReadonlyArray<RecordStorage.StoredRecord>) => records.map((r) => r.id)
const keys = (records: ReadonlyArray<RecordStorage.StoredRecord>) => records.map((r) => r.partitionKey)

const expectStorageError = (error: unknown) => {
  expect(error).toBeInstanceOf(KinesisStorageException)
  expect(error).toBeInstanceOf(Error)
  expect((error as KinesisStorageException)._tag).toBe("KinesisStorageException")
}

// ---------------------------------------------------------------------------------------------

describe("RecordStorage operations", () => {
  it.scoped("insert stores the record exactly; count and cachedBytes follow", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      expect(yield* storage.count).toBe(0)
      expect(yield* storage.cachedBytes).toBe(0)

      const data = new Uint8Array([0, 1, 2, 254, 255])
      yield* storage.insert(yield* validate({ streamName: "orders", partitionKey: "clé", data }))
      expect(yield* storage.count).toBe(1)
      expect(yield* storage.cachedBytes).toBe(5 + 4)

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
      expect(yield* storage.cachedBytes).toBe(4 + 4 + 0 + 5 + 2 + 6)
    })
  )

  it.scoped("streams lists each stream with records once, in name order", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      expect(yield* storage.streams).toEqual([])
      yield* insertAll(storage, [
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
      yield* storage.delete(ids(yield* storage.batch("alpha", big)))
      expect(yield* storage.streams).toEqual(["Beta", "mid-2", "mid.1", "zeta"])
    })
  )

  it.scoped("batch returns one stream's oldest records in insertion order", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertAll(storage, [
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
      // Reading a batch removes nothing
      expect(yield* storage.count).toBe(5)
    })
  )

  it.scoped("batch after a record starts with the stream's next record", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertAll(storage, [
        ["a", "a1", 10],
        ["b", "b1", 10],
        ["a", "a2", 10],
        ["a", "a3", 10],
        ["b", "b2", 10]
      ])
      const [a1, , a3] = yield* storage.batch("a", big)
      const [b1] = yield* storage.batch("b", big)

      expect(keys(yield* storage.batch("a", big, a1!.id))).toEqual(["a2", "a3"])
      // An id of another stream works as a position too
      expect(keys(yield* storage.batch("a", big, b1!.id))).toEqual(["a2", "a3"])
      expect(keys(yield* storage.batch("a", { maxRecords: 1, maxBytes: 1_000 }, a1!.id))).toEqual(["a2"])
      expect(keys(yield* storage.batch("a", { maxRecords: 500, maxBytes: 23 }, a1!.id))).toEqual(["a2"])
      expect(yield* storage.batch("a", big, a3!.id)).toEqual([])
    })
  )

  it.scoped("continueBatch reads on after a batch only while its first record is the stream's oldest", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertAll(storage, [
        ["a", "a1", 10],
        ["b", "b1", 10],
        ["a", "a2", 10],
        ["a", "a3", 10],
        ["a", "a4", 10]
      ])
      const earlier = yield* storage.batch("a", { maxRecords: 2, maxBytes: 1_000 })
      expect(keys(earlier)).toEqual(["a1", "a2"])
      const [a1, a2] = earlier
      const rest = (limits: RecordStorage.BatchLimits) => storage.continueBatch("a", a1!.id, a2!.id, limits)

      expect(Option.map(yield* rest(big), keys)).toEqual(Option.some(["a3", "a4"]))
      expect(Option.map(yield* rest({ maxRecords: 1, maxBytes: 1_000 }), keys)).toEqual(Option.some(["a3"]))
      expect(yield* rest({ maxRecords: 0, maxBytes: 1_000 })).toEqual(Option.some([]))
      expect(yield* storage.continueBatch("none", a1!.id, a2!.id, big)).toEqual(Option.none())

      // a1 is gone: the earlier batch is no longer the head of the stream
      yield* storage.delete([a1!.id])
      expect(yield* rest(big)).toEqual(Option.none())
      // The same after clear, even once newer records of the stream arrive
      const [b1] = yield* storage.batch("b", big)
      expect(yield* storage.continueBatch("b", b1!.id, b1!.id, big)).toEqual(Option.some([]))
      yield* storage.clear
      yield* insertAll(storage, [["b", "b2", 10]])
      expect(yield* storage.continueBatch("b", b1!.id, b1!.id, big)).toEqual(Option.none())
    })
  )

  it.scoped("batch is capped by maxRecords", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertAll(
        storage,
        Array.from({ length: 10 }, (_, i) => ["s", `k${i}`, 1] as const)
      )
      expect(keys(yield* storage.batch("s", { maxRecords: 3, maxBytes: 1_000 }))).toEqual(["k0", "k1", "k2"])
      expect(keys(yield* storage.batch("s", { maxRecords: 1, maxBytes: 1_000 }))).toEqual(["k0"])
      expect(yield* storage.batch("s", { maxRecords: 10, maxBytes: 1_000 })).toHaveLength(10)
      expect(yield* storage.batch("s", { maxRecords: 11, maxBytes: 1_000 })).toHaveLength(10)
    })
  )

  it.scoped("batch is a strict prefix capped by maxBytes: it stops at the first record that does not fit", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      // sizes (data + 2-byte key): 10, 30, 50, 5, 5
      yield* insertAll(storage, [
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
      // A batch that exactly fills maxBytes takes the record that fills it
      expect(keys(yield* storage.batch("s", { maxRecords: 500, maxBytes: 90 }))).toEqual(["r0", "r1", "r2"])
      expect(keys(yield* storage.batch("s", { maxRecords: 500, maxBytes: 89 }))).toEqual(["r0", "r1"])
      // The oldest record alone is too big: nothing
      expect(yield* storage.batch("s", { maxRecords: 500, maxBytes: 9 })).toEqual([])
      // Both caps: whichever comes first
      expect(keys(yield* storage.batch("s", { maxRecords: 2, maxBytes: 1_000 }))).toEqual(["r0", "r1"])
      expect(keys(yield* storage.batch("s", { maxRecords: 5, maxBytes: 100 }))).toEqual(["r0", "r1", "r2", "r3", "r4"])
    })
  )

  it.scoped("delete removes the given records and returns how many it deleted", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertAll(storage, [
        ["s", "k0", 10],
        ["s", "k1", 20],
        ["s", "k2", 30],
        ["t", "k3", 40]
      ])
      const [r0, r1, r2] = yield* storage.batch("s", big)
      const [r3] = yield* storage.batch("t", big)
      expect(yield* storage.cachedBytes).toBe(12 + 22 + 32 + 42)

      expect(yield* storage.delete([])).toBe(0)
      expect(yield* storage.delete([r0!.id, r2!.id])).toBe(2)
      expect(keys(yield* storage.batch("s", big))).toEqual(["k1"])
      expect(yield* storage.count).toBe(2)
      expect(yield* storage.cachedBytes).toBe(22 + 42)

      // Already deleted or unknown ids are not counted, and a repeated id counts once
      expect(yield* storage.delete([r0!.id, 987_654])).toBe(0)
      expect(yield* storage.delete([r1!.id, r1!.id, r3!.id])).toBe(2)
      expect(yield* storage.count).toBe(0)
      expect(yield* storage.cachedBytes).toBe(0)
      expect(yield* storage.streams).toEqual([])
    })
  )

  it.scoped("deleteBatch removes exactly the batch, even with other streams' records between its ids", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertAll(storage, [
        ["s", "s0", 10],
        ["t", "t0", 40],
        ["s", "s1", 20],
        ["t", "t1", 40],
        ["s", "s2", 30]
      ])
      const batch = yield* storage.batch("s", { maxRecords: 2, maxBytes: 1_000 })
      expect(keys(batch)).toEqual(["s0", "s1"])
      // Recorded after the batch was read: newer than the batch, so not part of it
      yield* insertAll(storage, [["s", "s3", 50]])

      expect(yield* storage.deleteBatch([])).toBe(0)
      expect(yield* storage.deleteBatch(batch)).toBe(2)
      expect(keys(yield* storage.batch("s", big))).toEqual(["s2", "s3"])
      expect(keys(yield* storage.batch("t", big))).toEqual(["t0", "t1"])
      expect(yield* storage.cachedBytes).toBe(32 + 52 + 42 + 42)
      // Deleting it again deletes nothing and leaves the byte count alone
      expect(yield* storage.deleteBatch(batch)).toBe(0)
      expect(yield* storage.cachedBytes).toBe(32 + 52 + 42 + 42)
    })
  )

  it.scoped("deleteBatch after clear keeps the byte count exact for what was recorded since", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertAll(storage, [
        ["s", "s0", 10],
        ["s", "s1", 20]
      ])
      const batch = yield* storage.batch("s", big)
      expect(yield* storage.clear).toBe(2)
      yield* insertAll(storage, [["s", "s2", 30]])

      expect(yield* storage.deleteBatch(batch)).toBe(0)
      expect(keys(yield* storage.batch("s", big))).toEqual(["s2"])
      expect(yield* storage.cachedBytes).toBe(32)
    })
  )

  it.scoped("chargeAttempt counts failed attempts and drops records that reach maxAttempts", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      yield* insertAll(storage, [
        ["a", "a0", 10],
        ["a", "a1", 10],
        ["b", "b0", 20],
        ["b", "b1", 20],
        ["c", "c0", 30]
      ])
      const [a0, a1] = yield* storage.batch("a", big)
      const [b0, b1] = yield* storage.batch("b", big)
      const [c0] = yield* storage.batch("c", big)
      const maxAttempts = 3

      // a0, b0, c0 charged once; a1, b1 untouched
      const first = yield* storage.chargeAttempt([a0!.id, b0!.id, c0!.id], maxAttempts)
      expect(first.count).toBe(0)
      expect(first.byStream.size).toBe(0)
      expect((yield* storage.batch("a", big)).map((r) => r.retryCount)).toEqual([1, 0])
      expect((yield* storage.batch("b", big)).map((r) => r.retryCount)).toEqual([1, 0])

      // a0 and b0 reach 2; c0 is charged twice more in two calls and reaches 3 on the second
      yield* storage.chargeAttempt([a0!.id, b0!.id, c0!.id], maxAttempts)
      expect((yield* storage.batch("c", big)).map((r) => r.retryCount)).toEqual([2])
      const bytesBefore = yield* storage.cachedBytes

      // The third charge drops a0, b0, c0; a1 and b1 reach 1 and stay
      const third = yield* storage.chargeAttempt([a0!.id, a1!.id, b0!.id, b1!.id, c0!.id], maxAttempts)
      expect(third.count).toBe(3)
      expect(Object.fromEntries(third.byStream)).toEqual({ a: 1, b: 1, c: 1 })
      expect(ids(yield* storage.batch("a", big))).toEqual([a1!.id])
      expect(ids(yield* storage.batch("b", big))).toEqual([b1!.id])
      expect(yield* storage.batch("c", big)).toEqual([])
      expect((yield* storage.batch("a", big))[0]!.retryCount).toBe(1)
      expect(yield* storage.count).toBe(2)
      expect(yield* storage.cachedBytes).toBe(bytesBefore - (12 + 22 + 32))
      expect(yield* storage.streams).toEqual(["a", "b"])
    })
  )

  it.scoped(
    "chargeAttempt reports drops per stream, ignores unknown ids, and drops at once when maxAttempts is 1",
    () =>
      Effect.gen(function* () {
        const storage = yield* open(memory)
        yield* insertAll(storage, [
          ["x", "x0", 1],
          ["x", "x1", 1],
          ["x", "x2", 1],
          ["y", "y0", 1],
          ["z", "z0", 1]
        ])
        const x = yield* storage.batch("x", big)
        const [y0] = yield* storage.batch("y", big)

        const none = yield* storage.chargeAttempt([], 1)
        expect(none.count).toBe(0)
        expect(none.byStream.size).toBe(0)
        expect(yield* storage.chargeAttempt([123_456], 1)).toMatchObject({ count: 0 })

        const dropped = yield* storage.chargeAttempt([...ids(x), y0!.id, 123_456], 1)
        expect(dropped.count).toBe(4)
        expect(Object.fromEntries(dropped.byStream)).toEqual({ x: 3, y: 1 })
        expect(yield* storage.streams).toEqual(["z"])
        expect(yield* storage.count).toBe(1)
        expect(yield* storage.cachedBytes).toBe(3)
      })
  )

  it.scoped("clear deletes everything and returns how many records there were", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory)
      expect(yield* storage.clear).toBe(0)
      yield* insertAll(
        storage,
        Array.from({ length: 7 }, (_, i) => [i % 2 === 0 ? "even" : "odd", `k${i}`, i * 10] as const)
      )
      expect(yield* storage.count).toBe(7)
      expect(yield* storage.clear).toBe(7)
      expect(yield* storage.count).toBe(0)
      expect(yield* storage.cachedBytes).toBe(0)
      expect(yield* storage.streams).toEqual([])
      expect(yield* storage.batch("even", big)).toEqual([])
      expect(yield* storage.clear).toBe(0)
      // Usable again afterwards
      yield* insertAll(storage, [["odd", "again", 5]])
      expect(yield* storage.count).toBe(1)
      expect(yield* storage.cachedBytes).toBe(10)
    })
  )

  it.effect("operations after the scope closed fail with KinesisStorageException, not a defect", () =>
    Effect.gen(function* () {
      const storage = yield* Effect.scoped(open(memory))
      const rec = yield* record("s", "k", 1)
      expectStorageError(yield* Effect.flip(storage.insert(rec)))
      expectStorageError(yield* Effect.flip(storage.count))
      expectStorageError(yield* Effect.flip(storage.streams))
      expectStorageError(yield* Effect.flip(storage.batch("s", big)))
      expectStorageError(yield* Effect.flip(storage.delete([1])))
      expectStorageError(yield* Effect.flip(storage.clear))
    })
  )

  it.effect("chargeAttempt after the scope closed fails with KinesisStorageException, not a defect", () =>
    Effect.gen(function* () {
      const storage = yield* Effect.scoped(open(memory))
      const exit = yield* Effect.exit(storage.chargeAttempt([1], 3))
      expect(Exit.isFailure(exit) && exit.cause._tag).toBe("Fail")
      expectStorageError(yield* Effect.flip(storage.chargeAttempt([1], 3)))
    })
  )
})

describe("RecordStorage byte count", () => {
  it.scoped("matches the database through insert, delete, dropped attempts, clear and reopen", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      const keys = ["k", "é", "😀", "キー", "key-long-ascii"]
      let expected = 0

      // Insert records with multi-byte keys; delete some; drop some through attempts
      yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* open(filename)
          for (let i = 0; i < 30; i++) {
            const rec = yield* record(`s${i % 3}`, keys[i % keys.length]!, i * 7)
            yield* storage.insert(rec)
            expected += rec.size
          }
          expect(yield* storage.cachedBytes).toBe(expected)

          const s0 = yield* storage.batch("s0", big)
          expect(yield* storage.delete(ids(s0.slice(0, 4)))).toBe(4)
          expected -= s0.slice(0, 4).reduce((sum, r) => sum + r.size, 0)
          expect(yield* storage.cachedBytes).toBe(expected)

          const s1 = yield* storage.batch("s1", big)
          yield* storage.chargeAttempt(ids(s1), 2)
          expect(yield* storage.cachedBytes).toBe(expected)
          const dropped = yield* storage.chargeAttempt(ids(s1.slice(0, 3)), 2)
          expect(dropped.count).toBe(3)
          expected -= s1.slice(0, 3).reduce((sum, r) => sum + r.size, 0)
          expect(yield* storage.cachedBytes).toBe(expected)
        })
      )

      const onDisk = readFile(filename)
      expect(onDisk.sizes).toBe(expected)
      expect(onDisk.bytes).toBe(expected)
      expect(onDisk.count).toBe(30 - 4 - 3)

      // Reopen: the count comes back from the file
      yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* open(filename)
          expect(yield* storage.cachedBytes).toBe(expected)
          expect(yield* storage.count).toBe(onDisk.count)
          // ...and keeps counting from there
          const rec = yield* record("s2", "😀", 100)
          yield* storage.insert(rec)
          expected += rec.size
          expect(yield* storage.cachedBytes).toBe(expected)
        })
      )
      expect(readFile(filename).sizes).toBe(expected)

      // Clear, then reopen: zero
      yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* open(filename)
          expect(yield* storage.clear).toBe(onDisk.count + 1)
          expect(yield* storage.cachedBytes).toBe(0)
        })
      )
      expect(readFile(filename)).toMatchObject({ count: 0, sizes: 0 })
      yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* open(filename)
          expect(yield* storage.cachedBytes).toBe(0)
          expect(yield* storage.count).toBe(0)
        })
      )
    })
  )

  it.scoped("the limit counts the bytes already in the file when it is reopened", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      yield* Effect.scoped(Effect.flatMap(open(filename, 100), (storage) => insertAll(storage, [["s", "k", 79]])))
      const storage = yield* open(filename, 100)
      expect(yield* storage.cachedBytes).toBe(80)
      const refused = yield* Effect.flip(Effect.flatMap(record("s", "k", 20), storage.insert))
      expect(refused).toBeInstanceOf(KinesisLimitExceededException)
      yield* insertAll(storage, [["s", "k", 19]])
      expect(yield* storage.cachedBytes).toBe(100)
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
          expect(yield* storage.count).toBe(50)
          expect(yield* storage.cachedBytes).toBe(5_000)
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
          const bytes = yield* storage.cachedBytes
          expect(bytes).toBe(accepted.reduce((a, b) => a + b, 0))
          expect(bytes).toBeLessThanOrEqual(limit)
          expect(outcomes.filter(Either.isLeft).every((e) => e.left._tag === "KinesisLimitExceededException")).toBe(
            true
          )
          return bytes
        })
      )
      expect(readFile(filename).sizes).toBe(counted)
    })
  )

  it.scoped("a record that exactly fills the remaining space is accepted; one byte more is refused", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory, 100)
      yield* insertAll(storage, [["s", "k", 59]]) // 60 bytes
      // 41 bytes into 40 remaining: refused, and nothing changes
      const error = yield* Effect.flip(Effect.flatMap(record("s", "k", 40), storage.insert))
      expect(error).toBeInstanceOf(KinesisLimitExceededException)
      expect(error._tag).toBe("KinesisLimitExceededException")
      expect(yield* storage.cachedBytes).toBe(60)
      expect(yield* storage.count).toBe(1)
      // 40 bytes into 40 remaining: accepted
      yield* insertAll(storage, [["s", "k", 39]])
      expect(yield* storage.cachedBytes).toBe(100)
      // Full: even the smallest record is refused
      const full = yield* Effect.flip(Effect.flatMap(record("s", "k", 0), storage.insert))
      expect(full).toBeInstanceOf(KinesisLimitExceededException)
      expect(yield* storage.count).toBe(2)
      // Deleting makes room again
      yield* storage.delete(ids((yield* storage.batch("s", big)).slice(0, 1)))
      yield* insertAll(storage, [["s", "k", 59]])
      expect(yield* storage.cachedBytes).toBe(100)
    })
  )

  it.scoped("a record larger than the whole cache is refused", () =>
    Effect.gen(function* () {
      const storage = yield* open(memory, 10)
      const error = yield* Effect.flip(Effect.flatMap(record("s", "k", 10), storage.insert))
      expect(error).toBeInstanceOf(KinesisLimitExceededException)
      expect(yield* storage.count).toBe(0)
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
      expect(yield* storage.count).toBe(callers * each)
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
          yield* storage.chargeAttempt([alpha[0]!.id, alpha[1]!.id], 10)
          yield* storage.chargeAttempt([alpha[1]!.id], 10)
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
      yield* insertAll(storage, [["alpha", "new", 1]])
      expect(keys(yield* storage.batch("alpha", big)).at(-1)).toBe("new")
      const dropped = yield* storage.chargeAttempt([alpha[1]!.id], 3)
      expect(dropped.count).toBe(1)
    })
  )

  it.scoped("a record is on disk as soon as insert returns", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      const storage = yield* open(filename)
      yield* insertAll(storage, [["s", "durable", 3]])
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
      yield* insertAll(storage, [["s", "k", 10]])
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
          yield* insertAll(first, [["s", "first", 1]])

          const started = Date.now()
          const error = yield* Effect.flip(Effect.scoped(open(filename)))
          const elapsed = Date.now() - started
          expectStorageError(error)
          expect(elapsed).toBeLessThan(1_000)

          // The first owner is unaffected
          yield* insertAll(first, [["s", "still-mine", 1]])
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
      yield* insertAll(east, [
        ["s", "east-1", 1],
        ["s", "east-2", 1]
      ])
      yield* insertAll(west, [["s", "west", 5]])
      expect(keys(yield* east.batch("s", big))).toEqual(["east-1", "east-2"])
      expect(keys(yield* west.batch("s", big))).toEqual(["west"])
      expect(yield* west.cachedBytes).toBe(9)
      expect(yield* east.clear).toBe(2)
      expect(yield* west.count).toBe(1)
    })
  )
})
