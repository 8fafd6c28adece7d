/**
 * The Promise facade, for callers who don't use Effect. It calls the same producer as the Effect
 * API and adds no behaviour of its own.
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
import type { Writable } from "node:stream"
import type { KinesisClient as SdkClient } from "@aws-sdk/client-kinesis"
import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { type AmplifyKinesisException, isAmplifyKinesisException, KinesisUnknownException } from "./Errors.js"
import * as KinesisClient from "./KinesisClient.js"
import type { Producer } from "./producer/Producer.js"
import { recordWritable } from "./producer/RecordWritable.js"
import type { Call } from "./protocol/Messages.js"

export * from "./Errors.js"
export { FlushInterval, FlushNone, type FlushStrategy } from "./FlushStrategy.js"
export type {
  CacheStatus,
  ClearCacheData,
  ClientLogLevel,
  CloseOptions,
  FlushData,
  HttpSettings,
  KinesisClientConfig,
  KinesisClientOptions,
  RecordData,
  RecordError,
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

const ok = <A>(value: A): Result<A> => ({ _tag: "Ok", value })
const failed = (error: AmplifyKinesisException): Result<never> => ({ _tag: "Error", error })

/** The facade's logger: the format of Effect's default logger (logfmt), written to stderr so that stdout stays the app's. */
const stderrLogger = Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))

/**
 * A client with a Promise API, the counterpart of Amplify's `AmplifyKinesisClient`. Its calls go
 * straight to the client's producer, as the Effect API's do: no runtime runs on the record path.
 */
export class AmplifyKinesisClient {
  private constructor(
    private readonly runtime: ManagedRuntime.ManagedRuntime<KinesisClient.KinesisClient, unknown>,
    private readonly client: KinesisClient.KinesisClient,
    private readonly producer: Producer
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
    return new AmplifyKinesisClient(runtime, exit.value, KinesisClient.producerOf(exit.value))
  }

  private disposed: Promise<void> | undefined

  private call<A>(call: Exclude<Call, { _tag: "Close" }>): Promise<Result<A>> {
    return new Promise((resolve) =>
      this.producer.call(call, (error, value) => resolve(error === undefined ? ok(value as A) : failed(error)))
    )
  }

  /** Stores a record in the local cache; see `KinesisClient.record`. */
  record(input: KinesisClient.RecordInput): Promise<Result<KinesisClient.RecordData>> {
    return new Promise((resolve) =>
      this.producer.record(input, (error) => resolve(error === undefined ? ok({}) : failed(error)))
    )
  }

  /** Stores many records at once: one outcome per input, in input order; see `KinesisClient.recordAll`. */
  recordAll(inputs: Iterable<KinesisClient.RecordInput>): Promise<ReadonlyArray<Result<KinesisClient.RecordData>>> {
    return new Promise((resolve) =>
      this.producer.recordAll(inputs, (outcomes) =>
        resolve(outcomes.map((error) => (error === undefined ? ok({}) : failed(error))))
      )
    )
  }

  /**
   * An object-mode `Writable` of records, for Node streams: each chunk written is handed over with
   * the others waiting (up to `highWaterMark`, default 500) and the stream asks for more only once
   * they are stored (backpressure). The first record refused makes it emit `error` with that
   * record's effect-kinesis error, once the records handed over with it are settled: the records
   * before it are stored, and so are the others handed over with it that were not refused.
   */
  writable(options: { readonly highWaterMark?: number } = {}): Writable {
    return recordWritable(this.producer, options.highWaterMark ?? 500)
  }

  /** Sends one batch per stream now; see `KinesisClient.flush`. */
  flush(): Promise<Result<KinesisClient.FlushData>> {
    return this.call({ _tag: "Flush" })
  }

  /** Deletes every cached record. */
  clearCache(): Promise<Result<KinesisClient.ClearCacheData>> {
    return this.call<number>({ _tag: "Clear" }).then((result) =>
      result._tag === "Ok" ? ok({ recordsCleared: result.value }) : result
    )
  }

  /** How many records and bytes the cache holds, and the age of the oldest; see `KinesisClient.cacheStatus`. */
  cacheStatus(): Promise<Result<KinesisClient.CacheStatus>> {
    return this.call({ _tag: "Status" })
  }

  /** Resumes collection and automatic flushing. Takes effect at once. */
  enable(): void {
    this.producer.enable()
  }

  /** Drops new records and pauses automatic flushing. Takes effect at once. */
  disable(): void {
    this.producer.disable()
  }

  /**
   * Stops flushing, waits for the requests in flight, and releases the cache, the SDK client and the
   * runtime. With `flushTimeout`, first flushes as with `drain: true` for at most that long; see
   * `KinesisClient.close`. A second call waits for the first, whatever its options.
   */
  async close(options?: KinesisClient.CloseOptions): Promise<void> {
    // runPromiseExit, not runPromise, which would reject with a FiberFailure wrapper. The runtime is
    // disposed whatever the outcome; a second close finds it disposed and has nothing more to do.
    if (this.disposed) return this.disposed
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
    return this.producer.isEnabled
  }

  /** Whether the client was closed. */
  get isClosed(): boolean {
    return this.producer.isClosed
  }

  /** The AWS SDK client, for Kinesis calls this library does not cover; see `KinesisClient.kinesisClient`. */
  get kinesisClient(): SdkClient {
    return this.client.kinesisClient
  }
}
