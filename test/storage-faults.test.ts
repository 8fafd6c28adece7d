/**
 * The record cache when things go wrong or get large: group commit under load, a delete that the
 * database refuses after the service took the records, a corrupt file, giving space back to the file
 * system, and callers that change or give away their bytes after handing them over.
 *
 * Every fault is a real one on a real SQLite file: a full disk (a small tmpfs, where one can be
 * mounted) or a trigger that raises in the middle of a DELETE, pages of the file overwritten with
 * garbage.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import Sqlite from "better-sqlite3"
import { Deferred, Effect, Either, Fiber, type Scope } from "effect"
import {
  type KinesisLimitExceededException,
  KinesisStorageException,
  KinesisValidationException
} from "../src/Errors.js"
import * as RecordStorage from "../src/engine/cache/RecordStorage.js"
import { validate } from "../src/RecordInput.js"
import { cached, flushData, makeEngine, makeScriptedSender, resourceNotFound } from "./support/senders.js"
import { scopedTempDir } from "./support/tempDir.js"

// ---------------------------------------------------------------------------------------------
// helpers

const KiB = 1024
const MiB = 1024 * KiB
const all = { maxRecords: 1_000_000, maxBytes: Number.MAX_SAFE_INTEGER }

/** A validated record whose data is `size` bytes filled with `fill`. */
const record = (streamName: string, partitionKey: string, size: number, fill = 0) =>
  validate({ streamName, partitionKey, data: new Uint8Array(size).fill(fill) }).pipe(Effect.orDie)

const tempFile = Effect.map(scopedTempDir("effect-kinesis-faults-"), (dir) => path.join(dir, "cache.db"))

const open = (filename: string, cacheMaxBytes = 256 * MiB) => RecordStorage.make({ filename, cacheMaxBytes })

/** Opens the file, runs `use`, closes it. */
const withStorage = <A, E>(
  filename: string,
  use: (storage: RecordStorage.RecordStorage) => Effect.Effect<A, E>
): Effect.Effect<A, E | KinesisStorageException> => Effect.scoped(Effect.flatMap(open(filename), use))

const keys = (records: ReadonlyArray<RecordStorage.StoredRecord>) => records.map((r) => r.partitionKey)

const answered = (
  batch: ReadonlyArray<RecordStorage.StoredRecord>,
  rejected: ReadonlyArray<number> = []
): RecordStorage.BatchAnswer => ({
  _tag: "Answered",
  streamName: batch[0]!.streamName,
  firstId: batch[0]!.id,
  lastId: batch[batch.length - 1]!.id,
  rejected,
  spared: []
})

const refused = (batch: ReadonlyArray<RecordStorage.StoredRecord>): RecordStorage.BatchAnswer => ({
  _tag: "Refused",
  streamName: batch[0]!.streamName,
  firstId: batch[0]!.id,
  lastId: batch[batch.length - 1]!.id
})

/** Runs `f` on the closed cache file through a connection of its own. */
const withFile = <A>(filename: string, f: (db: Sqlite.Database) => A): A => {
  const db = new Sqlite(filename, { fileMustExist: true })
  try {
    return f(db)
  } finally {
    db.close()
  }
}

/** The records in the closed file: count and sum of sizes. */
const fileTotals = (filename: string) =>
  withFile(
    filename,
    (db) =>
      db.prepare("SELECT COUNT(*) AS records, COALESCE(SUM(size), 0) AS bytes FROM records").get() as {
        records: number
        bytes: number
      }
  )

/** Bytes the cache takes on disk: the database file and its write-ahead log. */
const onDisk = (filename: string) =>
  [filename, `${filename}-wal`].reduce((total, name) => total + (fs.existsSync(name) ? fs.statSync(name).size : 0), 0)

const walSize = (filename: string) => (fs.existsSync(`${filename}-wal`) ? fs.statSync(`${filename}-wal`).size : 0)

// ---------------------------------------------------------------------------------------------

describe("group commit", () => {
  it.scoped("1,000 concurrent inserts are all answered and committed in a few transactions", () =>
    Effect.gen(function* () {
      const grouped = yield* tempFile
      const oneByOne = yield* tempFile
      const rec = yield* record("s", "k", 99)

      const storage = yield* open(grouped)
      const outcomes = yield* Effect.forEach(
        Array.from({ length: 1_000 }, () => rec),
        (r) => Effect.either(storage.insert(r)),
        { concurrency: "unbounded" }
      )
      expect(outcomes.filter(Either.isRight)).toHaveLength(1_000)
      expect(yield* storage.status).toMatchObject({ records: 1_000, bytes: 100_000 })
      expect(yield* cached(storage, "s")).toHaveLength(1_000)

      // Each commit appends the pages it changed to the write-ahead log (and the log is checkpointed
      // back to its start past 1,000 pages). 300 inserts one after the other, each its own commit,
      // write several pages each; 1,000 concurrent ones, grouped, write a few dozen pages in all.
      const sequential = yield* open(oneByOne)
      for (let i = 0; i < 300; i++) yield* sequential.insert(rec)
      expect(yield* sequential.status).toMatchObject({ records: 300, bytes: 30_000 })
      expect(walSize(oneByOne)).toBeGreaterThan(1 * MiB)
      expect(walSize(grouped)).toBeLessThan(walSize(oneByOne) / 4)
      expect(onDisk(grouped)).toBeLessThan(1 * MiB)
    })
  )

  // Real time: the point is what the burst does to the event loop.
  it.scopedLive("a burst of 30 records of 1 MiB is split by bytes, and the event loop turns during it", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      const storage = yield* open(filename)
      const records = yield* Effect.forEach(
        Array.from({ length: 30 }, (_, i) => i),
        (i) => record("big", `k${String(i).padStart(2, "0")}`, MiB - 3, i)
      )
      let answered = 0
      const turn = yield* Deferred.make<number>()
      const burst = yield* Effect.fork(
        Effect.forEach(
          records,
          (rec) =>
            storage.insert(rec).pipe(
              Effect.tap(() =>
                Effect.sync(() => {
                  answered++
                  // Once the first record is committed, ask the event loop for a turn: it must come
                  // while the rest of the burst is still being written.
                  if (answered === 1) setImmediate(() => Deferred.unsafeDone(turn, Effect.succeed(answered)))
                })
              )
            ),
          { concurrency: "unbounded", discard: true }
        )
      )
      const answeredAtTurn = yield* Deferred.await(turn)
      yield* Fiber.join(burst)

      expect(answered).toBe(30)
      expect(answeredAtTurn).toBeLessThan(30)
      const stored = yield* cached(storage, "big")
      expect(keys(stored)).toEqual(records.map((r) => r.partitionKey))
      expect(stored.every((r, i) => r.data.byteLength === MiB - 3 && r.data.every((byte) => byte === i))).toBe(true)
      expect(yield* storage.status).toMatchObject({ records: 30, bytes: 30 * MiB })
      // One 30 MiB transaction would have grown the write-ahead log past 30 MiB (and SQLite cuts it back
      // to 16 MiB at most); groups of at most 4 MiB keep it to a few MiB.
      expect(walSize(filename)).toBeLessThan(12 * MiB)
    })
  )
})

// ---------------------------------------------------------------------------------------------

/**
 * Makes every DELETE on `records` fail, the way a full disk does, for as long as the cache holds a
 * record of stream "fault" that was never charged an attempt. Refusing that record once (an UPDATE,
 * which the trigger lets through) lifts the fault while the cache is open: the cache owns the only
 * connection to the file, with an exclusive lock, so nothing else can change the file then.
 */
const failDeletesWhileFaultRecord = (filename: string) =>
  withFile(filename, (db) =>
    db.exec(`CREATE TRIGGER fail_deletes BEFORE DELETE ON records
      WHEN EXISTS (SELECT 1 FROM records WHERE stream_name = 'fault' AND retry_count = 0)
      BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`)
  )

/** A cache file whose deletes fail until its "fault" record is charged once. */
const fileWithFailingDeletes = Effect.gen(function* () {
  const filename = yield* tempFile
  yield* withStorage(filename, () => Effect.void)
  failDeletesWhileFaultRecord(filename)
  return filename
})

const liftFault = (storage: RecordStorage.RecordStorage) =>
  Effect.flatMap(storage.batch("fault", all), (fault) => storage.settle(refused(fault), 100))

/** A way to make deletes fail on a cache file, and to end it. */
interface DeleteFault {
  readonly filename: string
  /** Done once the cache is open and filled; returns the records it added to the cache itself. */
  readonly prepare: (
    storage: RecordStorage.RecordStorage
  ) => Effect.Effect<
    { readonly records: number; readonly bytes: number },
    KinesisStorageException | KinesisLimitExceededException
  >
  /** From now on a delete fails. */
  readonly start: Effect.Effect<void>
  /** From now on a delete succeeds again. */
  readonly end: (storage: RecordStorage.RecordStorage) => Effect.Effect<void, KinesisStorageException>
}

/**
 * A real full disk: the cache in a 16 MiB tmpfs (mounting one takes root), filled up with another
 * file. Fails when no tmpfs can be mounted here.
 */
const fullDisk: Effect.Effect<DeleteFault, unknown, Scope.Scope> = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.try(() => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-kinesis-full-"))
      try {
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", dir], { stdio: "ignore" })
      } catch (error) {
        fs.rmdirSync(dir)
        throw error
      }
      return dir
    }),
    (dir) =>
      Effect.sync(() => {
        execFileSync("umount", [dir], { stdio: "ignore" })
        fs.rmdirSync(dir)
      })
  )
  const filler = path.join(dir, "filler")
  return {
    filename: path.join(dir, "cache.db"),
    prepare: () => Effect.succeed({ records: 0, bytes: 0 }),
    start: Effect.sync(() => {
      const block = Buffer.alloc(4 * KiB)
      try {
        for (;;) fs.appendFileSync(filler, block)
      } catch (error) {
        expect((error as NodeJS.ErrnoException).code).toBe("ENOSPC")
      }
    }),
    end: () => Effect.sync(() => fs.rmSync(filler))
  }
})

/** The same through the trigger: deletes fail while the "fault" record has not been charged. */
const triggerFault: Effect.Effect<DeleteFault, KinesisStorageException, Scope.Scope> = Effect.map(
  fileWithFailingDeletes,
  (filename) => {
    let faultRecord: RecordStorage.StoredRecord | undefined
    return {
      filename,
      prepare: (storage) =>
        Effect.gen(function* () {
          yield* storage.insert(yield* record("fault", "fault", 1))
          const [stored] = yield* storage.batch("fault", all)
          faultRecord = stored
          return { records: 1, bytes: stored!.size }
        }),
      // The trigger fails deletes from the start; `prepare` inserted what it needs.
      start: Effect.void,
      end: (storage) => Effect.asVoid(storage.settle(refused([faultRecord!]), 100))
    }
  }
)

describe("a delivered batch whose delete fails", () => {
  it.scoped("is never handed out again, and is deleted once the database allows", () =>
    Effect.gen(function* () {
      const filename = yield* fileWithFailingDeletes
      const storage = yield* open(filename)
      const fault = yield* record("fault", "fault", 1)
      yield* storage.insert(fault)
      for (let i = 0; i < 5; i++) yield* storage.insert(yield* record("s", `s${i}`, 10 * (i + 1)))

      const delivered = yield* storage.batch("s", { maxRecords: 3, maxBytes: 1_000 })
      expect(keys(delivered)).toEqual(["s0", "s1", "s2"])
      const error = yield* Effect.flip(storage.settle(answered(delivered), 3))
      expect(error).toBeInstanceOf(KinesisStorageException)
      expect(error._tag).toBe("KinesisStorageException")

      // Not handed out again, whatever the limits: the next batch starts after them
      expect(keys(yield* storage.batch("s", all))).toEqual(["s3", "s4"])
      expect(keys(yield* storage.batch("s", { maxRecords: 1, maxBytes: 1_000 }))).toEqual(["s3"])
      expect(keys(yield* storage.batch("s", { maxRecords: 2, maxBytes: 42 + 52 }))).toEqual(["s3", "s4"])
      expect(keys(yield* storage.batch("s", { maxRecords: 2, maxBytes: 42 + 51 }))).toEqual(["s3"])
      // Still in the file, and counted: the delete has not happened
      expect(yield* storage.status).toMatchObject({ records: 6, bytes: fault.size + 12 + 22 + 32 + 42 + 52 })

      // A later command tries again; while the fault lasts, the records stay held back
      expect(yield* storage.streams).toEqual(["fault", "s"])
      expect(keys(yield* storage.batch("s", all))).toEqual(["s3", "s4"])
      yield* storage.insert(yield* record("s", "s5", 60))
      expect(keys(yield* storage.batch("s", all))).toEqual(["s3", "s4", "s5"])

      // The fault goes: the next command deletes them, and the count is exact again
      yield* liftFault(storage)
      expect(yield* storage.streams).toEqual(["fault", "s"])
      const expected = fault.size + 42 + 52 + 62
      expect(yield* storage.status).toMatchObject({ records: 4, bytes: expected })
      expect(keys(yield* storage.batch("s", all))).toEqual(["s3", "s4", "s5"])

      // ...and the rest goes the ordinary way
      yield* storage.settle(answered(yield* storage.batch("s", all)), 3)
      expect(yield* storage.streams).toEqual(["fault"])
      expect(yield* storage.status).toMatchObject({ records: 1, bytes: fault.size })
    })
  )

  it.scoped("after a partial answer: the accepted records are held back, the rejected ones stay and come back", () =>
    Effect.gen(function* () {
      const filename = yield* fileWithFailingDeletes
      const expected = yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* open(filename)
          const fault = yield* record("fault", "fault", 1)
          yield* storage.insert(fault)
          for (let i = 0; i < 4; i++) yield* storage.insert(yield* record("s", `s${i}`, 10))
          const batch = yield* storage.batch("s", all)
          const [, s1] = batch

          expect(yield* Effect.flip(storage.settle(answered(batch, [s1!.id]), 3))).toBeInstanceOf(
            KinesisStorageException
          )
          // s1 was rejected: it is sent again (charged or not, it was not delivered)
          expect(keys(yield* storage.batch("s", all))).toEqual(["s1"])

          yield* liftFault(storage)
          yield* storage.streams
          expect(keys(yield* storage.batch("s", all))).toEqual(["s1"])
          expect(yield* storage.status).toMatchObject({ records: 2, bytes: fault.size + 12 })
          return fault.size + 12
        })
      )
      // What the cache counted is what is in the file
      expect(fileTotals(filename)).toEqual({ records: 2, bytes: expected })
    })
  )

  it.scoped(
    "on a full disk (a 16 MiB tmpfs where one can be mounted, else the failing trigger): held back, then deleted",
    () =>
      Effect.gen(function* () {
        const fault = yield* Effect.orElse(fullDisk, () => triggerFault)
        const storage = yield* open(fault.filename)
        const rec = yield* record("s", "k", 999)
        yield* Effect.forEach(
          Array.from({ length: 300 }, () => rec),
          (r) => storage.insert(r),
          { concurrency: "unbounded", discard: true }
        )
        const others = yield* fault.prepare(storage)
        const total = (records: number) => ({
          records: records + others.records,
          bytes: records * 1_000 + others.bytes
        })
        expect(yield* storage.status).toMatchObject(total(300))

        yield* fault.start
        const delivered = yield* storage.batch("s", { maxRecords: 100, maxBytes: Number.MAX_SAFE_INTEGER })
        expect(yield* Effect.flip(storage.settle(answered(delivered), 3))).toBeInstanceOf(KinesisStorageException)
        const next = yield* storage.batch("s", all)
        expect(next).toHaveLength(200)
        expect(next[0]!.id).toBe(delivered[99]!.id + 1)
        expect(yield* storage.status).toMatchObject(total(300))

        yield* fault.end(storage)
        yield* storage.streams
        expect(yield* storage.status).toMatchObject(total(200))
        expect(yield* storage.batch("s", all)).toEqual(next)
      })
  )

  it.scoped(
    "records held back inside a later batch's range are not charged or reported as dropped when it is refused",
    () =>
      Effect.gen(function* () {
        const filename = yield* fileWithFailingDeletes
        const storage = yield* open(filename)
        const fault = yield* record("fault", "fault", 1)
        yield* storage.insert(fault)
        for (let i = 0; i < 4; i++) yield* storage.insert(yield* record("s", `s${i}`, 10))
        const first = yield* storage.batch("s", all)
        // s1 rejected, s0, s2 and s3 delivered; their delete fails, so they are held back
        yield* Effect.flip(storage.settle(answered(first, [first[1]!.id]), 1))
        yield* storage.insert(yield* record("s", "s4", 10))
        // The disk has room again, before anything retried the delete
        yield* liftFault(storage)

        // The next batch is s1 and s4: its range spans the held-back s2 and s3
        const second = yield* storage.batch("s", all)
        expect(keys(second)).toEqual(["s1", "s4"])
        const dropped = yield* storage.settle(refused(second), 1)
        // Only the two records sent in this batch were refused; s2 and s3 were delivered
        expect(dropped.count).toBe(2)
        expect(Object.fromEntries(dropped.byStream)).toEqual({ s: 2 })
        yield* storage.streams
        expect(yield* storage.status).toMatchObject({ records: 1, bytes: fault.size })
      })
  )

  it.scoped("through the flush: the flush stops with KinesisStorageException and never sends those records again", () =>
    Effect.gen(function* () {
      const filename = yield* fileWithFailingDeletes
      const storage = yield* open(filename)
      const data = (key: string) => record("a-data", key, 10)
      for (const key of ["a0", "a1", "a2"]) yield* storage.insert(yield* data(key))
      // The stream "fault" does not exist: each flush refuses it, which charges it, which lifts the fault.
      yield* storage.insert(yield* record("fault", "fault", 1))
      const { sender, calls } = yield* makeScriptedSender((stream, entries) =>
        stream === "fault"
          ? Effect.fail(resourceNotFound(stream))
          : Effect.succeed(entries.map(() => ({ _tag: "Accepted" as const })))
      )
      // One stream at a time: the storage error stops the flush before "fault" is sent.
      const engine = yield* makeEngine(storage, sender, 5, { streamConcurrency: 1 })

      const error = yield* Effect.flip(engine.flush)
      expect(error).toBeInstanceOf(KinesisStorageException)
      // The delete failed: a-data is held back, "fault" refused (and so the fault is lifted)
      expect(yield* engine.flush).toEqual(flushData({ recordsFailed: 1, recordsRemaining: 4 }))
      yield* storage.insert(yield* data("a3"))
      expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 1, recordsFailed: 1, recordsRemaining: 1 }))

      const sent = (yield* calls).map((batch) => [batch.stream, batch.entries.map((entry) => entry.partitionKey)])
      expect(sent).toEqual([
        ["a-data", ["a0", "a1", "a2"]],
        ["fault", ["fault"]],
        ["a-data", ["a3"]],
        ["fault", ["fault"]]
      ])
      expect(yield* storage.streams).toEqual(["fault"])
      expect(yield* storage.status).toMatchObject({ records: 1, bytes: 6 })
    })
  )
})

// ---------------------------------------------------------------------------------------------

/** Overwrites with garbage every page of the file that holds rows of the records table (not its root, not its index). */
const corruptRecordPages = (filename: string) => {
  const pages = withFile(
    filename,
    (db) =>
      db
        .prepare(
          `SELECT pageno, pgoffset, pgsize FROM dbstat
           WHERE name = 'records' AND path <> '/' AND pagetype IN ('leaf', 'overflow')`
        )
        .all() as Array<{ pageno: number; pgoffset: number; pgsize: number }>
  )
  expect(pages.length).toBeGreaterThan(2)
  expect(pages.every((page) => page.pageno > 2)).toBe(true)
  const fd = fs.openSync(filename, "r+")
  try {
    for (const page of pages) fs.writeSync(fd, Buffer.alloc(page.pgsize, 0xa5), 0, page.pgsize, page.pgoffset)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * A cache file past the size checked at open (32 MiB of padding in stream `padding`), then 40
 * records of 3 KiB, keys `k0` to `k39`, in the streams `streamOf` gives.
 */
const filledPastOpenCheck = (streamOf: (i: number) => string) =>
  Effect.gen(function* () {
    const filename = yield* tempFile
    yield* withStorage(filename, (storage) =>
      Effect.zipRight(
        Effect.forEach(
          Array.from({ length: 34 }, (_, i) => i),
          (i) => Effect.flatMap(record("padding", `pad${i}`, MiB - 16, i), storage.insert)
        ),
        Effect.forEach(
          Array.from({ length: 40 }, (_, i) => i),
          (i) => Effect.flatMap(record(streamOf(i), `k${i}`, 3 * KiB, i), storage.insert)
        )
      )
    )
    return filename
  })

/** Overwrites page 2, the first pointer-map page of a cache with incremental vacuum. */
const corruptPointerMap = (filename: string) => {
  const fd = fs.openSync(filename, "r+")
  try {
    fs.writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 4096)
  } finally {
    fs.closeSync(fd)
  }
}

describe("a corrupt cache file", () => {
  it.scoped.each([
    ["pages of records", corruptRecordPages],
    ["page 2, the pointer map", corruptPointerMap]
  ] as const)(
    "up to 32 MiB, damage to %s is found at open: the cache is refused before any record is stored",
    ([, damage]) =>
      Effect.gen(function* () {
        const filename = yield* tempFile
        yield* withStorage(filename, (storage) =>
          Effect.forEach(
            Array.from({ length: 40 }, (_, i) => i),
            (i) => Effect.flatMap(record(`s${i % 2}`, `k${i}`, 3 * KiB, i), storage.insert)
          )
        )
        damage(filename)
        const error = yield* Effect.flip(Effect.scoped(open(filename)))
        expect(error).toBeInstanceOf(KinesisStorageException)
        expect(error.message).toContain("corrupt")
        expect(error.recoverySuggestion).toMatch(/move the file away/i)
      })
  )

  it.scoped(
    "past 32 MiB, the first operation that finds it fails with KinesisStorageException, and every one after, insert too, says the file is corrupt",
    () =>
      Effect.gen(function* () {
        const filename = yield* filledPastOpenCheck((i) => `s${i % 2}`)
        expect(fs.existsSync(`${filename}-wal`)).toBe(false)
        corruptRecordPages(filename)

        const storage = yield* open(filename)
        const first = yield* Effect.flip(storage.batch("s0", all))
        expect(first).toBeInstanceOf(KinesisStorageException)
        expect(first.message).toContain("corrupt")

        const rec = yield* record("s0", "new", 10)
        for (const operation of [
          storage.insert(rec),
          storage.clear,
          storage.status,
          storage.streams,
          storage.batch("s1", all)
        ]) {
          const error = yield* Effect.flip(operation)
          expect(error).toBeInstanceOf(KinesisStorageException)
          expect(error._tag).toBe("KinesisStorageException")
          expect(error.message).toContain("corrupt")
          expect(error.message).toContain(filename)
          expect(error.recoverySuggestion).toMatch(/move the file away/i)
        }
        const [grouped] = yield* storage.insertAll([rec])
        expect(grouped).toBeInstanceOf(KinesisStorageException)
        expect(grouped!.message).toContain("corrupt")
        const settling = yield* Effect.flip(
          storage.settle({ _tag: "Refused", streamName: "s0", firstId: 1, lastId: 2 }, 3)
        )
        expect(settling.message).toContain("corrupt")
      })
  )

  it.scoped("past 32 MiB, found by clear, it fails every later insert the same way", () =>
    Effect.gen(function* () {
      const filename = yield* filledPastOpenCheck(() => "s")
      corruptRecordPages(filename)

      const storage = yield* open(filename)
      expect(yield* Effect.flip(storage.clear)).toBeInstanceOf(KinesisStorageException)
      for (let i = 0; i < 3; i++) {
        const error = yield* Effect.flip(Effect.flatMap(record("s", `after${i}`, 1), storage.insert))
        expect(error).toBeInstanceOf(KinesisStorageException)
        expect(error.message).toContain("corrupt")
      }
    })
  )
})

// ---------------------------------------------------------------------------------------------

/** A cache file filled with 220 records of 100 KiB (over 20 MiB on disk), and its size then. */
const filledFile = Effect.gen(function* () {
  const filename = yield* tempFile
  const storage = yield* open(filename)
  const rec = yield* record("s", "k", 100 * KiB - 1)
  for (let i = 0; i < 220; i++) yield* storage.insert(rec)
  const peak = onDisk(filename)
  expect(peak).toBeGreaterThan(20 * MiB)
  return { filename, storage, peak }
})

describe("giving space back", () => {
  it.scoped("the file shrinks well below its peak once its records are delivered", () =>
    Effect.gen(function* () {
      const { filename, storage, peak } = yield* filledFile

      for (let batch = yield* storage.batch("s", all); batch.length > 0; batch = yield* storage.batch("s", all)) {
        yield* storage.settle(answered(batch.slice(0, 100)), 3)
      }
      expect(yield* storage.status).toMatchObject({ records: 0, bytes: 0 })
      expect(onDisk(filename)).toBeLessThan(peak / 4)
    })
  )

  it.scoped("the file shrinks well below its peak once the cache is cleared", () =>
    Effect.gen(function* () {
      const { filename, storage, peak } = yield* filledFile

      expect(yield* storage.clear).toBe(220)
      expect(onDisk(filename)).toBeLessThan(peak / 4)
    })
  )

  it.scoped("a clear gives at least one step of free pages (1,024 pages) back to the file", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      const pages = () =>
        withFile(filename, (db) => ({
          total: db.pragma("page_count", { simple: true }) as number,
          free: db.pragma("freelist_count", { simple: true }) as number
        }))
      yield* withStorage(filename, (storage) =>
        Effect.gen(function* () {
          const rec = yield* record("s", "k", 100 * KiB - 1)
          for (let i = 0; i < 220; i++) yield* storage.insert(rec)
        })
      )
      const full = pages()
      expect(full.total).toBeGreaterThan(5_000)
      expect(yield* withStorage(filename, (storage) => storage.clear)).toBe(220)

      // Measured once closed, when the write-ahead log has been checkpointed into the file
      const cleared = pages()
      expect(full.total - cleared.total).toBeGreaterThanOrEqual(1_024)
      expect(fs.statSync(filename).size).toBe(cleared.total * 4_096)
    })
  )
})

// ---------------------------------------------------------------------------------------------

describe("the caller's bytes", () => {
  it.scoped("changing the buffer after validate and insert does not change what is stored", () =>
    Effect.gen(function* () {
      const storage = yield* open(":memory:")
      const data = Uint8Array.from([1, 2, 3, 4])
      const valid = yield* validate({ streamName: "s", partitionKey: "k", data })
      data.fill(9)
      const inserting = yield* Effect.fork(storage.insert(valid))
      data.fill(8)
      yield* Fiber.join(inserting)
      data.fill(7)

      const [stored] = yield* cached(storage, "s")
      expect(Array.from(stored!.data)).toEqual([1, 2, 3, 4])
      expect(stored!.size).toBe(5)
    })
  )

  it.scoped("a view into a larger buffer is copied as the view alone, and the buffer may change after", () =>
    Effect.gen(function* () {
      const storage = yield* open(":memory:")
      const whole = Uint8Array.from({ length: 16 }, (_, i) => i)
      const valid = yield* validate({ streamName: "s", partitionKey: "k", data: whole.subarray(4, 8) })
      whole.fill(0)
      yield* storage.insert(valid)
      const [stored] = yield* cached(storage, "s")
      expect(Array.from(stored!.data)).toEqual([4, 5, 6, 7])
    })
  )

  it.scoped("a buffer transferred away after validate still stores its bytes", () =>
    Effect.gen(function* () {
      const storage = yield* open(":memory:")
      const data = Uint8Array.from([5, 6, 7])
      const valid = yield* validate({ streamName: "s", partitionKey: "k", data })
      structuredClone(data.buffer, { transfer: [data.buffer] })
      expect(data.byteLength).toBe(0)
      yield* storage.insert(valid)
      const [stored] = yield* cached(storage, "s")
      expect(Array.from(stored!.data)).toEqual([5, 6, 7])
    })
  )

  it.scoped("a detached buffer is refused with KinesisValidationException and nothing is stored", () =>
    Effect.gen(function* () {
      const storage = yield* open(":memory:")
      const data = Uint8Array.from([1, 2, 3])
      structuredClone(data.buffer, { transfer: [data.buffer] })
      const error = yield* Effect.flip(
        Effect.flatMap(validate({ streamName: "s", partitionKey: "k", data }), storage.insert)
      )
      expect(error).toBeInstanceOf(KinesisValidationException)
      expect(error._tag).toBe("KinesisValidationException")
      expect(error.message).toMatch(/detached/)
      expect(yield* storage.status).toMatchObject({ records: 0, bytes: 0 })
    })
  )
})
