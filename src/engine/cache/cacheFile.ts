/**
 * Prepares the SQLite cache file: creates its directory and file (mode 0600) and checks, with a
 * probe that holds nothing afterwards, that no other client owns it (the engine's connection then
 * takes the lock, database.ts). Needs only better-sqlite3, not @effect/sql: the caller's thread
 * checks the file before the engine's worker starts, and never loads @effect/sql.
 *
 * @internal
 */

import * as fs from "node:fs"
import * as path from "node:path"
import Sqlite from "better-sqlite3"
import * as Effect from "effect/Effect"
import { KinesisStorageException } from "../../Errors.js"

/**
 * How long the cache's connection waits for another opener's brief locks while it opens (`claimFile`'s
 * probe never waits): two clients that open one file at the same moment then end with one owner and
 * one "in use", never with both refused.
 */
export const openBusyMillis = 250

/** The in-memory database name: nothing is persisted. */
export const inMemory = ":memory:"

/** A `KinesisStorageException` with `message` (and a recovery suggestion) for a failure caused by `cause`. */
export const storageError = (message: string, recoverySuggestion?: string) => (cause: unknown) =>
  new KinesisStorageException({ message, cause, ...(recoverySuggestion ? { recoverySuggestion } : {}) })

/** The SQLite result code of a driver error (`SQLITE_BUSY`, `SQLITE_FULL`, ...). */
export const errorCode = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : undefined

/** Whether a driver error says the file is locked by another connection (`SQLITE_BUSY`, `SQLITE_BUSY_*`). */
export const isBusy = (cause: unknown): boolean => errorCode(cause)?.startsWith("SQLITE_BUSY") === true

/**
 * Creates the directory and the file with owner-only permissions, then checks, without waiting,
 * that no other client holds the file: an owner keeps an exclusive lock for as long as it is open,
 * and the operating system drops that lock when the owner's process dies.
 */
export const claimFile = (filename: string): Effect.Effect<void, KinesisStorageException> =>
  Effect.try({
    try: () => {
      fs.mkdirSync(path.dirname(filename), { recursive: true, mode: 0o700 })
      fs.closeSync(fs.openSync(filename, "a", 0o600))
      fs.chmodSync(filename, 0o600)
      // The probe never waits: while it waited, its own read lock would hold off the opener it waits
      // for, and both would be refused.
      const probe = new Sqlite(filename, { timeout: 0 })
      try {
        probe.pragma("journal_mode = WAL")
      } finally {
        probe.close()
      }
    },
    catch: (cause) =>
      isBusy(cause) ? inUse(filename, cause) : storageError(`Could not open the cache file ${filename}`)(cause)
  })

/** The error for a cache file that another client holds: `inUse` is set. */
export const inUse = (filename: string, cause: unknown) =>
  new KinesisStorageException({
    message: `The cache file ${filename} is in use by another client`,
    recoverySuggestion: "Close the other client, or give this one another storagePath or region.",
    cause,
    inUse: true
  })

/** Whether `error` says another client holds the cache file. */
export const isInUse = (error: KinesisStorageException): boolean => error.inUse === true
