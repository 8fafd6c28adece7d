/**
 * The one owner of the cache's connection: a mailbox of commands and one fiber that serves them in
 * order. Inserts waiting together are committed together (group commit): up to `maxGroupSize`
 * records and `maxGroupBytes` of record sizes per group, each caller answered only once its own row
 * is committed.
 *
 * Every command gets exactly one answer. A defect while serving one (a bug, or a value the code did
 * not expect) becomes a `KinesisStorageException` that says what was found, given to the callers of
 * that command only; the actor then brings its state back in line with the table (`recover`) and
 * serves the next command. Should the fiber itself ever stop, every command it took or that is still
 * queued is refused, and the cache refuses new ones.
 *
 * @internal
 */

import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import { KinesisStorageException } from "../../Errors.js"
import * as EventLoop from "../../internal/eventLoop.js"
import type { ValidRecord } from "../../RecordInput.js"
import type { InsertError } from "./RecordStorage.js"

/** One record waiting in the actor's queue, and how to tell its caller the outcome (only the first answer counts). */
export interface PendingInsert {
  readonly record: ValidRecord
  readonly answer: (error: InsertError | undefined) => void
}

/** What the actor serves commands with. */
export interface ActorOptions {
  /** Commits one group of inserts (in order, at most `maxGroupBytes` unless a single record) and answers each. */
  readonly commit: (group: ReadonlyArray<PendingInsert>) => Effect.Effect<void>
  /** Brings the actor's state back in line with the table after a defect. Must not fail. */
  readonly recover: Effect.Effect<void>
}

/** The actor's entries: each one runs on the actor, after every command queued before it. */
export interface Actor {
  /** Runs `work` on the actor (`operation` names it in errors: "read a batch"). */
  readonly command: <A>(
    operation: string,
    work: Effect.Effect<A, KinesisStorageException>
  ) => Effect.Effect<A, KinesisStorageException>
  /** Stores one record; succeeds once its row is committed. */
  readonly insert: (record: ValidRecord) => Effect.Effect<void, InsertError>
  /** Stores records handed over together; answers with each one's error (undefined where it was stored). */
  readonly insertAll: (records: ReadonlyArray<ValidRecord>) => Effect.Effect<ReadonlyArray<InsertError | undefined>>
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

/** How long the actor may keep its thread's event loop from a turn (timers, sockets, messages). */
const eventLoopTurnMillis = 10

const closed = () => new KinesisStorageException({ message: "The cache database is closed" })

/** What a defect says: the error's name and message, or the value thrown. */
const describe = (defect: unknown): string =>
  defect instanceof Error ? `${defect.name}: ${defect.message}` : `${typeof defect} ${String(defect)}`

/** The error a defect while doing `operation` becomes. */
const defectError = (operation: string, defect: unknown) =>
  new KinesisStorageException({
    message: `The cache failed to ${operation}: it found ${describe(defect)}`,
    recoverySuggestion: "This is a bug in effect-kinesis; please report it. The cache goes on serving later calls.",
    cause: defect
  })

/** `f` called at most once: later calls do nothing. */
const once = <A extends ReadonlyArray<unknown>>(f: (...args: A) => void): ((...args: A) => void) => {
  let called = false
  return (...args) => {
    if (called) return
    called = true
    f(...args)
  }
}

/**
 * Starts the actor; it lives as long as the scope. When the scope closes it refuses new commands,
 * answers every command queued before, and stops: register it after the resource it owns, so that
 * it stops before that resource is released.
 */
export const make = (options: ActorOptions): Effect.Effect<Actor, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { commit, recover } = options
    let lastTurn = yield* Clock.currentTimeMillis

    /** Lets the event loop run when the actor has kept it waiting for `eventLoopTurnMillis`. */
    const letEventLoopTurn = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      now - lastTurn < eventLoopTurnMillis
        ? Effect.void
        : Effect.zipRight(
            EventLoop.turn,
            Effect.flatMap(Clock.currentTimeMillis, (after) => Effect.sync(() => (lastTurn = after)))
          )
    )

    /** `work` with its defects turned into `KinesisStorageException`, after `recover`. */
    const catchDefects = <A>(operation: string, work: Effect.Effect<A, KinesisStorageException>) =>
      Effect.catchAllDefect(work, (defect) => Effect.zipRight(recover, Effect.fail(defectError(operation, defect))))

    /** Answers every insert of `inserts` not answered yet with the defect. */
    const failInserts = (inserts: ReadonlyArray<PendingInsert>, defect: unknown) =>
      Effect.zipRight(
        recover,
        Effect.sync(() => {
          const error = defectError("store the record", defect)
          for (const insert of inserts) insert.answer(error)
        })
      )

    /** Commits a run of inserts in groups of at most `maxGroupBytes` (a larger record alone). */
    const commitInserts = (inserts: ReadonlyArray<PendingInsert>): Effect.Effect<void> =>
      Effect.gen(function* () {
        let group: Array<PendingInsert> = []
        let groupBytes = 0
        const commitGroup = (group: ReadonlyArray<PendingInsert>) =>
          Effect.catchAllDefect(commit(group), (defect) => failInserts(group, defect))
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
      }).pipe(Effect.catchAllDefect((defect) => failInserts(inserts, defect)))

    const mailbox = yield* Queue.unbounded<Command>()

    /** The commands taken from the mailbox and not all served yet. */
    let taken: Iterable<Command> = []

    /** Serves commands in order until `Stop`: consecutive inserts are committed together. */
    const serve: Effect.Effect<void> = Effect.gen(function* () {
      for (;;) {
        const commands = yield* Queue.takeBetween(mailbox, 1, maxGroupSize)
        taken = commands
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
        taken = []
        yield* letEventLoopTurn
      }
    })

    let open = true

    /** Queues a command, or refuses it at once when the cache is closing. One synchronous step. */
    const submit = (command: Command, refuse: () => void) => {
      if (open) Queue.unsafeOffer(mailbox, command)
      else refuse()
    }

    /** Refuses `command`; one already answered keeps its answer. */
    const refuse = (command: Command) => {
      if (command._tag === "Insert") for (const pending of command.inserts) pending.answer(closed())
      if (command._tag === "Run") command.refuse(closed())
    }

    const command = <A>(
      operation: string,
      work: Effect.Effect<A, KinesisStorageException>
    ): Effect.Effect<A, KinesisStorageException> =>
      Effect.async<A, KinesisStorageException>((resume) => {
        const answer = once(resume)
        const refuse = (error: KinesisStorageException) => answer(Effect.fail(error))
        submit(
          {
            _tag: "Run",
            run: Effect.matchCause(catchDefects(operation, work), {
              onFailure: (cause) => answer(Effect.failCause(cause)),
              onSuccess: (value) => answer(Effect.succeed(value))
            }),
            refuse
          },
          () => refuse(closed())
        )
      })

    const insert = (record: ValidRecord): Effect.Effect<void, InsertError> =>
      Effect.async<void, InsertError>((resume) => {
        const answer = once((error: InsertError | undefined) =>
          resume(error === undefined ? Effect.void : Effect.fail(error))
        )
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
            answer: once((error) => {
              errors[index] = error
              if (--left === 0) resume(Effect.succeed(errors))
            })
          })
        )
        submit({ _tag: "Insert", inserts }, () => {
          for (const pending of inserts) pending.answer(closed())
        })
      })

    // If the actor ever stopped on a defect, nothing may wait for it: every command it took and did
    // not answer, and every queued command, is refused.
    const refuseLeft = Effect.suspend(() => {
      open = false
      for (const command of taken) refuse(command)
      taken = []
      return Effect.map(Queue.takeAll(mailbox), (left) => {
        for (const command of left) refuse(command)
      })
    })
    const actor = yield* Effect.forkDaemon(Effect.ensuring(serve, refuseLeft))
    // On close: refuse new commands, then let the actor answer every command queued before, so that
    // no caller is left hanging and none is told its record was stored when it was not. The resource
    // is released after this (its finalizer was registered first).
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        open = false
        Queue.unsafeOffer(mailbox, { _tag: "Stop" })
        return actor.await
      })
    )

    return { command, insert, insertAll }
  })
