/**
 * The durable record cache: a SQLite table of records waiting to be sent, owned by one actor.
 *
 * One fiber owns the database connection and serves a queue of commands in order: inserts, batch
 * reads, settling an answered batch, expiry, clear, status. Inserts waiting together are committed together
 * (group commit): up to 500 records and 4 MiB of record sizes per transaction, each caller answered
 * only once its own row is committed. The cache limit and the counts are the actor's own state, so
 * the limit check and the insert are one step and concurrent callers never take the cache over
 * `cacheMaxBytes`.
 *
 * @since 0.1.0
 */

import * as os from "node:os"
import * as path from "node:path"
import type { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import { KinesisLimitExceededException, KinesisStorageException } from "../../Errors.js"
import * as EventLoop from "../../internal/eventLoop.js"
import type { ValidRecord } from "../../RecordInput.js"
import type * as DatabaseModule from "./database.js"

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

/**
 * What the service said of a batch: the records of `streamName` from `firstId` to `lastId`, as
 * `batch` returned them. `Answered`: every record was accepted but those in `rejected` (ids, each
 * charged an attempt) and those in `spared` (ids kept as they are, charged nothing); `Refused`: the
 * request was refused as a whole, and every record of the batch is charged an attempt.
 */
export type BatchAnswer =
  | {
      readonly _tag: "Answered"
      readonly streamName: string
      readonly firstId: number
      readonly lastId: number
      readonly rejected: ReadonlyArray<number>
      readonly spared: ReadonlyArray<number>
    }
  | { readonly _tag: "Refused"; readonly streamName: string; readonly firstId: number; readonly lastId: number }

/** Records dropped undelivered (their attempts used up, or expired), by stream. */
export interface DroppedRecords {
  readonly count: number
  readonly byStream: ReadonlyMap<string, number>
}

/** How much the cache holds. */
export interface CacheStatus {
  /** Records in the cache. */
  readonly records: number
  /** The sum of their sizes: what the cache limit is checked against. */
  readonly bytes: number
  /** When the oldest cached record was stored (epoch milliseconds); undefined when the cache is empty. */
  readonly oldestCreatedAt: number | undefined
}

/** The record cache service. Every operation fails only with `KinesisStorageException` (and the cache limit). */
export interface RecordStorage {
  /** Stores one record once it fits under `cacheMaxBytes`; succeeds only after the row is committed. */
  readonly insert: (record: ValidRecord) => Effect.Effect<void, KinesisLimitExceededException | KinesisStorageException>
  /**
   * Stores records handed over together, each as `insert` would, in one group; answers once every one
   * is committed or refused, with each one's error (undefined where it was stored).
   */
  readonly insertAll: (records: ReadonlyArray<ValidRecord>) => Effect.Effect<ReadonlyArray<InsertError | undefined>>
  /** The names of the streams that have cached records, in name order. */
  readonly streams: Effect.Effect<ReadonlyArray<string>, KinesisStorageException>
  /** The oldest records of one stream, in insertion order: the longest prefix within `limits`. */
  readonly batch: (
    streamName: string,
    limits: BatchLimits
  ) => Effect.Effect<ReadonlyArray<StoredRecord>, KinesisStorageException>
  /**
   * Brings the cache up to date with the answer to a batch: deletes what was accepted, charges one
   * failed attempt to what was rejected (leaves what was spared as it is), and drops the records
   * whose failed attempts reach `maxAttempts`.
   * Records accepted but not deleted (the delete failed, say on a full disk) are never handed out by
   * `batch` again and are deleted once the database allows.
   */
  readonly settle: (answer: BatchAnswer, maxAttempts: number) => Effect.Effect<DroppedRecords, KinesisStorageException>
  /**
   * Deletes the records stored before `olderThan` (epoch milliseconds), oldest first: the longest
   * run of the oldest records stored before it. Cheap when none is: one look at the oldest record.
   */
  readonly expire: (olderThan: number) => Effect.Effect<DroppedRecords, KinesisStorageException>
  /** Deletes every cached record in one transaction; returns how many there were. */
  readonly clear: Effect.Effect<number, KinesisStorageException>
  /** How many records and bytes are cached, and since when. */
  readonly status: Effect.Effect<CacheStatus, KinesisStorageException>
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

/** Why an insert failed: the cache limit, or the database. */
export type InsertError = KinesisLimitExceededException | KinesisStorageException

/** One record waiting in the actor's queue, and how to tell its caller the outcome. */
interface PendingInsert {
  readonly record: ValidRecord
  readonly answer: (error: InsertError | undefined) => void
}

/** A command of the actor's queue. */
type Command =
  | { readonly _tag: "Insert"; readonly inserts: ReadonlyArray<PendingInsert> }
  | {
      readonly _tag: "Run"
      readonly run: Effect.Effect<void>
      readonly refuse: (error: KinesisStorageException) => void
    }
  | { readonly _tag: "Stop" }

/** How many commands the actor takes at once, and so how many inserts one group commit holds at most. */
const maxGroupSize = 500

/** How many bytes of record sizes one group commit holds at most (a single larger record goes alone). */
const maxGroupBytes = 4 * 1024 * 1024

/** How long the actor may keep the event loop from a turn (timers, sockets) when it runs in the caller's thread. */
const eventLoopTurnMillis = 10

/** Free pages given back to the file system in one step, so that no step holds the actor for long. */
const vacuumStepPages = 1024

/** The least time between two steps of giving pages back while the cache still holds records. */
const vacuumStepMillis = 1000

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

const statements = {
  totals: "SELECT COUNT(*) AS records, COALESCE(SUM(size), 0) AS bytes FROM records",
  oldest: "SELECT created_at FROM records ORDER BY id LIMIT 1",
  // A skip scan over the index: one probe per stream rather than a pass over every record.
  streams: `WITH RECURSIVE next(name) AS (
      SELECT MIN(stream_name) FROM records
      UNION ALL
      SELECT (SELECT MIN(stream_name) FROM records WHERE stream_name > next.name) FROM next WHERE next.name IS NOT NULL
    )
    SELECT name FROM next WHERE name IS NOT NULL`,
  // Reads only the covering index (stream_name, id, size).
  sizes: "SELECT id, size FROM records WHERE stream_name = ? ORDER BY id LIMIT ?",
  rows: `SELECT id, partition_key, data, size, retry_count FROM records
    WHERE stream_name = ? AND id BETWEEN ? AND ? ORDER BY id`,
  deleteRange: "DELETE FROM records WHERE stream_name = ? AND id BETWEEN ? AND ? RETURNING size",
  deleteRangeExcept: `DELETE FROM records WHERE stream_name = ? AND id BETWEEN ? AND ?
    AND id NOT IN (SELECT value FROM json_each(?)) RETURNING size`,
  deleteIds: "DELETE FROM records WHERE id IN (SELECT value FROM json_each(?)) RETURNING size",
  idsInRange: "SELECT id FROM records WHERE stream_name = ? AND id BETWEEN ? AND ?",
  chargeRange: `UPDATE records SET retry_count = retry_count + 1
    WHERE stream_name = ? AND id BETWEEN ? AND ? AND id NOT IN (SELECT value FROM json_each(?))
    RETURNING id, retry_count`,
  chargeIds: `UPDATE records SET retry_count = retry_count + 1
    WHERE id IN (SELECT value FROM json_each(?)) RETURNING id, retry_count`,
  dropIds: "DELETE FROM records WHERE id IN (SELECT value FROM json_each(?)) RETURNING stream_name, size",
  // Ids grow with created_at, so the expired records are the lowest ids: a walk by id up to the
  // first record still fresh, then a delete of the id range below it. No index on created_at (every
  // insert would pay for it); `oldest` tells beforehand, in one probe, whether anything expired.
  expire: `DELETE FROM records WHERE id < COALESCE(
      (SELECT id FROM records WHERE created_at >= ? ORDER BY id LIMIT 1), 9223372036854775807)
    RETURNING id, stream_name, size`,
  clear: "DELETE FROM records",
  pages: `SELECT (SELECT freelist_count FROM pragma_freelist_count()) AS free,
    (SELECT page_count FROM pragma_page_count()) AS total`,
  // Each step of this statement gives one free page back; `run` steps a statement once.
  vacuumPage: "PRAGMA incremental_vacuum",
  checkpoint: "PRAGMA wal_checkpoint(TRUNCATE)"
} as const

interface RecordRow {
  readonly id: number
  readonly partition_key: string
  readonly data: Uint8Array
  readonly size: number
  readonly retry_count: number
}

/** No record dropped. */
export const noneDropped: DroppedRecords = { count: 0, byStream: new Map() }

const sumSizes = (rows: ReadonlyArray<{ readonly size: number }>): number =>
  rows.reduce((total, row) => total + row.size, 0)

/**
 * Builds the cache over an open database; the actor and its connection live as long as the scope.
 * The database module (and with it @effect/sql) is loaded here, not when this module is: the
 * caller's thread of a client, whose cache runs on a worker, uses this module's service tag only.
 */
export const make = (
  options: RecordStorageOptions
): Effect.Effect<RecordStorage, KinesisStorageException, Scope.Scope> =>
  Effect.flatMap(
    Effect.tryPromise({
      try: () => import("./database.js"),
      catch: (cause) => new KinesisStorageException({ message: "Could not load the cache database driver", cause })
    }),
    (Database) => makeOn(Database, options)
  )

/**
 * `make` with the database module given: the cache worker imports it itself.
 *
 * @internal
 */
export const makeOn = (
  Database: typeof DatabaseModule,
  options: RecordStorageOptions
): Effect.Effect<RecordStorage, KinesisStorageException, Scope.Scope> =>
  Effect.gen(function* () {
    const database = yield* Database.open(options.filename)
    const connection = database.connection
    const run = <A extends object>(sql: string, params: ReadonlyArray<unknown> = []) =>
      connection.execute(sql, params, undefined) as Effect.Effect<ReadonlyArray<A>, SqlError>

    /** Runs `effect` in one transaction: committed if it succeeds, rolled back otherwise. */
    const transaction = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | SqlError> =>
      Effect.zipRight(connection.executeRaw("BEGIN", []), effect).pipe(
        Effect.zipLeft(connection.executeRaw("COMMIT", [])),
        Effect.onError(() => Effect.ignore(connection.executeRaw("ROLLBACK", [])))
      )

    // The actor's own state. Only the actor fiber changes it, so it always matches the table.
    const [totals] = yield* run<{ records: number; bytes: number }>(statements.totals).pipe(
      Effect.mapError(database.failure("read the cache size"))
    )
    let records = totals?.records ?? 0
    let bytes = totals?.bytes ?? 0
    /** Records the service accepted whose delete failed: never sent again, deleted when the database allows. */
    let undeleted = new Set<number>()
    let lastTurn = yield* Clock.currentTimeMillis

    const storageError = database.failure

    // ---- inserts -------------------------------------------------------------------------------

    /** Writes the rows of one group: one multi-row INSERT, or a few of them in one transaction. */
    const writeRows = (group: ReadonlyArray<ValidRecord>, createdAt: number): Effect.Effect<unknown, SqlError> => {
      const writes: Array<Effect.Effect<unknown, SqlError>> = []
      let offset = 0
      for (const rows of chunkSizes) {
        while (group.length - offset >= rows) {
          const params: Array<unknown> = new Array(rows * columnsPerRow)
          for (let row = 0, at = 0; row < rows; row++) {
            const record = group[offset + row]!
            params[at++] = record.streamName
            params[at++] = record.partitionKey
            params[at++] = record.data
            params[at++] = record.size
            params[at++] = createdAt
          }
          writes.push(connection.execute(insertStatements.get(rows)!, params, undefined))
          offset += rows
        }
      }
      return writes.length === 1 ? writes[0]! : transaction(Effect.all(writes, { discard: true }))
    }

    const limitExceeded = (size: number) =>
      new KinesisLimitExceededException({
        message: `The cache holds ${bytes} of ${options.cacheMaxBytes} bytes; a record of ${size} bytes does not fit`,
        recoverySuggestion: "Call flush() or clearCache() to make room, or raise cacheMaxBytes."
      })

    /** Commits one group (records that fit under the limit, in order) and answers each caller. */
    const commitGroup = (group: ReadonlyArray<PendingInsert>): Effect.Effect<void> =>
      Effect.gen(function* () {
        const accepted: Array<PendingInsert> = []
        let budget = options.cacheMaxBytes - bytes
        for (const insert of group) {
          if (insert.record.size <= budget) {
            accepted.push(insert)
            budget -= insert.record.size
          } else {
            insert.answer(limitExceeded(insert.record.size))
          }
        }
        if (accepted.length === 0) return
        const createdAt = yield* Clock.currentTimeMillis
        const written = yield* Effect.exit(
          guarded(
            "store the record",
            writeRows(
              accepted.map((insert) => insert.record),
              createdAt
            )
          )
        )
        if (Exit.isSuccess(written)) {
          records += accepted.length
          bytes += sumSizes(accepted.map((insert) => insert.record))
        }
        const error = Exit.isSuccess(written) ? undefined : (Cause.squash(written.cause) as InsertError)
        for (const insert of accepted) insert.answer(error)
      })

    /** Commits a run of inserts in groups of at most `maxGroupBytes` (a larger record alone). */
    const commitInserts = (inserts: ReadonlyArray<PendingInsert>): Effect.Effect<void> =>
      Effect.gen(function* () {
        let group: Array<PendingInsert> = []
        let groupBytes = 0
        for (const insert of inserts) {
          if (group.length > 0 && groupBytes + insert.record.size > maxGroupBytes) {
            yield* commitGroup(group)
            yield* letEventLoopTurn
            group = []
            groupBytes = 0
          }
          group.push(insert)
          groupBytes += insert.record.size
        }
        if (group.length > 0) yield* commitGroup(group)
      })

    // ---- failures ------------------------------------------------------------------------------

    /** Set once a statement finds the file corrupt: from then on every command fails at once with it. */
    let broken: KinesisStorageException | undefined

    /** Runs the work of one command; maps its failure, and notes a corrupt file. */
    const guarded = <A>(
      operation: string,
      work: Effect.Effect<A, SqlError>
    ): Effect.Effect<A, KinesisStorageException> =>
      Effect.suspend(() =>
        broken
          ? Effect.fail(broken)
          : Effect.mapError(work, (error) => {
              if (!Database.isCorrupt(error)) return storageError(operation)(error)
              broken = database.corrupt(error)
              return broken
            })
      )

    // ---- the rest of the commands ----------------------------------------------------------------

    const retryUndeleted = Effect.suspend(() => {
      if (undeleted.size === 0) return Effect.void
      return run<{ size: number }>(statements.deleteIds, [JSON.stringify([...undeleted])]).pipe(
        Effect.tap((deleted) =>
          Effect.sync(() => {
            records -= deleted.length
            bytes -= sumSizes(deleted)
            undeleted = new Set()
          })
        ),
        Effect.ignore
      )
    })

    const listStreams = retryUndeleted.pipe(
      Effect.zipRight(run<{ name: string }>(statements.streams)),
      Effect.map((rows) => rows.map((row) => row.name))
    )

    const readBatch = (streamName: string, limits: BatchLimits) =>
      Effect.gen(function* () {
        const sizes = yield* run<{ id: number; size: number }>(statements.sizes, [
          streamName,
          limits.maxRecords + undeleted.size
        ])
        let total = 0
        let taken = 0
        let last: number | undefined
        for (const { id, size } of sizes) {
          if (undeleted.has(id)) continue
          if (taken === limits.maxRecords || total + size > limits.maxBytes) break
          total += size
          taken++
          last = id
        }
        if (last === undefined) return []
        const rows = yield* run<RecordRow>(statements.rows, [streamName, sizes[0]!.id, last])
        return rows
          .filter((row) => !undeleted.has(row.id))
          .map(
            (row): StoredRecord => ({
              id: row.id,
              streamName,
              partitionKey: row.partition_key,
              data: row.data,
              size: row.size,
              retryCount: row.retry_count
            })
          )
      })

    /** Counts deleted rows by stream. */
    const droppedOf = (rows: ReadonlyArray<{ readonly stream_name: string }>): DroppedRecords => {
      const byStream = new Map<string, number>()
      for (const { stream_name } of rows) byStream.set(stream_name, (byStream.get(stream_name) ?? 0) + 1)
      return { count: rows.length, byStream }
    }

    /** Adds one failed attempt to the charged rows; deletes those that reached `maxAttempts`. */
    const charge = (
      charged: Effect.Effect<ReadonlyArray<{ id: number; retry_count: number }>, SqlError>,
      maxAttempts: number
    ) =>
      transaction(
        Effect.gen(function* () {
          const spent = (yield* charged).filter((row) => row.retry_count >= maxAttempts).map((row) => row.id)
          if (spent.length === 0) return noneDropped
          const dropped = yield* run<{ stream_name: string; size: number }>(statements.dropIds, [JSON.stringify(spent)])
          records -= dropped.length
          bytes -= sumSizes(dropped)
          return droppedOf(dropped)
        })
      )

    /**
     * Deletes what the service accepted. It runs on its own, before anything is charged: a delivered
     * record must not come back because a later statement failed. If the delete fails, the accepted
     * ids are remembered so that no batch hands them out again.
     */
    const deleteAccepted = (answer: Extract<BatchAnswer, { _tag: "Answered" }>) => {
      const range = [answer.streamName, answer.firstId, answer.lastId]
      const notAccepted = [...answer.rejected, ...answer.spared]
      const deleting =
        notAccepted.length === 0
          ? run<{ size: number }>(statements.deleteRange, range)
          : run<{ size: number }>(statements.deleteRangeExcept, [...range, JSON.stringify(notAccepted)])
      return deleting.pipe(
        Effect.tap((deleted) =>
          Effect.sync(() => {
            records -= deleted.length
            bytes -= sumSizes(deleted)
          })
        ),
        Effect.tapError(() =>
          run<{ id: number }>(statements.idsInRange, range).pipe(
            Effect.tap((rows) =>
              Effect.sync(() => {
                const kept = new Set(notAccepted)
                for (const { id } of rows) if (!kept.has(id)) undeleted.add(id)
              })
            ),
            Effect.ignore
          )
        )
      )
    }

    const settleAnswer = (answer: BatchAnswer, maxAttempts: number) =>
      Effect.gen(function* () {
        if (answer._tag === "Refused") {
          // Records in the range that were delivered before (and whose delete failed) are not charged.
          const range = [answer.streamName, answer.firstId, answer.lastId, JSON.stringify([...undeleted])]
          return yield* charge(run(statements.chargeRange, range), maxAttempts)
        }
        yield* deleteAccepted(answer)
        if (answer.rejected.length === 0) return noneDropped
        return yield* charge(run(statements.chargeIds, [JSON.stringify(answer.rejected)]), maxAttempts)
      })

    /** Deletes the records stored before `olderThan`; those delivered already (`undeleted`) are not counted as dropped. */
    const expireOlder = (olderThan: number) =>
      Effect.gen(function* () {
        const [oldest] = yield* run<{ created_at: number }>(statements.oldest)
        if (oldest === undefined || oldest.created_at >= olderThan) return noneDropped
        const deleted = yield* run<{ id: number; stream_name: string; size: number }>(statements.expire, [olderThan])
        records -= deleted.length
        bytes -= sumSizes(deleted)
        const expired = deleted.filter((row) => !undeleted.delete(row.id))
        return droppedOf(expired)
      })

    const clearAll = connection.executeRaw(statements.clear, []).pipe(
      Effect.map((result) => {
        const cleared = (result as { readonly changes: number }).changes
        records = 0
        bytes = 0
        undeleted = new Set()
        return cleared
      })
    )

    const readStatus = Effect.map(
      run<{ created_at: number }>(statements.oldest),
      ([oldest]): CacheStatus => ({ records, bytes, oldestCreatedAt: oldest?.created_at })
    )

    /**
     * Gives freed pages back to the file system once the cache has shrunk. When the cache is empty,
     * all of them (nothing needs moving then), and the write-ahead log is cut back too. While records
     * remain, giving pages back means moving live pages from the end of the file into the holes, so
     * it happens only when at least half of the file is free, one step of `vacuumStepPages` at a time
     * and at most one step every `vacuumStepMillis`: a long drain is not slowed down by it.
     * Best effort.
     */
    let lastVacuumStep = Number.NEGATIVE_INFINITY
    const shrink = Effect.gen(function* () {
      const [pages] = yield* run<{ free: number; total: number }>(statements.pages)
      if (pages === undefined || pages.free === 0) return
      const now = yield* Clock.currentTimeMillis
      if (records > 0) {
        if (pages.free < vacuumStepPages || pages.free * 2 < pages.total) return
        if (now - lastVacuumStep < vacuumStepMillis) return
      }
      lastVacuumStep = now
      const step = run(statements.vacuumPage)
      yield* Effect.repeatN(step, (records === 0 ? pages.free : vacuumStepPages) - 1)
      if (records === 0) yield* run(statements.checkpoint)
    }).pipe(Effect.ignore)

    // ---- the actor ------------------------------------------------------------------------------

    /** Lets the event loop run when the actor has kept it waiting for `eventLoopTurnMillis`. */
    const letEventLoopTurn = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      now - lastTurn < eventLoopTurnMillis
        ? Effect.void
        : Effect.zipRight(
            EventLoop.turn,
            Effect.flatMap(Clock.currentTimeMillis, (after) => Effect.sync(() => (lastTurn = after)))
          )
    )

    const mailbox = yield* Queue.unbounded<Command>()

    /** Serves commands in order until `Stop`: consecutive inserts are committed together. */
    const serve: Effect.Effect<void> = Effect.gen(function* () {
      for (;;) {
        const commands = yield* Queue.takeBetween(mailbox, 1, maxGroupSize)
        let inserts: Array<PendingInsert> = []
        for (const command of commands) {
          if (command._tag === "Insert") {
            for (const insert of command.inserts) inserts.push(insert)
            continue
          }
          if (inserts.length > 0) yield* commitInserts(inserts)
          inserts = []
          if (command._tag === "Stop") return
          yield* command.run
        }
        if (inserts.length > 0) yield* commitInserts(inserts)
        yield* letEventLoopTurn
      }
    })

    let open = true
    const closed = () => new KinesisStorageException({ message: "The cache database is closed" })

    /** Queues a command, or refuses it at once when the cache is closing. One synchronous step. */
    const submit = (command: Command, refuse: () => void) => {
      if (open) Queue.unsafeOffer(mailbox, command)
      else refuse()
    }

    /** Runs `work` on the actor, after every command queued before it. */
    const command = <A>(
      operation: string,
      work: Effect.Effect<A, SqlError>
    ): Effect.Effect<A, KinesisStorageException> =>
      Effect.async<A, KinesisStorageException>((resume) => {
        const refuse = (error: KinesisStorageException) => resume(Effect.fail(error))
        submit(
          {
            _tag: "Run",
            run: Effect.matchCause(guarded(operation, work), {
              onFailure: (cause) => resume(Effect.failCause(cause)),
              onSuccess: (value) => resume(Effect.succeed(value))
            }),
            refuse
          },
          () => refuse(closed())
        )
      })

    const insert = (record: ValidRecord): Effect.Effect<void, InsertError> =>
      Effect.async<void, InsertError>((resume) => {
        const answer = (error: InsertError | undefined) =>
          resume(error === undefined ? Effect.void : Effect.fail(error))
        submit({ _tag: "Insert", inserts: [{ record, answer }] }, () => answer(closed()))
      })

    const insertAll = (records: ReadonlyArray<ValidRecord>): Effect.Effect<ReadonlyArray<InsertError | undefined>> =>
      Effect.async<ReadonlyArray<InsertError | undefined>>((resume) => {
        const errors: Array<InsertError | undefined> = new Array(records.length)
        let left = records.length
        if (left === 0) return resume(Effect.succeed(errors))
        const inserts = records.map(
          (record, index): PendingInsert => ({
            record,
            answer: (error) => {
              errors[index] = error
              if (--left === 0) resume(Effect.succeed(errors))
            }
          })
        )
        submit({ _tag: "Insert", inserts }, () => {
          for (const pending of inserts) pending.answer(closed())
        })
      })

    // If the actor ever stopped on a defect, nothing may wait for it: every queued command is failed.
    const failQueued = Effect.suspend(() => {
      open = false
      return Effect.map(Queue.takeAll(mailbox), (left) => {
        for (const queued of left) {
          if (queued._tag === "Insert") for (const pending of queued.inserts) pending.answer(closed())
          if (queued._tag === "Run") queued.refuse(closed())
        }
      })
    })
    const actor = yield* Effect.forkDaemon(Effect.ensuring(serve, failQueued))
    // On close: refuse new commands, then let the actor answer every command queued before, so that
    // no caller is left hanging and none is told its record was stored when it was not. The
    // connection closes after this (its finalizer was registered first).
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        open = false
        Queue.unsafeOffer(mailbox, { _tag: "Stop" })
        return actor.await
      })
    )

    return RecordStorage.of({
      insert,
      insertAll,
      streams: command("list the streams", listStreams).pipe(Effect.withSpan("RecordStorage.streams")),
      batch: (streamName, limits) =>
        command("read a batch", readBatch(streamName, limits)).pipe(Effect.withSpan("RecordStorage.batch")),
      settle: (answer, maxAttempts) =>
        command("settle a batch", Effect.zipLeft(settleAnswer(answer, maxAttempts), shrink)).pipe(
          Effect.withSpan("RecordStorage.settle")
        ),
      expire: (olderThan) =>
        command(
          "delete expired records",
          Effect.tap(expireOlder(olderThan), (expired) => (expired.count === 0 ? Effect.void : shrink))
        ).pipe(Effect.withSpan("RecordStorage.expire")),
      clear: command("clear the cache", Effect.zipLeft(clearAll, shrink)).pipe(Effect.withSpan("RecordStorage.clear")),
      status: command("read the cache status", readStatus)
    })
  })

/** The cache as a layer: opened when the layer is built, closed with its scope. */
export const layer = (options: RecordStorageOptions): Layer.Layer<RecordStorage, KinesisStorageException> =>
  Layer.scoped(RecordStorage, make(options))
