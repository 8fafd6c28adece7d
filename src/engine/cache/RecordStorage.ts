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
 * This module holds the service and wires it up; the parts are modules of their own: `Table`
 * (the statements), `Row` (a row read back), `Ledger` (the counts and the limit), `Vacuum` (giving
 * pages back) and `Actor` (the mailbox and group commit).
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
import type * as Scope from "effect/Scope"
import { type KinesisLimitExceededException, KinesisStorageException } from "../../Errors.js"
import type { ValidRecord } from "../../RecordInput.js"
import * as Actor from "./Actor.js"
import type * as DatabaseModule from "./database.js"
import { droppedOf, Ledger, type Totals } from "./Ledger.js"
import * as Row from "./Row.js"
import { inserts, type Run, statements } from "./Table.js"
import * as Vacuum from "./Vacuum.js"

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
  /**
   * The oldest records of one stream, in insertion order: the longest prefix within `limits`.
   *
   * A row that can't be turned into a record (its data not bytes, its size not a whole number, ...;
   * a file written by something else) is set aside rather than left to block its stream: it is
   * deleted, the counts follow, and a warning (`Effect.logWarning`, annotated with `stream` and
   * `dropped`) names the stream, how many rows and what was found in which column, never the data.
   * Such rows are not counted in a `DroppedRecords`: they were never records the flush could send,
   * and `settle` reports only records whose attempts ran out. The batch holds the readable records
   * only (it may then be shorter than `limits` allow); when every row read was unreadable, the next
   * ones are read, so an empty batch still means the stream has nothing to send.
   *
   * With `after`, the batch starts after that id: the next batch of a stream while the one before
   * it (up to `after`) is still in flight.
   */
  readonly batch: (
    streamName: string,
    limits: BatchLimits,
    after?: number
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

/** No record dropped. */
export const noneDropped: DroppedRecords = { count: 0, byStream: new Map() }

/**
 * Builds the cache over an open database; the actor and its connection live as long as the scope.
 * The database module (and with it @effect/sql) is loaded here, not when this module is: the
 * caller's thread of a client whose engine runs on a worker loads this module (for its names and
 * types) without loading @effect/sql.
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
 * `make` with the database module given: the engine's worker (`engine/worker.ts`) imports it itself.
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
    const storageError = database.failure
    const run: Run = <A extends object>(sql: string, params: ReadonlyArray<unknown> = []) =>
      connection.execute(sql, params, undefined) as Effect.Effect<ReadonlyArray<A>, SqlError>

    /** Runs `effect` in one transaction: committed if it succeeds, rolled back otherwise. */
    const transaction = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | SqlError> =>
      Effect.zipRight(connection.executeRaw("BEGIN", []), effect).pipe(
        Effect.zipLeft(connection.executeRaw("COMMIT", [])),
        Effect.onError(() => Effect.ignore(connection.executeRaw("ROLLBACK", [])))
      )

    const readTotals = Effect.map(run<Totals>(statements.totals), ([totals]) => totals)
    const ledger = new Ledger(
      options.cacheMaxBytes,
      yield* Effect.mapError(readTotals, storageError("read the cache size"))
    )
    const shrink = Vacuum.make(run, () => ledger.records)

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

    // ---- inserts -------------------------------------------------------------------------------

    /** Writes the rows of one group: one multi-row INSERT, or a few of them in one transaction. */
    const writeRows = (group: ReadonlyArray<ValidRecord>, createdAt: number): Effect.Effect<unknown, SqlError> => {
      const writes = inserts(group, createdAt).map(({ sql, params }) => connection.execute(sql, params, undefined))
      return writes.length === 1 ? writes[0]! : transaction(Effect.all(writes, { discard: true }))
    }

    /** Commits one group (records that fit under the limit, in order) and answers each caller. */
    const commitGroup = (group: ReadonlyArray<Actor.PendingInsert>): Effect.Effect<void> =>
      Effect.gen(function* () {
        const { accepted, refused } = ledger.admit(group)
        for (const insert of refused) insert.answer(ledger.limitExceeded(insert.record.size))
        if (accepted.length === 0) return
        const records = accepted.map((insert) => insert.record)
        const createdAt = yield* Clock.currentTimeMillis
        const written = yield* Effect.exit(guarded("store the record", writeRows(records, createdAt)))
        if (Exit.isSuccess(written)) ledger.added(records)
        const error = Exit.isSuccess(written) ? undefined : (Cause.squash(written.cause) as InsertError)
        for (const insert of accepted) insert.answer(error)
      })

    // ---- the rest of the commands ----------------------------------------------------------------

    const retryUndeleted = Effect.suspend(() => {
      if (ledger.undeleted.size === 0) return Effect.void
      return run<{ size: number }>(statements.deleteIds, [JSON.stringify([...ledger.undeleted])]).pipe(
        Effect.tap((deleted) =>
          Effect.sync(() => {
            ledger.removed(deleted)
            ledger.undeleted = new Set()
          })
        ),
        Effect.ignore
      )
    })

    const listStreams = retryUndeleted.pipe(
      Effect.zipRight(run<{ name: string }>(statements.streams)),
      Effect.map((rows) => rows.map((row) => row.name))
    )

    /**
     * Deletes the rows of `streamName` that can't be turned into records, and warns of them: the
     * stream and how many, and what was found in which column, never the values.
     */
    const setAside = (streamName: string, unreadable: ReadonlyArray<number>, problems: ReadonlySet<string>) =>
      Effect.gen(function* () {
        ledger.removed(yield* run<{ size: unknown }>(statements.deleteIds, [JSON.stringify(unreadable)]))
        const count = unreadable.length
        yield* Effect.logWarning(
          `Set aside ${count} unreadable cached ${count === 1 ? "record" : "records"} of stream ${streamName}` +
            (problems.size > 0 ? ` (${[...problems].join("; ")})` : "")
        ).pipe(Effect.annotateLogs({ stream: streamName, dropped: count }))
      })

    /** One read of the oldest records of a stream: the records, and the ids of the rows that can't be read. */
    const readOnce = (streamName: string, limits: BatchLimits, after: number) =>
      Effect.gen(function* () {
        const { undeleted } = ledger
        const unreadable: Array<number> = []
        const problems = new Set<string>()
        const sizes = yield* run<Row.SizeRow>(statements.sizes, [streamName, after, limits.maxRecords + undeleted.size])
        let total = 0
        let taken = 0
        let last: number | undefined
        for (const { id, size } of sizes) {
          if (undeleted.has(id)) continue
          if (!Row.isSize(size)) {
            unreadable.push(id)
            problems.add(Row.sizeProblem(size))
            continue
          }
          if (taken === limits.maxRecords || total + size > limits.maxBytes) break
          total += size
          taken++
          last = id
        }
        const records: Array<StoredRecord> = []
        if (last !== undefined) {
          const known = new Set(unreadable)
          for (const row of yield* run<Row.RecordRow>(statements.rows, [streamName, sizes[0]!.id, last])) {
            if (undeleted.has(row.id) || known.has(row.id)) continue
            const problem = Row.problemOf(row)
            if (problem === undefined) {
              records.push(Row.toRecord(streamName, row))
            } else {
              unreadable.push(row.id)
              problems.add(problem)
            }
          }
        }
        return { records, unreadable, problems }
      })

    /** Reads a batch, setting unreadable rows aside until it finds a readable one or the stream ends. */
    const readBatch = (streamName: string, limits: BatchLimits, after: number) =>
      Effect.gen(function* () {
        for (;;) {
          const { records, unreadable, problems } = yield* readOnce(streamName, limits, after)
          if (unreadable.length === 0) return records
          yield* setAside(streamName, unreadable, problems)
          if (records.length > 0) return records
        }
      })

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
          ledger.removed(dropped)
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
        Effect.tap((deleted) => Effect.sync(() => ledger.removed(deleted))),
        Effect.tapError(() =>
          run<{ id: number }>(statements.idsInRange, range).pipe(
            Effect.tap((rows) =>
              Effect.sync(() => {
                const kept = new Set(notAccepted)
                for (const { id } of rows) if (!kept.has(id)) ledger.undeleted.add(id)
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
          const range = [answer.streamName, answer.firstId, answer.lastId, JSON.stringify([...ledger.undeleted])]
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
        ledger.removed(deleted)
        return droppedOf(deleted.filter((row) => !ledger.undeleted.delete(row.id)))
      })

    const clearAll = connection.executeRaw(statements.clear, []).pipe(
      Effect.map((result) => {
        ledger.cleared()
        return (result as { readonly changes: number }).changes
      })
    )

    const readStatus = Effect.map(
      run<{ created_at: number }>(statements.oldest),
      ([oldest]): CacheStatus => ({ records: ledger.records, bytes: ledger.bytes, oldestCreatedAt: oldest?.created_at })
    )

    // ---- the actor ------------------------------------------------------------------------------

    const actor = yield* Actor.make({
      commit: commitGroup,
      recover: readTotals.pipe(
        Effect.tap((totals) => ledger.reset(totals)),
        Effect.catchAllCause(() => Effect.void)
      )
    })
    const command = <A>(operation: string, work: Effect.Effect<A, SqlError>) =>
      actor.command(operation, guarded(operation, work))

    return RecordStorage.of({
      insert: actor.insert,
      insertAll: actor.insertAll,
      streams: command("list the streams", listStreams).pipe(Effect.withSpan("RecordStorage.streams")),
      batch: (streamName, limits, after = 0) =>
        command("read a batch", readBatch(streamName, limits, after)).pipe(Effect.withSpan("RecordStorage.batch")),
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
