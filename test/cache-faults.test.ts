/**
 * The record cache attacked from the inside: a defect while the actor serves a command, and rows in
 * the file that can't be turned into records (written by something other than the cache).
 *
 * Every caller must get an answer, the actor must go on serving, and an unreadable row must be set
 * aside rather than block its stream. Real SQLite files, rows written with raw better-sqlite3.
 */
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import Sqlite from "better-sqlite3"
import { Effect, Logger, type Scope } from "effect"
import { KinesisStorageException } from "../src/Errors.js"
import * as RecordStorage from "../src/engine/cache/RecordStorage.js"
import { type ValidRecord, validate } from "../src/RecordInput.js"
import { scopedTempDir } from "./support/tempDir.js"

// ---------------------------------------------------------------------------------------------
// helpers

const all = { maxRecords: 10_000, maxBytes: Number.MAX_SAFE_INTEGER }

const record = (streamName: string, partitionKey: string, size: number) =>
  validate({ streamName, partitionKey, data: new Uint8Array(size).fill(7) }).pipe(Effect.orDie)

const tempFile = Effect.map(scopedTempDir("effect-kinesis-cache-faults-"), (dir) => path.join(dir, "cache.db"))

const open = (filename: string) => RecordStorage.make({ filename, cacheMaxBytes: 1024 * 1024 })

/** Fails the test rather than hang it when an answer never comes (on the live clock: `it.scopedLive`). */
const answered = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutFail(effect, { duration: "5 seconds", onTimeout: () => new Error("no answer within 5 seconds") })

/** A row as raw better-sqlite3 writes it: whatever the columns hold. */
interface RawRow {
  readonly stream: string
  readonly key: unknown
  readonly data: unknown
  readonly size: unknown
  readonly retryCount?: unknown
}

/** A cache file (schema made by the cache itself) holding exactly `rows`, in this order. */
const fileWith = (rows: ReadonlyArray<RawRow>): Effect.Effect<string, KinesisStorageException, Scope.Scope> =>
  Effect.gen(function* () {
    const filename = yield* tempFile
    yield* Effect.scoped(open(filename))
    const db = new Sqlite(filename, { fileMustExist: true })
    try {
      const insert = db.prepare(
        "INSERT INTO records (stream_name, partition_key, data, size, retry_count, created_at) VALUES (?, ?, ?, ?, ?, 0)"
      )
      for (const row of rows) insert.run(row.stream, row.key, row.data, row.size, row.retryCount ?? 0)
    } finally {
      db.close()
    }
    return filename
  })

/** A good row: `size` bytes of data, its size right. */
const good = (stream: string, key: string, size = 10): RawRow => ({
  stream,
  key,
  data: Buffer.alloc(size, 1),
  size: size + Buffer.byteLength(key)
})

/** What is in the closed file: count and sum of sizes of the readable rows, and the keys by stream. */
const inFile = (filename: string) => {
  const db = new Sqlite(filename, { readonly: true, fileMustExist: true })
  try {
    return db.prepare("SELECT COUNT(*) AS records, COALESCE(SUM(size), 0) AS bytes FROM records").get() as {
      records: number
      bytes: number
    }
  } finally {
    db.close()
  }
}

/** Logs written while `effect` runs (its own fiber and every fiber forked from it, such as the actor). */
const capturingLogs = () => {
  const lines: Array<{ level: string; message: string; annotations: Record<string, unknown> }> = []
  const logger = Logger.make(({ logLevel, message, annotations }) => {
    lines.push({
      level: logLevel.label,
      message: (Array.isArray(message) ? message : [message]).map(String).join(" "),
      annotations: Object.fromEntries(annotations)
    })
  })
  return { lines, layer: Logger.add(logger) }
}

const keys = (records: ReadonlyArray<RecordStorage.StoredRecord>) => records.map((r) => r.partitionKey)

const secret = "SECRET-PAYLOAD-TEXT"

// ---------------------------------------------------------------------------------------------

describe("a defect while the actor serves a command", () => {
  it.scopedLive("a command that throws is answered with KinesisStorageException saying what was found", () =>
    Effect.gen(function* () {
      const storage = yield* open(":memory:")
      yield* storage.insert(yield* record("s", "k0", 10))

      const error = yield* answered(Effect.flip(storage.settle(null as unknown as RecordStorage.BatchAnswer, 3)))
      expect(error).toBeInstanceOf(KinesisStorageException)
      expect(error.message).toMatch(/^The cache failed to settle a batch: it found TypeError: /)
      expect(error.message).toContain("null")

      // The actor goes on: every later command is served, and the counts still match the table.
      yield* storage.insert(yield* record("s", "k1", 10))
      expect(keys(yield* storage.batch("s", all))).toEqual(["k0", "k1"])
      expect(yield* storage.status).toMatchObject({ records: 2, bytes: 24 })
    })
  )

  it.scopedLive("a group commit that throws answers each of its callers; the next inserts are stored", () =>
    Effect.gen(function* () {
      const filename = yield* tempFile
      const errors = yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* open(filename)
          const fine = yield* record("s", "fine", 10)
          // Not a record at all: reading its size throws inside the actor.
          const errors = yield* answered(storage.insertAll([fine, null as unknown as ValidRecord, fine]))
          yield* storage.insert(yield* record("s", "after", 10))
          yield* storage.insertAll([fine])
          expect(keys(yield* storage.batch("s", all))).toEqual(["after", "fine"])
          expect(yield* storage.status).toMatchObject({ records: 2, bytes: 14 + 15 })
          return errors
        })
      )
      expect(errors).toHaveLength(3)
      for (const error of errors) {
        expect(error).toBeInstanceOf(KinesisStorageException)
        expect(error!.message).toMatch(/^The cache failed to store the record: it found TypeError: /)
      }
      expect(inFile(filename)).toEqual({ records: 2, bytes: 29 })
    })
  )

  it.scopedLive("a row of text where the bytes should be: batch answers with the good rows", () =>
    Effect.gen(function* () {
      const rows = [good("s", "a"), { stream: "s", key: "b", data: secret, size: 20 }, good("s", "c")]
      const inProcess = yield* open(yield* fileWith(rows))
      const batch = yield* answered(inProcess.batch("s", all))
      expect(keys(batch)).toEqual(["a", "c"])
      expect(batch.every((r) => r.data instanceof Uint8Array && r.data.byteLength === 10)).toBe(true)
      expect(yield* answered(inProcess.status)).toMatchObject({ records: 2, bytes: 22 })
    })
  )
})

describe("an unreadable row", () => {
  it.scoped("is set aside with a warning; the batch holds the good rows and the stream goes on", () =>
    Effect.gen(function* () {
      const filename = yield* fileWith([
        good("s", "s0"),
        { stream: "s", key: "s1", data: secret, size: 21 },
        good("s", "s2"),
        { stream: "s", key: "s3", data: Buffer.alloc(4), size: "many" },
        { stream: "s", key: Buffer.from("s4"), data: Buffer.alloc(4), size: 6 },
        { stream: "s", key: "s5", data: Buffer.alloc(4), size: 6, retryCount: "twice" },
        good("s", "s6"),
        good("t", "t0")
      ])
      const logs = capturingLogs()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* open(filename)
          const batch = yield* storage.batch("s", all)
          expect(keys(batch)).toEqual(["s0", "s2", "s6"])
          expect(yield* storage.status).toMatchObject({ records: 4, bytes: 48 })

          // The batch settles as any other; the stream goes on with what is stored after.
          yield* storage.settle(
            {
              _tag: "Answered",
              streamName: "s",
              firstId: batch[0]!.id,
              lastId: batch[2]!.id,
              rejected: [],
              spared: []
            },
            3
          )
          yield* storage.insert(yield* record("s", "s7", 10))
          expect(keys(yield* storage.batch("s", all))).toEqual(["s7"])
          expect(keys(yield* storage.batch("t", all))).toEqual(["t0"])
          expect(yield* storage.status).toMatchObject({ records: 2, bytes: 24 })
        }).pipe(Effect.provide(logs.layer))
      )
      expect(inFile(filename)).toEqual({ records: 2, bytes: 24 })

      const warnings = logs.lines.filter((line) => line.level === "WARN")
      expect(warnings).toHaveLength(1)
      expect(warnings[0]!.message).toMatch(/^Set aside 4 unreadable cached records of stream s \(/)
      for (const found of [
        "data is text, not bytes",
        "size is text, not a whole number of bytes",
        "partition_key is bytes, not text",
        "retry_count is text, not a whole number"
      ]) {
        expect(warnings[0]!.message).toContain(found)
      }
      expect(warnings[0]!.annotations).toMatchObject({ stream: "s", dropped: 4 })
      expect(JSON.stringify(logs.lines)).not.toContain(secret)
    })
  )

  it.scoped("a window of unreadable rows does not end the batch: it reads on to the next readable record", () =>
    Effect.gen(function* () {
      const bad = (key: string): RawRow => ({ stream: "s", key, data: `${secret}-${key}`, size: 30 })
      const storage = yield* open(yield* fileWith([bad("b0"), bad("b1"), bad("b2"), good("s", "g0"), good("s", "g1")]))
      const limits = { maxRecords: 2, maxBytes: 1_000 }
      // The first window (b0, b1) is all unreadable, so it reads on; the second (b2, g0) gives g0 alone.
      expect(keys(yield* storage.batch("s", limits))).toEqual(["g0"])
      expect(yield* storage.status).toMatchObject({ records: 2, bytes: 24 })
      expect(keys(yield* storage.batch("s", limits))).toEqual(["g0", "g1"])
    })
  )

  it.scoped("a stream of unreadable rows only gives an empty batch, and is no longer listed", () =>
    Effect.gen(function* () {
      const storage = yield* open(
        yield* fileWith([{ stream: "s", key: "b0", data: secret, size: 21 }, good("t", "t0")])
      )
      expect(yield* storage.streams).toEqual(["s", "t"])
      expect(yield* storage.batch("s", all)).toEqual([])
      expect(yield* storage.streams).toEqual(["t"])
      expect(yield* storage.status).toMatchObject({ records: 1, bytes: 12 })
    })
  )
})
