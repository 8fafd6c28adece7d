/**
 * The caller's side of a client: plain TypeScript, no fiber per call. `record` validates, copies the
 * bytes once into the open group and keeps the callback; at the end of the microtask (or at 500
 * records or 4 MiB) the group is handed to the engine in one message, and when the engine says it
 * is committed every callback of the group is answered in a loop. Every other operation is one
 * message and one answer. Messages leave in call order, and the engine serves them in that order,
 * so `record(a); clearCache()` clears `a`, wherever the engine runs.
 *
 * If the engine stops (its thread died), every waiting call fails with `KinesisStorageException`,
 * and the next call starts a new engine on the same cache.
 *
 * @internal
 */
import type * as Tracer from "effect/Tracer"
import {
  type AmplifyKinesisException,
  ClientClosedException,
  fromWire,
  KinesisStorageException,
  KinesisValidationException,
  type WireError
} from "../Errors.js"
import { GroupBuffer } from "../protocol/Groups.js"
import type { Call, FromEngine, ToEngine } from "../protocol/Messages.js"
import { check, type ValidRecord } from "../RecordInput.js"
import type { Bridge } from "./Bridge.js"
import type { Connect, Connection } from "./Connection.js"

/** The answer to one record: undefined when it is stored (or dropped by a disabled client). */
export type RecordAnswer = (error: AmplifyKinesisException | undefined) => void

/** The answer to a call: its error, or its value. */
export type CallAnswer = (error: AmplifyKinesisException | undefined, value?: unknown) => void

/** How many records, and bytes of record sizes, one group holds at most. */
const maxGroupRecords = 500
const maxGroupBytes = 4 * 1024 * 1024

/** What every call answers once `close` has begun. */
export const closedError = (): ClientClosedException =>
  new ClientClosedException({ message: "The client is closed", recoverySuggestion: "Create a new client." })

/**
 * Answers after a turn of the event loop: an answer that needs no I/O (a closed or disabled client,
 * invalid input) would otherwise let a caller that retries in a loop starve every timer and socket.
 */
const later = (answer: () => void) => setImmediate(answer)

/** A call waiting for its answer, and the caller's span it runs under. */
interface PendingCall {
  readonly call: Call
  readonly answers: Array<CallAnswer>
  readonly span: Tracer.AnySpan | undefined
}

/** The caller's side of one client. */
export class Producer {
  private enabledState = true
  private closedState = false
  private closing: Promise<void> | undefined

  /** The engine, once it answered Ready; messages wait in `outbox` while one starts. */
  private connection: Connection | undefined
  private starting: Promise<AmplifyKinesisException | undefined> | undefined
  private outbox: Array<readonly [ToEngine, ReadonlyArray<ArrayBuffer> | undefined]> = []

  /** The group being filled. */
  private open: GroupBuffer | undefined
  private openAnswers: Array<RecordAnswer> = []
  private openBytes = 0
  private sealDue = false

  /** Groups sent and not yet answered, by the number of their first record. */
  private readonly groups = new Map<number, Array<RecordAnswer>>()
  private nextSeq = 0
  private readonly calls = new Map<number, PendingCall>()
  private nextCall = 0
  /** Messages sent so far: a status request can be shared only while nothing was sent after it. */
  private sent = 0
  private lastStatus: { readonly id: number; readonly sentAs: number } | undefined

  private constructor(
    private readonly connect: Connect,
    private readonly bridge: Bridge
  ) {}

  /** Starts the engine; rejects with the reason it could not (the cache in use, a corrupt file, ...). */
  static async open(connect: Connect, bridge: Bridge): Promise<Producer> {
    const producer = new Producer(connect, bridge)
    const failure = await producer.start()
    if (failure !== undefined) throw failure
    return producer
  }

  /** Whether records are collected (false once closed). */
  get isEnabled(): boolean {
    return this.enabledState && !this.closedState
  }

  /** Whether `close` has begun. */
  get isClosed(): boolean {
    return this.closedState
  }

  // ---- records ------------------------------------------------------------------------------

  /** Validates and hands over one record; `answer` once it is committed, refused, or dropped (disabled). */
  record(input: unknown, answer: RecordAnswer): void {
    if (this.closedState) return void later(() => answer(closedError()))
    if (!this.enabledState) return void later(() => answer(undefined))
    const checked = check(input)
    if (checked instanceof KinesisValidationException) return void later(() => answer(checked))
    this.add(checked, answer)
  }

  /**
   * Hands over many records at once; `answer` gets one outcome per input, in input order, once all
   * are settled. An invalid record fails alone; the others are stored.
   */
  recordAll(inputs: Iterable<unknown>, answer: (outcomes: Array<AmplifyKinesisException | undefined>) => void): void {
    const all = Array.from(inputs)
    const outcomes: Array<AmplifyKinesisException | undefined> = new Array(all.length).fill(undefined)
    if (this.closedState || !this.enabledState) {
      const error = this.closedState ? closedError() : undefined
      return void later(() => answer(outcomes.fill(error)))
    }
    let waiting = 1
    const settled = () => {
      if (--waiting === 0) answer(outcomes)
    }
    for (const [index, input] of all.entries()) {
      const checked = check(input)
      if (checked instanceof KinesisValidationException) {
        outcomes[index] = checked
        continue
      }
      waiting++
      this.add(checked, (error) => {
        outcomes[index] = error
        settled()
      })
    }
    this.seal()
    if (waiting === 1) later(settled)
    else settled()
  }

  private add(record: ValidRecord, answer: RecordAnswer) {
    if (this.open !== undefined && this.openBytes + record.size > maxGroupBytes) this.seal()
    this.open ??= new GroupBuffer()
    this.open.add(record)
    this.openAnswers.push(answer)
    this.openBytes += record.size
    if (this.openAnswers.length >= maxGroupRecords) return this.seal()
    if (!this.sealDue) {
      this.sealDue = true
      queueMicrotask(() => {
        this.sealDue = false
        this.seal()
      })
    }
  }

  /** Hands the open group over. */
  private seal() {
    const group = this.open
    if (group === undefined) return
    const firstSeq = this.nextSeq
    this.nextSeq += this.openAnswers.length
    this.groups.set(firstSeq, this.openAnswers)
    this.open = undefined
    this.openAnswers = []
    this.openBytes = 0
    this.send(["Insert", firstSeq, group.chunks, group.lengths], group.chunks)
  }

  // ---- calls --------------------------------------------------------------------------------

  /**
   * Sends a call after every record handed over before it; `answer` gets its error or value. Status
   * requests made while one is waiting and nothing was sent after it share its answer.
   */
  call(call: Exclude<Call, { _tag: "Close" }>, answer: CallAnswer, span?: Tracer.AnySpan): void {
    if (this.closedState) return void later(() => answer(closedError()))
    this.seal()
    if (call._tag === "Status" && this.lastStatus?.sentAs === this.sent) {
      const shared = this.calls.get(this.lastStatus.id)
      if (shared !== undefined) return void shared.answers.push(answer)
    }
    const id = this.request(call, answer, span)
    if (call._tag === "Status") this.lastStatus = { id, sentAs: this.sent }
  }

  private request(call: Call, answer: CallAnswer, span: Tracer.AnySpan | undefined): number {
    const id = this.nextCall++
    this.calls.set(id, { call, answers: [answer], span })
    this.send(["Call", id, call, span === undefined ? undefined : id])
    return id
  }

  /**
   * Resumes collection at once, and the automatic flush; `done` once the engine's loop runs again.
   * No-op when enabled or closed.
   */
  enable(done: () => void = () => {}): void {
    this.toggle(true, done)
  }

  /**
   * Drops new records from now on and pauses the automatic flush; `done` once the engine's loop has
   * stopped (an automatic flush in progress is finished first). No-op when disabled or closed.
   */
  disable(done: () => void = () => {}): void {
    this.toggle(false, done)
  }

  private toggle(on: boolean, done: () => void) {
    if (this.closedState || this.enabledState === on) return void later(done)
    this.enabledState = on
    this.call({ _tag: on ? "Enable" : "Disable" }, () => done())
  }

  /**
   * Closes the client: every later call answers `ClientClosedException`; the engine answers what
   * was sent before, runs the final flush when `flushTimeoutMillis` is given, releases the cache and
   * ends. A second call waits for the first.
   */
  close(flushTimeoutMillis: number | undefined): Promise<void> {
    if (this.closing !== undefined) return this.closing
    this.closedState = true
    this.seal()
    this.closing = new Promise<void>((resolve) => {
      // An engine that died is not started again only to be closed.
      if (this.connection === undefined && this.starting === undefined) return resolve()
      this.request(
        { _tag: "Close", flushTimeoutMillis },
        () => {
          const connection = this.connection
          this.connection = undefined
          void (connection?.stop() ?? Promise.resolve()).then(() => {
            // What the closed engine can no longer answer (an operation it was still running when
            // its cache closed) is answered here: every request gets an answer.
            this.failAll(closedError())
            resolve()
          })
        },
        undefined
      )
    })
    return this.closing
  }

  // ---- the connection -------------------------------------------------------------------------

  private send(message: ToEngine, transfer?: ReadonlyArray<ArrayBuffer>) {
    this.sent++
    if (this.connection !== undefined) {
      this.connection.post(message, transfer)
      this.connection.setActive(true)
      return
    }
    this.outbox.push([message, transfer])
    void this.start()
  }

  /**
   * Starts an engine if none runs, then sends what waited for it; if it can't start, what waited
   * fails, and the returned promise gives the reason.
   */
  private start(): Promise<AmplifyKinesisException | undefined> {
    // What a connection says is heard only while it is the producer's: a dead engine's last words
    // never reach its successor, and a question is answered to the engine that asked it.
    let own: Connection | undefined
    const handlers = {
      onMessage: (message: FromEngine) => this.receive(message, own),
      onExit: (reason: string) => {
        if (own !== undefined && own === this.connection) this.died(reason)
      }
    }
    this.starting ??= Promise.resolve()
      .then(() => this.connect(handlers))
      .then(
        (connection) => {
          own = connection
          this.starting = undefined
          this.connection = connection
          // A new engine starts enabled: a disabled client says so first.
          if (!this.enabledState && !this.closedState) {
            connection.post(["Call", this.nextCall++, { _tag: "Disable" }, undefined])
          }
          const waiting = this.outbox
          this.outbox = []
          for (const [message, transfer] of waiting) connection.post(message, transfer)
          this.track()
          return undefined
        },
        (error: AmplifyKinesisException) => {
          this.starting = undefined
          this.outbox = []
          this.failAll(error)
          return error
        }
      )
    return this.starting
  }

  /** The engine stopped unasked: what waits on it fails; the next call starts a new one. */
  private died(reason: string) {
    this.connection = undefined
    this.bridge.reset()
    this.failAll(
      new KinesisStorageException({
        message: `The engine stopped before it answered (${reason}): records handed over may have been stored`,
        recoverySuggestion:
          "Try again: the next call starts a new engine on the same cache. A record retried after this error may be delivered twice."
      })
    )
  }

  private failAll(error: AmplifyKinesisException) {
    const groups = [...this.groups.values()]
    const calls = [...this.calls.values()]
    this.groups.clear()
    this.calls.clear()
    this.lastStatus = undefined
    for (const answers of groups) for (const answer of answers) answer(error)
    for (const call of calls) for (const answer of call.answers) answer(error)
  }

  /** Keeps the process alive only while an answer is awaited. */
  private track() {
    this.connection?.setActive(this.groups.size > 0 || this.calls.size > 0)
  }

  private receive(message: FromEngine, from: Connection | undefined) {
    switch (message[0]) {
      case "Committed":
        this.committed(message[1], message[2])
        break
      case "Done":
      case "Failed": {
        const call = this.calls.get(message[1])
        this.calls.delete(message[1])
        if (this.lastStatus?.id === message[1]) this.lastStatus = undefined
        const value = message[0] === "Done" ? message[2] : undefined
        // A flush turned away because close holds the engine reports the closed client, not a flush in progress.
        const turnedAway =
          this.closedState &&
          call?.call._tag === "Flush" &&
          (value as { readonly flushInProgress?: boolean } | undefined)?.flushInProgress === true
        const error =
          message[0] === "Failed" ? this.closedIfClosing(fromWire(message[2])) : turnedAway ? closedError() : undefined
        for (const answer of call?.answers ?? []) answer(error, value)
        break
      }
      case "Telemetry":
        this.bridge.replay(message[1], (ref) => this.calls.get(ref)?.span)
        break
      case "AskCredentials": {
        const askId = message[1]
        void this.bridge.credentials().then((answer) => from?.post(["Credentials", askId, answer]))
        break
      }
    }
    this.track()
  }

  /**
   * An operation sent just before close began can find the cache closed under it: what its caller
   * learns then is that the client was closed, not a storage failure.
   */
  private closedIfClosing(error: AmplifyKinesisException): AmplifyKinesisException {
    return this.closedState && error._tag === "KinesisStorageException" ? closedError() : error
  }

  private committed(firstSeq: number, failures: ReadonlyArray<readonly [number, WireError]>) {
    const answers = this.groups.get(firstSeq)
    this.groups.delete(firstSeq)
    if (answers === undefined) return
    if (failures.length === 0) {
      for (const answer of answers) answer(undefined)
      return
    }
    // Index -1: the whole group failed.
    if (failures[0]![0] === -1) {
      const error = this.closedIfClosing(fromWire(failures[0]![1]))
      for (const answer of answers) answer(error)
      return
    }
    const failed = new Map(failures.map(([index, error]) => [index, this.closedIfClosing(fromWire(error))]))
    for (const [index, answer] of answers.entries()) answer(failed.get(index))
  }
}
