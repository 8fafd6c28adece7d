/**
 * Opens the SQLite cache file: creates its directory and file (mode 0600), claims it for this
 * process, and brings its schema up to date.
 *
 * @internal
 */

import * as fs from "node:fs"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { KinesisStorageException } from "../../Errors.js"
import { claimFile, errorCode, inMemory, inUse, isBusy, openBusyMillis, storageError } from "./cacheFile.js"

/** `PRAGMA auto_vacuum` value of incremental vacuum. */
const incrementalVacuum = 2

/**
 * Files up to this size get `PRAGMA quick_check(1)` at open: about 1 ms per MiB with the file in
 * the page cache, 25 ms per MiB cold (docs/architecture.md, "Corruption found at open").
 */
const checkedAtOpenBytes = 32 * 1024 * 1024

/** The size the WAL file is cut back to after a checkpoint: 16 MiB. */
const walSizeLimit = 16 * 1024 * 1024

const migrations = Migrator.fromRecord({
  "0001_create_records": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE records (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      stream_name TEXT NOT NULL,
      partition_key TEXT NOT NULL,
      data BLOB NOT NULL,
      size INTEGER NOT NULL,
      retry_count INTEGER NOT NULL DEFAULT 0,
      created_at INTEGER NOT NULL
    )`
    yield* sql`CREATE INDEX records_stream_id ON records (stream_name, id)`
  }),
  // Picking a batch reads the ids and sizes of a stream's oldest records. With `size` in the index
  // that read never touches the table, where `size` sits after the data (and, for a large record,
  // after a chain of overflow pages SQLite would have to walk to reach it).
  "0002_index_sizes": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE INDEX records_stream_id_size ON records (stream_name, id, size)`
    yield* sql`DROP INDEX records_stream_id`
  })
})

/** The driver error behind a failure of @effect/sql, or the failure itself. */
const driverError = (error: unknown): unknown =>
  typeof error === "object" && error !== null && "cause" in error ? error.cause : error

/** An open cache database: its connection, and how its failures are reported. */
export interface Database {
  /** The one connection to the file, held until the scope closes. */
  readonly connection: SqlConnection.Connection
  /** The error for a failed operation ("read a batch", ...). */
  readonly failure: (operation: string) => (cause: unknown) => KinesisStorageException
  /** The error once the file was found corrupt: what happened and what to do. */
  readonly corrupt: (cause: unknown) => KinesisStorageException
}

/**
 * Opens the cache database at `filename` (or in memory) and runs the migrations. The connection
 * takes an exclusive lock on the file at once and holds it until the scope closes. While opening it
 * waits at most `openBusyMillis` for a lock, so that of two clients opening one file at the same
 * moment one owns it and the other is told it is in use; once it owns the file it never waits.
 */
export const open = (filename: string): Effect.Effect<Database, KinesisStorageException, Scope.Scope> =>
  Effect.gen(function* () {
    const persistent = filename !== inMemory
    if (persistent) yield* claimFile(filename)
    // claimFile already put the file in WAL mode (a setting SQLite keeps in the file), so the
    // connection does not set it again.
    const sql = yield* SqliteClient.make({ filename, disableWAL: true }).pipe(
      Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)
    )
    yield* sql.unsafe(`PRAGMA busy_timeout = ${openBusyMillis}`)
    yield* sql`PRAGMA synchronous = NORMAL`
    // After a checkpoint the WAL file is cut back to this size, whatever one large transaction grew it to.
    yield* sql.unsafe(`PRAGMA journal_size_limit = ${walSizeLimit}`)
    if (persistent) {
      // Take the exclusive lock now, not at the first write: a client that only reads would
      // otherwise hold a shared lock that lets a second client in.
      yield* sql`PRAGMA locking_mode = EXCLUSIVE`
      yield* sql`BEGIN IMMEDIATE`.pipe(
        Effect.mapError((error) => (isBusy(driverError(error)) ? inUse(filename, error) : error))
      )
      yield* sql`COMMIT`
    }
    // The file is this connection's now: from here nothing waits for a lock.
    yield* sql`PRAGMA busy_timeout = 0`
    // Pages freed by deletes can be given back to the file system a step at a time. A cache made by an
    // earlier version is rebuilt once to allow it (VACUUM; on an empty file that is instant).
    const [vacuum] = yield* sql<{ auto_vacuum: number }>`PRAGMA auto_vacuum`
    if (vacuum?.auto_vacuum !== incrementalVacuum) {
      yield* sql`PRAGMA auto_vacuum = INCREMENTAL`
      yield* sql`VACUUM`
    }
    yield* Migrator.make({})({ loader: migrations }).pipe(Effect.provideService(SqlClient.SqlClient, sql))
    const corrupt = storageError(
      `The cache file ${filename} is corrupt: records can no longer be stored or read`,
      "Close the client, move the file away (keep it to inspect), and start a new client: it creates a new cache."
    )
    if (persistent && fs.statSync(filename).size <= checkedAtOpenBytes) {
      // Damage found now is refused at create, before any record is acknowledged into the file.
      const [check] = yield* sql<{ quick_check: string }>`PRAGMA quick_check(1)`.pipe(
        Effect.mapError((error) => (isCorrupt(error) ? corrupt(error) : error))
      )
      if (check?.quick_check !== "ok") return yield* Effect.fail(corrupt(check?.quick_check))
    }
    const connection = yield* sql.reserve
    return {
      connection,
      failure: (operation: string) => storageError(`The cache database failed to ${operation}`),
      corrupt
    }
  }).pipe(
    // Whatever statement met the other owner's lock, the answer is that the file is in use.
    Effect.mapError((error) =>
      error instanceof KinesisStorageException
        ? error
        : isBusy(driverError(error))
          ? inUse(filename, error)
          : openFailed(filename)(error)
    ),
    Effect.catchAllDefect((defect) => Effect.fail(openFailed(filename)(defect)))
  )

/** Whether a failed statement found the file corrupt, or not a database at all. */
export const isCorrupt = (error: unknown): boolean => {
  const code = errorCode(driverError(error))
  return code !== undefined && (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB")
}

const openFailed = (filename: string) =>
  storageError(`Could not open the cache database ${filename}`, "Check the file, or move it away to start afresh.")
