/**
 * The durable record cache: a SQLite table of records waiting to be sent, with an exact running
 * count of the bytes it holds.
 *
 * Concurrent inserts are committed together (group commit): each caller still returns only after
 * its own row is committed, and the cache limit is checked and applied in the same step, so
 * concurrent callers never take the cache over `cacheMaxBytes`.
 *
 * @since 0.1.0
 */

import * as os from "node:os"
import * as path from "node:path"
import type { SqlError } from "@effect/sql/SqlError"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import { KinesisLimitExceededException, KinesisStorageException } from "./Errors.js"
import * as Database from "./internal/database.js"
import type { ValidRecord } from "./RecordInput.js"

/** A cached record, as the flush engine reads it back. */
export interface StoredRecord {
  readonly id: number
  readonly streamName: string
  readonly partitionKey: string
  readonly data: Uint8Array
  readonly size: number
  /** Failed attempts charged so far. */
  readonly retryCount: number
}

/** The limits of one batch: at most `maxRecords` records and `maxBytes` bytes of record sizes. */
export interface BatchLimits {
  readonly maxRecords: number
  readonly maxBytes: number
}

/** The records that reached their attempt limit and were dropped, by stream. */
export interface DroppedRecords {
  readonly count: number
  readonly byStream: ReadonlyMap<string, number>
}

/** The record cache service. Every operation fails only with `KinesisStorageException` (and the cache limit). */
export interface RecordStorage {
  /** Stores one record once it fits under `cacheMaxBytes`; succeeds only after the row is committed. */
  readonly insert: (record: ValidRecord) => Effect.Effect<void, KinesisLimitExceededException | KinesisStorageException>
  /** The names of the streams that have cached records, in name order. */
  readonly streams: Effect.Effect<ReadonlyArray<string>, KinesisStorageException>
  /** The oldest records of one stream, in insertion order: the longest prefix within `limits`. */
  readonly batch: (
    streamName: string,
    limits: BatchLimits
  ) => Effect.Effect<ReadonlyArray<StoredRecord>, KinesisStorageException>
  /** Deletes records by id; returns how many were deleted. */
  readonly delete: (ids: ReadonlyArray<number>) => Effect.Effect<number, KinesisStorageException>
  /**
   * Charges one failed attempt to each record; a record whose failed attempts reach `maxAttempts`
   * is deleted and reported.
   */
  readonly chargeAttempt: (
    ids: ReadonlyArray<number>,
    maxAttempts: number
  ) => Effect.Effect<DroppedRecords, KinesisStorageException>
  /** Deletes every cached record in one transaction; returns how many there were. */
  readonly clear: Effect.Effect<number, KinesisStorageException>
  /** The sum of the sizes of the cached records. */
  readonly cachedBytes: Effect.Effect<number>
  /** How many records are cached. */
  readonly count: Effect.Effect<number, KinesisStorageException>
}

/** The `RecordStorage` service tag. */
export const RecordStorage = Context.GenericTag<RecordStorage>("effect-kinesis/RecordStorage")

/** Where and how large the cache is. */
export interface RecordStorageOptions {
  /** The database file, or `":memory:"` for a cache that is not persisted. */
  readonly filename: string
  /** The most bytes of record sizes the cache may hold. */
  readonly cacheMaxBytes: number
}

/** The per-user directory the cache lives in when no `storagePath` is given. */
export const defaultStoragePath = (): string => {
  if (process.platform === "win32") {
    return path.join(process.env.LOCALAPPDATA ?? path.join(os.homedir(), "AppData", "Local"), "effect-kinesis")
  }
  if (process.platform === "darwin") {
    return path.join(os.homedir(), "Library", "Application Support", "effect-kinesis")
  }
  return path.join(process.env.XDG_DATA_HOME || path.join(os.homedir(), ".local", "share"), "effect-kinesis")
}

/** The cache file for a region inside `storagePath`: `kinesis-records-<region>.db`. */
export const cacheFilename = (storagePath: string, region: string): string =>
  path.join(storagePath, `kinesis-records-${region.replace(/[^a-zA-Z0-9_-]/g, "_")}.db`)

interface PendingInsert {
  readonly record: ValidRecord
  readonly done: Deferred.Deferred<void, KinesisLimitExceededException | KinesisStorageException>
}

/** How many waiting inserts one group commit takes at most. */
const maxGroupSize = 500

interface RecordRow {
  readonly id: number
  readonly stream_name: string
  readonly partition_key: string
  readonly data: Uint8Array
  readonly size: number
  readonly retry_count: number
}

const toStored = (row: RecordRow): StoredRecord => ({
  id: row.id,
  streamName: row.stream_name,
  partitionKey: row.partition_key,
  data: row.data,
  size: row.size,
  retryCount: row.retry_count
})

const failed = (operation: string) => (cause: SqlError) =>
  new KinesisStorageException({ message: `The cache database failed to ${operation}`, cause })

const sumSizes = (rows: ReadonlyArray<{ readonly size: number }>): number =>
  rows.reduce((total, row) => total + row.size, 0)

/** Builds the cache over an open database; the writer fiber lives as long as the scope. */
export const make = (
  options: RecordStorageOptions
): Effect.Effect<RecordStorage, KinesisStorageException, Scope.Scope> =>
  Effect.gen(function* () {
    const sql = yield* Database.open(options.filename)
    const [totals] = yield* sql<{ bytes: number; count: number }>`
      SELECT COALESCE(SUM(size), 0) AS bytes, COUNT(*) AS count FROM records`.pipe(
      Effect.mapError(failed("read the cache size"))
    )
    // Every change of the row set runs under this lock, so `bytes` always equals the sum in the table.
    const writeLock = yield* Effect.makeSemaphore(1)
    let bytes = totals?.bytes ?? 0

    const idList = (ids: ReadonlyArray<number>) => JSON.stringify(ids)

    const deleteIds = (ids: ReadonlyArray<number>) =>
      sql<{ stream_name: string; size: number }>`
        DELETE FROM records WHERE id IN (SELECT value FROM json_each(${idList(ids)}))
        RETURNING stream_name, size`

    const commitGroup = (group: ReadonlyArray<PendingInsert>) =>
      Effect.gen(function* () {
        const accepted: Array<PendingInsert> = []
        let budget = options.cacheMaxBytes - bytes
        for (const pending of group) {
          if (pending.record.size <= budget) {
            accepted.push(pending)
            budget -= pending.record.size
          } else {
            yield* Deferred.fail(
              pending.done,
              new KinesisLimitExceededException({
                message: `The cache holds ${bytes} of ${options.cacheMaxBytes} bytes; a record of ${pending.record.size} bytes does not fit`,
                recoverySuggestion: "Call flush() or clearCache() to make room, or raise cacheMaxBytes."
              })
            )
          }
        }
        if (accepted.length === 0) return
        const createdAt = yield* Clock.currentTimeMillis
        const rows = accepted.map(({ record }) => ({
          stream_name: record.streamName,
          partition_key: record.partitionKey,
          data: record.data,
          size: record.size,
          created_at: createdAt
        }))
        const outcome = yield* Effect.either(sql`INSERT INTO records ${sql.insert(rows)}`)
        if (outcome._tag === "Left") {
          const error = failed("store the record")(outcome.left)
          yield* Effect.forEach(accepted, ({ done }) => Deferred.fail(done, error), { discard: true })
          return
        }
        bytes += sumSizes(accepted.map(({ record }) => record))
        yield* Effect.forEach(accepted, ({ done }) => Deferred.succeed(done, undefined), { discard: true })
      }).pipe(writeLock.withPermits(1))

    const queue = yield* Queue.unbounded<PendingInsert>()
    const writer = yield* Queue.takeBetween(queue, 1, maxGroupSize).pipe(
      Effect.flatMap((group) => Effect.uninterruptible(commitGroup(Chunk.toReadonlyArray(group)))),
      Effect.forever,
      Effect.forkScoped
    )
    let open = true
    // On close: refuse new inserts, let the writer finish its group, then commit whatever still waits,
    // so that no caller is left hanging and none is told its record was stored when it was not.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        open = false
      }).pipe(
        Effect.zipRight(Fiber.interrupt(writer)),
        Effect.zipRight(Queue.takeAll(queue)),
        Effect.flatMap((rest) => commitGroup(Chunk.toReadonlyArray(rest)))
      )
    )

    const insert: RecordStorage["insert"] = (record) =>
      Effect.suspend(() =>
        open
          ? Effect.flatMap(Deferred.make<void, KinesisLimitExceededException | KinesisStorageException>(), (done) =>
              Queue.offer(queue, { record, done }).pipe(Effect.zipRight(Deferred.await(done)))
            )
          : Effect.fail(new KinesisStorageException({ message: "The cache database is closed" }))
      )

    const streams = sql<{ name: string }>`
      WITH RECURSIVE next(name) AS (
        SELECT MIN(stream_name) FROM records
        UNION ALL
        SELECT (SELECT MIN(stream_name) FROM records WHERE stream_name > next.name) FROM next WHERE next.name IS NOT NULL
      )
      SELECT name FROM next WHERE name IS NOT NULL`.pipe(
      Effect.map((rows) => rows.map((row) => row.name)),
      Effect.mapError(failed("list the streams"))
    )

    const batch: RecordStorage["batch"] = (streamName, limits) =>
      Effect.gen(function* () {
        const sizes = yield* sql<{ id: number; size: number }>`
          SELECT id, size FROM records WHERE stream_name = ${streamName} ORDER BY id LIMIT ${limits.maxRecords}`
        let total = 0
        let taken = 0
        for (const { size } of sizes) {
          if (total + size > limits.maxBytes) break
          total += size
          taken++
        }
        if (taken === 0) return []
        const rows = yield* sql<RecordRow>`
          SELECT id, stream_name, partition_key, data, size, retry_count FROM records
          WHERE stream_name = ${streamName} AND id <= ${sizes[taken - 1]!.id} ORDER BY id LIMIT ${taken}`
        return rows.map(toStored)
      }).pipe(Effect.mapError(failed("read a batch")))

    const deleteRecords: RecordStorage["delete"] = (ids) =>
      ids.length === 0
        ? Effect.succeed(0)
        : deleteIds(ids).pipe(
            Effect.tap((rows) => {
              bytes -= sumSizes(rows)
            }),
            Effect.map((rows) => rows.length),
            Effect.mapError(failed("delete records")),
            writeLock.withPermits(1)
          )

    const chargeAttempt: RecordStorage["chargeAttempt"] = (ids, maxAttempts) =>
      ids.length === 0
        ? Effect.succeed({ count: 0, byStream: new Map() })
        : sql
            .withTransaction(
              Effect.gen(function* () {
                const charged = yield* sql<{ id: number; retry_count: number }>`
                  UPDATE records SET retry_count = retry_count + 1
                  WHERE id IN (SELECT value FROM json_each(${idList(ids)}))
                  RETURNING id, retry_count`
                const spent = charged.filter((row) => row.retry_count >= maxAttempts).map((row) => row.id)
                return spent.length === 0 ? [] : yield* deleteIds(spent)
              })
            )
            .pipe(
              Effect.map((dropped) => {
                bytes -= sumSizes(dropped)
                const byStream = new Map<string, number>()
                for (const { stream_name } of dropped) byStream.set(stream_name, (byStream.get(stream_name) ?? 0) + 1)
                return { count: dropped.length, byStream }
              }),
              Effect.mapError(failed("charge a failed attempt")),
              writeLock.withPermits(1)
            )

    const clear = sql`DELETE FROM records`.raw.pipe(
      Effect.map((result) => {
        bytes = 0
        return (result as { readonly changes: number }).changes
      }),
      Effect.mapError(failed("clear the cache")),
      writeLock.withPermits(1)
    )

    const count = sql<{ count: number }>`SELECT COUNT(*) AS count FROM records`.pipe(
      Effect.map(([row]) => row?.count ?? 0),
      Effect.mapError(failed("count the records"))
    )

    return RecordStorage.of({
      insert,
      streams,
      batch,
      delete: deleteRecords,
      chargeAttempt,
      clear,
      cachedBytes: Effect.sync(() => bytes),
      count
    })
  })

/** The cache as a layer: opened when the layer is built, closed with its scope. */
export const layer = (options: RecordStorageOptions): Layer.Layer<RecordStorage, KinesisStorageException> =>
  Layer.scoped(RecordStorage, make(options))
