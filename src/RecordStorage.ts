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
import type * as Statement from "@effect/sql/Statement"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { KinesisLimitExceededException, KinesisStorageException } from "./Errors.js"
import * as Database from "./internal/database.js"
import * as EventLoop from "./internal/eventLoop.js"
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
  /**
   * The oldest records of one stream, in insertion order: the longest prefix within `limits`. With
   * `afterId`, the oldest of those recorded after that record.
   */
  readonly batch: (
    streamName: string,
    limits: BatchLimits,
    afterId?: number
  ) => Effect.Effect<ReadonlyArray<StoredRecord>, KinesisStorageException>
  /**
   * The rest of a batch read earlier, from record `firstId` to record `lastId` of one stream: if
   * `firstId` is still the stream's oldest record, the records after `lastId` within `limits`
   * (maybe none); `None` if the stream's oldest record is another one now. Check and read are one
   * step: nothing changes the cache in between.
   */
  readonly continueBatch: (
    streamName: string,
    firstId: number,
    lastId: number,
    limits: BatchLimits
  ) => Effect.Effect<Option.Option<ReadonlyArray<StoredRecord>>, KinesisStorageException>
  /** Deletes records by id; returns how many were deleted. */
  readonly delete: (ids: ReadonlyArray<number>) => Effect.Effect<number, KinesisStorageException>
  /**
   * Deletes a whole batch, as `batch` returned it, in one ranged statement; returns how many
   * records were deleted (fewer if some were cleared meanwhile).
   */
  readonly deleteBatch: (records: ReadonlyArray<StoredRecord>) => Effect.Effect<number, KinesisStorageException>
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

/** An insert waiting for the group commit that will take it, and how to wake its caller. */
interface PendingInsert {
  readonly record: ValidRecord
  readonly resume: (outcome: Effect.Effect<void, KinesisLimitExceededException | KinesisStorageException>) => void
}

/** How long a burst of inserts may keep the event loop from a turn (timers, sockets). */
const eventLoopTurnMillis = 10

/** How many inserts one group commit takes at most. */
const maxGroupSize = 500

/**
 * A group is written as multi-row INSERTs of these sizes (largest first), so that only a handful of
 * distinct statements exist and each stays in the prepared-statement cache.
 */
const chunkSizes = [256, 128, 64, 32, 16, 8, 4, 2, 1] as const

const columnsPerRow = 5

const insertStatements = new Map(
  chunkSizes.map((rows) => [
    rows,
    `INSERT INTO records (stream_name, partition_key, data, size, created_at) VALUES ${Array.from(
      { length: rows },
      () => "(?, ?, ?, ?, ?)"
    ).join(", ")}`
  ])
)

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

/** Builds the cache over an open database; the connection is held as long as the scope. */
export const make = (
  options: RecordStorageOptions
): Effect.Effect<RecordStorage, KinesisStorageException, Scope.Scope> =>
  Effect.gen(function* () {
    const sql = yield* Database.open(options.filename)
    // The cache owns its connection for its whole life and runs every statement on it directly, under
    // `lock`. Going through `sql` per statement costs a span, a scope and a semaphore round each time,
    // which more than doubled the cost of committing one record (see docs/performance.md).
    const connection = yield* sql.reserve.pipe(Effect.mapError(failed("open the cache")))
    // One statement or transaction at a time; every change of the row set also runs under it, so
    // `bytes` always equals the sum of the sizes in the table. The guarded work is short and
    // synchronous, so it runs uninterruptibly, waiting included.
    const lock = yield* Effect.makeSemaphore(1)
    const locked = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      Effect.uninterruptible(lock.withPermits(1)(effect))

    /** Runs one statement on the connection; the caller holds `lock`. */
    const run = <A extends object>(statement: Statement.Statement<A>): Effect.Effect<ReadonlyArray<A>, SqlError> =>
      Effect.suspend(() => {
        const [text, params] = statement.compile()
        return connection.execute(text, params, undefined)
      })

    /** Runs `effect` in one transaction: committed if it succeeds, rolled back otherwise. The caller holds `lock`. */
    const transaction = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | SqlError> =>
      Effect.zipRight(connection.executeRaw("BEGIN", []), effect).pipe(
        Effect.zipLeft(connection.executeRaw("COMMIT", [])),
        Effect.onError(() => Effect.ignore(connection.executeRaw("ROLLBACK", []))),
        Effect.uninterruptible
      )

    const sumAll = run(sql<{ bytes: number }>`SELECT COALESCE(SUM(size), 0) AS bytes FROM records`).pipe(
      Effect.map(([totals]) => totals?.bytes ?? 0)
    )
    let bytes = yield* sumAll.pipe(Effect.mapError(failed("read the cache size")))

    const idList = (ids: ReadonlyArray<number>) => JSON.stringify(ids)

    const deleteIds = (ids: ReadonlyArray<number>) =>
      run(sql<{ stream_name: string; size: number }>`
        DELETE FROM records WHERE id IN (SELECT value FROM json_each(${idList(ids)}))
        RETURNING stream_name, size`)

    type InsertOutcome = Effect.Effect<void, KinesisLimitExceededException | KinesisStorageException>

    /** Writes the rows of one group: one multi-row INSERT, or a few of them in one transaction. */
    const writeRows = (group: ReadonlyArray<PendingInsert>, createdAt: number): Effect.Effect<unknown, SqlError> => {
      const statements: Array<Effect.Effect<unknown, SqlError>> = []
      let offset = 0
      for (const rows of chunkSizes) {
        while (group.length - offset >= rows) {
          const params: Array<unknown> = new Array(rows * columnsPerRow)
          for (let row = 0, at = 0; row < rows; row++) {
            const { record } = group[offset + row]!
            params[at++] = record.streamName
            params[at++] = record.partitionKey
            params[at++] = record.data
            params[at++] = record.size
            params[at++] = createdAt
          }
          statements.push(connection.execute(insertStatements.get(rows)!, params, undefined))
          offset += rows
        }
      }
      return statements.length === 1 ? statements[0]! : transaction(Effect.all(statements, { discard: true }))
    }

    /**
     * Commits one group (the caller holds `lock`): takes the records that fit under the limit, in
     * order, writes them in one transaction, then wakes every caller of the group with its outcome.
     */
    const commitGroup = (group: ReadonlyArray<PendingInsert>): Effect.Effect<void> =>
      Effect.suspend(() => {
        const accepted: Array<PendingInsert> = []
        let budget = options.cacheMaxBytes - bytes
        for (const pending of group) {
          if (pending.record.size <= budget) {
            accepted.push(pending)
            budget -= pending.record.size
          } else {
            pending.resume(
              Effect.fail(
                new KinesisLimitExceededException({
                  message: `The cache holds ${options.cacheMaxBytes - budget} of ${options.cacheMaxBytes} bytes; a record of ${pending.record.size} bytes does not fit`,
                  recoverySuggestion: "Call flush() or clearCache() to make room, or raise cacheMaxBytes."
                })
              )
            )
          }
        }
        if (accepted.length === 0) return Effect.void
        return Effect.flatMap(Clock.currentTimeMillis, (createdAt) => writeRows(accepted, createdAt)).pipe(
          Effect.matchCause({
            onFailure: (cause) => {
              const error: InsertOutcome = Effect.fail(
                new KinesisStorageException({
                  message: "The cache database failed to store the record",
                  cause: Cause.squash(cause)
                })
              )
              for (const pending of accepted) pending.resume(error)
            },
            onSuccess: () => {
              for (const pending of accepted) bytes += pending.record.size
              for (const pending of accepted) pending.resume(Effect.void)
            }
          })
        )
      })

    // Group commit without a writer fiber: the first caller to find no commit under way leads one.
    // It yields once, so that callers running concurrently can join, then takes the lock and commits
    // every waiting insert, 500 at a time, until none is left. The others wait for it to wake them.
    // A lone caller pays for one yield and one single-row INSERT. The yield comes before the lock:
    // callers woken by one commit come back as the next group, and a flush already waiting for the
    // lock (to read or delete a batch) goes before that group rather than after it.
    let pending: Array<PendingInsert> = []
    let leading = false
    const notLeading = yield* Effect.makeLatch(true)

    const drain: Effect.Effect<void> = Effect.suspend(() => {
      if (pending.length === 0) {
        leading = false
        notLeading.unsafeOpen()
        return Effect.void
      }
      const group = pending.length <= maxGroupSize ? pending : pending.slice(0, maxGroupSize)
      pending = pending.length <= maxGroupSize ? [] : pending.slice(maxGroupSize)
      return Effect.zipRight(commitGroup(group), drain)
    })

    // Effect runs ready fibers on microtasks, and callers recording in a loop always have one ready:
    // left alone, a burst of `record` calls would hold off timers and sockets (the automatic flush, the
    // answer to a request in flight) until it ends. So once the event loop has not had a turn for
    // `eventLoopTurnMillis`, the leader yields to it instead (setImmediate).
    let lastTurn = yield* Clock.currentTimeMillis
    const eventLoopTurn = EventLoop.turn.pipe(
      Effect.zipRight(Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => (lastTurn = now))))
    )
    const letOthersJoin = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      now - lastTurn >= eventLoopTurnMillis ? eventLoopTurn : Effect.yieldNow()
    )
    const lead = Effect.zipRight(letOthersJoin, locked(drain))

    let open = true
    // On close: refuse new inserts, then wait until the commit under way (if any) has taken every
    // waiting insert, so that no caller is left hanging and none is told its record was stored when
    // it was not.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        open = false
      }).pipe(Effect.zipRight(notLeading.await))
    )

    const closed = Effect.fail(new KinesisStorageException({ message: "The cache database is closed" }))

    // Deciding whether to lead or to join a running commit, and joining it, happen in one synchronous
    // step (the register callback), so no commit can finish in between and leave a follower behind.
    // Uninterruptible as a whole: a leader interrupted before it took the lock would strand every
    // insert queued behind it, and a record handed to a commit is stored whether or not its caller waits.
    const insert: RecordStorage["insert"] = (record) =>
      Effect.async<void, KinesisLimitExceededException | KinesisStorageException>((resume) => {
        if (!open) return resume(closed)
        if (leading) {
          pending.push({ record, resume })
          return
        }
        leading = true
        notLeading.unsafeClose()
        let outcome: InsertOutcome = Effect.void
        pending.push({
          record,
          resume: (result) => {
            outcome = result
          }
        })
        resume(
          Effect.zipRight(
            lead,
            Effect.suspend(() => outcome)
          )
        )
      }).pipe(Effect.uninterruptible)

    const streams = run(sql<{ name: string }>`
      WITH RECURSIVE next(name) AS (
        SELECT MIN(stream_name) FROM records
        UNION ALL
        SELECT (SELECT MIN(stream_name) FROM records WHERE stream_name > next.name) FROM next WHERE next.name IS NOT NULL
      )
      SELECT name FROM next WHERE name IS NOT NULL`).pipe(
      locked,
      Effect.map((rows) => rows.map((row) => row.name)),
      Effect.mapError(failed("list the streams")),
      Effect.withSpan("RecordStorage.streams")
    )

    /** Reads a batch (see `batch`); the caller holds `lock`. */
    const readBatch = (streamName: string, limits: BatchLimits, afterId: number) =>
      Effect.gen(function* () {
        const sizes = yield* run(sql<{ id: number; size: number }>`
          SELECT id, size FROM records WHERE stream_name = ${streamName} AND id > ${afterId}
          ORDER BY id LIMIT ${limits.maxRecords}`)
        let total = 0
        let taken = 0
        for (const { size } of sizes) {
          if (total + size > limits.maxBytes) break
          total += size
          taken++
        }
        if (taken === 0) return []
        const rows = yield* run(sql<RecordRow>`
          SELECT id, stream_name, partition_key, data, size, retry_count FROM records
          WHERE stream_name = ${streamName} AND id > ${afterId} AND id <= ${sizes[taken - 1]!.id}
          ORDER BY id LIMIT ${taken}`)
        return rows.map(toStored)
      })

    const batch: RecordStorage["batch"] = (streamName, limits, afterId = 0) =>
      readBatch(streamName, limits, afterId).pipe(
        locked,
        Effect.mapError(failed("read a batch")),
        Effect.withSpan("RecordStorage.batch")
      )

    const continueBatch: RecordStorage["continueBatch"] = (streamName, firstId, lastId, limits) =>
      Effect.gen(function* () {
        const [oldest] = yield* run(sql<{ id: number | null }>`
          SELECT MIN(id) AS id FROM records WHERE stream_name = ${streamName}`)
        if (oldest?.id !== firstId) return Option.none()
        return Option.some(yield* readBatch(streamName, limits, lastId))
      }).pipe(locked, Effect.mapError(failed("read a batch")), Effect.withSpan("RecordStorage.continueBatch"))

    const deleteRecords: RecordStorage["delete"] = (ids) =>
      ids.length === 0
        ? Effect.succeed(0)
        : deleteIds(ids).pipe(
            Effect.tap((rows) => {
              bytes -= sumSizes(rows)
            }),
            Effect.map((rows) => rows.length),
            locked,
            Effect.mapError(failed("delete records")),
            Effect.withSpan("RecordStorage.delete")
          )

    // A batch is every record of its stream from its first id to its last, and ids only grow, so a
    // ranged delete takes exactly the batch: cheaper than a list of ids, and it returns no rows. A
    // count other than the batch's means `clear` ran since the batch was read; the bytes are then
    // summed afresh rather than guessed.
    const deleteBatch: RecordStorage["deleteBatch"] = (records) => {
      const first = records[0]
      const last = records[records.length - 1]
      if (first === undefined || last === undefined) return Effect.succeed(0)
      return connection
        .executeRaw("DELETE FROM records WHERE stream_name = ? AND id BETWEEN ? AND ?", [
          first.streamName,
          first.id,
          last.id
        ])
        .pipe(
          Effect.map((result) => (result as { readonly changes: number }).changes),
          Effect.tap((deleted) =>
            deleted === records.length
              ? Effect.sync(() => {
                  bytes -= sumSizes(records)
                })
              : Effect.map(sumAll, (total) => {
                  bytes = total
                })
          ),
          locked,
          Effect.mapError(failed("delete records")),
          Effect.withSpan("RecordStorage.deleteBatch")
        )
    }

    const chargeAttempt: RecordStorage["chargeAttempt"] = (ids, maxAttempts) =>
      ids.length === 0
        ? Effect.succeed({ count: 0, byStream: new Map() })
        : transaction(
            Effect.gen(function* () {
              const charged = yield* run(sql<{ id: number; retry_count: number }>`
                UPDATE records SET retry_count = retry_count + 1
                WHERE id IN (SELECT value FROM json_each(${idList(ids)}))
                RETURNING id, retry_count`)
              const spent = charged.filter((row) => row.retry_count >= maxAttempts).map((row) => row.id)
              return spent.length === 0 ? [] : yield* deleteIds(spent)
            })
          ).pipe(
            Effect.map((dropped) => {
              bytes -= sumSizes(dropped)
              const byStream = new Map<string, number>()
              for (const { stream_name } of dropped) byStream.set(stream_name, (byStream.get(stream_name) ?? 0) + 1)
              return { count: dropped.length, byStream }
            }),
            locked,
            Effect.mapError(failed("charge a failed attempt")),
            Effect.withSpan("RecordStorage.chargeAttempt")
          )

    const clear = connection.executeRaw("DELETE FROM records", []).pipe(
      Effect.map((result) => {
        bytes = 0
        return (result as { readonly changes: number }).changes
      }),
      locked,
      Effect.mapError(failed("clear the cache")),
      Effect.withSpan("RecordStorage.clear")
    )

    const count = run(sql<{ count: number }>`SELECT COUNT(*) AS count FROM records`).pipe(
      locked,
      Effect.map(([row]) => row?.count ?? 0),
      Effect.mapError(failed("count the records"))
    )

    return RecordStorage.of({
      insert,
      streams,
      batch,
      continueBatch,
      delete: deleteRecords,
      deleteBatch,
      chargeAttempt,
      clear,
      cachedBytes: Effect.sync(() => bytes),
      count
    })
  })

/** The cache as a layer: opened when the layer is built, closed with its scope. */
export const layer = (options: RecordStorageOptions): Layer.Layer<RecordStorage, KinesisStorageException> =>
  Layer.scoped(RecordStorage, make(options))
