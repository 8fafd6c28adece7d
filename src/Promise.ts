/**
 * The Promise facade, for callers who don't use Effect. It runs the same layers as the Effect API
 * through a `ManagedRuntime` and adds no behaviour of its own.
 *
 * Expected failures never reject: they come back as `{ _tag: "Error", error }` holding one of the
 * effect-kinesis error classes.
 *
 * @example
 * import { AmplifyKinesisClient } from "effect-kinesis/promise"
 *
 * const kinesis = await AmplifyKinesisClient.create({ region: "us-east-1" })
 * const result = await kinesis.record({ data: new TextEncoder().encode("hi"), partitionKey: "p", streamName: "events" })
 * if (result._tag === "Error") console.error(result.error.message)
 * await kinesis.close()
 *
 * @since 0.1.0
 */
import type { KinesisClient as SdkClient } from "@aws-sdk/client-kinesis"
import * as Cause from "effect/Cause"
import type * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as ManagedRuntime from "effect/ManagedRuntime"
import {
  type AmplifyKinesisException,
  ClientClosedException,
  isAmplifyKinesisException,
  KinesisUnknownException
} from "./Errors.js"
import * as KinesisClient from "./KinesisClient.js"

export * from "./Errors.js"
export { FlushInterval, FlushNone, type FlushStrategy } from "./FlushStrategy.js"
export type {
  CacheStatus,
  ClearCacheData,
  ClientLogLevel,
  CloseOptions,
  FlushData,
  KinesisClientConfig,
  KinesisClientOptions,
  RecordData,
  RecordInput
} from "./KinesisClient.js"

/** The outcome of a facade call: `Ok` with a value, or `Error` with an effect-kinesis error. */
export type Result<A> =
  | { readonly _tag: "Ok"; readonly value: A }
  | { readonly _tag: "Error"; readonly error: AmplifyKinesisException }

/** Turns the cause of a failed run into an effect-kinesis error; a defect becomes `KinesisUnknownException`. */
const toException = (cause: Cause.Cause<unknown>): AmplifyKinesisException => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some" && isAmplifyKinesisException(failure.value)) return failure.value
  const squashed = Cause.squash(cause)
  return new KinesisUnknownException({
    message: squashed instanceof Error ? squashed.message : "Unexpected failure",
    cause: squashed
  })
}

const toResult = <A>(exit: Exit.Exit<A, unknown>): Result<A> =>
  Exit.isSuccess(exit) ? { _tag: "Ok", value: exit.value } : { _tag: "Error", error: toException(exit.cause) }

/** What every call answers once `close()` has begun; after a turn of the event loop, like every answer. */
const closedResult = (): Promise<Result<never>> =>
  new Promise((resolve) =>
    setImmediate(() =>
      resolve({
        _tag: "Error",
        error: new ClientClosedException({
          message: "The client is closed",
          recoverySuggestion: "Create a new client."
        })
      })
    )
  )

/** The facade's logger: the format of Effect's default logger (logfmt), written to stderr so that stdout stays the app's. */
const stderrLogger = Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))

/** A client with a Promise API, the counterpart of Amplify's `AmplifyKinesisClient`. */
export class AmplifyKinesisClient {
  private constructor(
    private readonly runtime: ManagedRuntime.ManagedRuntime<KinesisClient.KinesisClient, unknown>,
    private readonly client: KinesisClient.KinesisClient
  ) {}

  /**
   * Opens the cache and starts the client. Rejects with `KinesisStorageException` when the cache
   * can't be opened (or another client owns it) and with `KinesisValidationException` for a missing
   * or malformed region or bad options. The client's log lines (at or above `options.logLevel`) go
   * to stderr.
   */
  static async create(config: KinesisClient.KinesisClientConfig): Promise<AmplifyKinesisClient> {
    const runtime = ManagedRuntime.make(Layer.provideMerge(KinesisClient.layer(config), stderrLogger))
    const exit = await runtime.runPromiseExit(KinesisClient.KinesisClient)
    if (Exit.isFailure(exit)) {
      await runtime.dispose()
      throw toException(exit.cause)
    }
    return new AmplifyKinesisClient(runtime, exit.value)
  }

  /** Set by `close()`: the runtime is disposed (or being disposed) and runs nothing more. */
  private closedState = false
  private disposed: Promise<void> | undefined

  private run<A>(effect: Effect.Effect<A, AmplifyKinesisException>): Promise<Result<A>> {
    if (this.closedState) return closedResult()
    return this.runtime.runPromiseExit(effect).then(toResult)
  }

  /** Stores a record in the local cache; see `KinesisClient.record`. */
  record(input: KinesisClient.RecordInput): Promise<Result<KinesisClient.RecordData>> {
    return this.run(this.client.record(input))
  }

  /** Sends one batch per stream now; see `KinesisClient.flush`. */
  flush(): Promise<Result<KinesisClient.FlushData>> {
    return this.run(this.client.flush())
  }

  /** Deletes every cached record. */
  clearCache(): Promise<Result<KinesisClient.ClearCacheData>> {
    return this.run(this.client.clearCache())
  }

  /** How many records and bytes the cache holds, and the age of the oldest; see `KinesisClient.cacheStatus`. */
  cacheStatus(): Promise<Result<KinesisClient.CacheStatus>> {
    return this.run(this.client.cacheStatus())
  }

  /** Resumes collection and automatic flushing. Takes effect at once. */
  enable(): void {
    if (!this.closedState) this.runtime.runFork(this.client.enable())
  }

  /** Drops new records and pauses automatic flushing. Takes effect at once. */
  disable(): void {
    if (!this.closedState) this.runtime.runFork(this.client.disable())
  }

  /**
   * Stops flushing, waits for the requests in flight, and releases the cache, the SDK client and the
   * runtime. With `flushTimeout`, first flushes as with `drain: true` for at most that long; see
   * `KinesisClient.close`. A second call waits for the first, whatever its options.
   */
  async close(options?: KinesisClient.CloseOptions): Promise<void> {
    // runPromiseExit, not runPromise, which would reject with a FiberFailure wrapper; a defect while
    // closing is reported as an effect-kinesis error like everything else. The runtime is disposed
    // whatever the outcome; a second close finds it disposed and has nothing more to do.
    if (this.disposed) return this.disposed
    this.closedState = true
    this.disposed = this.runtime
      .runPromiseExit(this.client.close(options))
      .finally(() => this.runtime.dispose())
      .then((exit) => {
        if (Exit.isFailure(exit)) throw toException(exit.cause)
      })
    return this.disposed
  }

  /** Whether records are collected. */
  get isEnabled(): boolean {
    return !this.closedState && this.runtime.runSync(this.client.isEnabled)
  }

  /** Whether the client was closed. */
  get isClosed(): boolean {
    return this.closedState || this.runtime.runSync(this.client.isClosed)
  }

  /** The AWS SDK client, for Kinesis calls this library does not cover. */
  get kinesisClient(): SdkClient {
    return this.client.kinesisClient
  }
}
