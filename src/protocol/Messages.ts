/**
 * What the caller's thread and the engine say to each other over a message port (a Worker's, or a
 * `MessageChannel` when the engine runs on the caller's thread). Messages are tuples: a tag, then
 * the fields. Records travel in packed groups (`Groups.ts`); every request gets exactly one answer.
 *
 * @internal
 */
import type { WireError } from "../Errors.js"

/** An operation other than `record`, one message there and one back. */
export type Call =
  | { readonly _tag: "Flush" }
  | { readonly _tag: "Clear" }
  | { readonly _tag: "Status" }
  | { readonly _tag: "Enable" }
  | { readonly _tag: "Disable" }
  | { readonly _tag: "Close"; readonly flushTimeoutMillis: number | undefined }

/** Credentials as they cross: the fields of the SDK's `AwsCredentialIdentity`. */
export interface CredentialsIdentity {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken?: string | undefined
  readonly expiration?: Date | undefined
}

/** The caller's answer to the engine's request for credentials. */
export type CredentialsAnswer =
  | { readonly _tag: "Credentials"; readonly identity: CredentialsIdentity }
  | { readonly _tag: "NoCredentials"; readonly message: string }

/** Messages from the caller's thread to the engine. */
export type ToEngine =
  /** A group of records, numbered from `firstSeq` by the producer; `lengths[i]` bytes of `chunks[i]` are used. */
  | readonly [tag: "Insert", firstSeq: number, chunks: ReadonlyArray<ArrayBuffer>, lengths: ReadonlyArray<number>]
  /** A call; `parentSpan` names the caller's span that engine spans go under. */
  | readonly [tag: "Call", id: number, call: Call, parentSpan: number | undefined]
  | readonly [tag: "Credentials", askId: number, answer: CredentialsAnswer]

/** A log line of the engine: its level's label, its message parts and annotations. */
export interface LogLine {
  readonly level: string
  readonly message: ReadonlyArray<unknown>
  readonly annotations: ReadonlyArray<readonly [string, unknown]>
}

/** A metric update of the engine: the metric's name, its tags, the amount or value. */
export type MetricUpdate = readonly [name: string, tags: ReadonlyArray<readonly [string, string]>, value: number]

/** A span the engine finished, with its real times (epoch nanoseconds). */
export interface FinishedSpan {
  readonly id: number
  readonly name: string
  /** The engine span it ran under, if any. */
  readonly parent: number | undefined
  /** The caller's span it ran under (the `parentSpan` of a call), if any. */
  readonly callerParent: number | undefined
  readonly startTime: bigint
  readonly endTime: bigint
  readonly attributes: ReadonlyArray<readonly [string, unknown]>
  /** The failure's description when the span ended in failure. */
  readonly failure: string | undefined
}

/** What the engine reports besides answers: log lines, metric updates, finished spans. */
export interface Telemetry {
  readonly logs: ReadonlyArray<LogLine>
  readonly metrics: ReadonlyArray<MetricUpdate>
  readonly spans: ReadonlyArray<FinishedSpan>
}

/** Messages from the engine to the caller's thread. */
export type FromEngine =
  | readonly [tag: "Ready"]
  | readonly [tag: "OpenFailed", error: WireError]
  /** The group from `firstSeq` is committed, but for the records listed by their place in the group. */
  | readonly [tag: "Committed", firstSeq: number, failures: ReadonlyArray<readonly [index: number, error: WireError]>]
  | readonly [tag: "Done", id: number, value: unknown]
  | readonly [tag: "Failed", id: number, error: WireError]
  | readonly [tag: "AskCredentials", askId: number]
  | readonly [tag: "Telemetry", telemetry: Telemetry]

/** One end of the channel: a Worker's `parentPort`, a `Worker`, or a `MessagePort`. */
export interface Port<In, Out> {
  postMessage(message: Out, transfer?: ReadonlyArray<ArrayBuffer>): void
  on(event: "message", listener: (message: In) => void): unknown
  off(event: "message", listener: (message: In) => void): unknown
}
