/**
 * One `PutRecords` call for one stream, its outcome sorted into what the flush engine acts on:
 * per-record results, a request-level error that the service answered, or no response at all.
 *
 * @since 0.1.0
 */
import { PutRecordsCommand, KinesisClient as SdkClient } from "@aws-sdk/client-kinesis"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { KinesisClientConfig } from "../../KinesisClientConfig.js"
import { httpHandler } from "./Sdk.js"

/** One record of a `PutRecords` request. */
export interface PutEntry {
  readonly partitionKey: string
  readonly data: Uint8Array
}

/** What the service said of one record: taken, or refused with an error code. */
export type EntryResult =
  | { readonly _tag: "Accepted" }
  | { readonly _tag: "Rejected"; readonly errorCode: string; readonly errorMessage: string }

/** The service answered the whole request with an error (throttling, missing stream, access denied, ...). */
export class ServiceError extends Data.TaggedError("ServiceError")<{
  readonly name: string
  readonly status: number
  readonly message: string
  readonly cause?: unknown
}> {}

/** No answer came: the network is down, the connection was refused or reset, the call timed out, or credentials could not be resolved. */
export class NoResponse extends Data.TaggedError("NoResponse")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * The names of the transient outcomes: the service is throttling or failing for a while, and the same
 * request may well succeed later. A per-record `ErrorCode` or a request-level error name.
 */
const transientNames: ReadonlySet<string> = new Set([
  "ProvisionedThroughputExceededException",
  "LimitExceededException",
  "ThrottlingException",
  "KMSThrottlingException",
  "InternalFailure",
  "ServiceUnavailable"
])

/** Whether a record's result is a transient refusal: one of the throttling or service-failure codes above. */
export const isTransientResult = (result: EntryResult): boolean =>
  result._tag === "Rejected" && transientNames.has(result.errorCode)

/** Whether a request-level error is transient: throttling, `InternalFailure`, `ServiceUnavailable` or any 5xx. */
export const isTransientError = (error: ServiceError): boolean => transientNames.has(error.name) || error.status >= 500

/**
 * Whether the service refused the request as a whole for what is in it (`ValidationException`,
 * `InvalidArgumentException`), for example one record over the stream's maximum record size: the fault
 * may lie with one record only, so the flush splits the batch rather than charging all of it.
 */
export const isContentRefusal = (error: ServiceError): boolean =>
  error.name === "ValidationException" || error.name === "InvalidArgumentException"

/** The sender service. */
export interface RecordSender {
  /** Sends the entries to one stream in one `PutRecords` call; the results come in request order. */
  readonly putRecords: (
    streamName: string,
    entries: ReadonlyArray<PutEntry>
  ) => Effect.Effect<ReadonlyArray<EntryResult>, ServiceError | NoResponse>
  /** The AWS SDK client the sender uses, for calls this library does not cover. */
  readonly sdkClient: SdkClient
}

/** The `RecordSender` service tag. */
export const RecordSender = Context.GenericTag<RecordSender>("effect-kinesis/RecordSender")

const httpStatus = (error: unknown): number | undefined => {
  const metadata =
    typeof error === "object" && error !== null ? (error as { $metadata?: unknown }).$metadata : undefined
  const status =
    typeof metadata === "object" && metadata !== null
      ? (metadata as { httpStatusCode?: unknown }).httpStatusCode
      : undefined
  return typeof status === "number" ? status : undefined
}

/** What a failed HTTP/2 session most often means here: a local server that speaks only HTTP/1.1. */
const http2Hint = (error: unknown): string =>
  typeof error === "object" && error !== null && (error as { code?: unknown }).code === "ERR_HTTP2_ERROR"
    ? " (the AWS SDK speaks HTTP/2 by default; a local Kinesis such as kinesalite needs an HTTP/1.1" +
      " requestHandler in kinesisClientConfig, e.g. http1Handler() from effect-kinesis/testing)"
    : ""

/** Sorts a failed SDK call: an HTTP status means the service answered; anything else is no response. */
export const classifyError = (error: unknown): ServiceError | NoResponse => {
  const status = httpStatus(error)
  const name = error instanceof Error ? error.name : "Unknown"
  const message = error instanceof Error ? error.message : String(error)
  return status === undefined
    ? new NoResponse({ message: `No response from Kinesis: ${name}: ${message}${http2Hint(error)}`, cause: error })
    : new ServiceError({ name, status, message, cause: error })
}

/**
 * A sender over an existing SDK client. Each call is cut off after `requestTimeout` on Effect's
 * `Clock` (so `TestClock` drives it) and then fails with `NoResponse`; the HTTP request is aborted
 * when the timeout fires or the calling fiber is interrupted. The timeout covers the whole call, so
 * a credentials provider that never settles (the SDK looks at the abort signal only once it sends)
 * does not hold the call, the flush and close() beyond it.
 */
export const fromSdkClient = (sdkClient: SdkClient, requestTimeout: Duration.DurationInput): RecordSender => {
  const timeout = Duration.decode(requestTimeout)
  const timedOut = () =>
    new NoResponse({ message: `No response from Kinesis: the request timed out after ${Duration.format(timeout)}` })
  return RecordSender.of({
    sdkClient,
    putRecords: (streamName, entries) =>
      Effect.tryPromise({
        // The signal aborts when this fiber is interrupted, by the timeout below as by anyone else.
        try: (signal) =>
          sdkClient.send(
            new PutRecordsCommand({
              StreamName: streamName,
              Records: entries.map((entry) => ({ PartitionKey: entry.partitionKey, Data: entry.data }))
            }),
            { abortSignal: signal }
          ),
        catch: classifyError
      }).pipe(
        Effect.timeoutFail({ duration: timeout, onTimeout: timedOut }),
        Effect.map((response) =>
          (response.Records ?? []).map(
            (entry): EntryResult =>
              entry.ErrorCode
                ? { _tag: "Rejected", errorCode: entry.ErrorCode, errorMessage: entry.ErrorMessage ?? "" }
                : { _tag: "Accepted" }
          )
        )
      )
  })
}

/**
 * Builds an SDK client on this thread from the configuration: region, credentials, `kinesisClientConfig`
 * as given, and a request handler for the `http` settings unless `kinesisClientConfig` has one.
 */
export const makeSdkClient = (config: KinesisClientConfig): SdkClient => {
  const handler = config.kinesisClientConfig?.requestHandler ?? httpHandler(config.http)
  return new SdkClient({
    ...config.kinesisClientConfig,
    region: config.region,
    ...(handler === undefined ? {} : { requestHandler: handler }),
    ...(config.credentialsProvider === undefined ? {} : { credentials: config.credentialsProvider })
  })
}

/** The real sender: an SDK client built from the configuration, destroyed when the layer's scope closes. */
export const layer = (config: KinesisClientConfig, requestTimeout: Duration.DurationInput): Layer.Layer<RecordSender> =>
  Layer.scoped(
    RecordSender,
    Effect.acquireRelease(
      Effect.sync(() => makeSdkClient(config)),
      (client) => Effect.sync(() => client.destroy())
    ).pipe(Effect.map((client) => fromSdkClient(client, requestTimeout)))
  )
