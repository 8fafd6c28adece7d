/**
 * The caller's side of what the engine reports: its log lines go to the caller's Effect logger
 * (the facade's: stderr), its metric updates to the caller's registry, its spans to the caller's
 * tracer with their real times, under the caller's span that asked, or as roots. And the engine's
 * questions: credentials from the user's provider function.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Tracer from "effect/Tracer"
import { apply } from "../engine/telemetry.js"
import type { CredentialsAnswer, CredentialsIdentity, FinishedSpan, LogLine, Telemetry } from "../protocol/Messages.js"

/** A credentials provider function as the AWS SDK takes it. */
export type CredentialsProvider = () => Promise<CredentialsIdentity>

/** Replays the engine's reports, answers its questions. */
export interface Bridge {
  /** Replays what the engine gathered; `callerSpan` finds the caller's span a call named. */
  readonly replay: (telemetry: Telemetry, callerSpan: (ref: number) => Tracer.AnySpan | undefined) => void
  /** Forgets the spans of an engine that died: their parents will never come. */
  readonly reset: () => void
  /** Asks the user's credentials provider; the answer never rejects. */
  readonly credentials: () => Promise<CredentialsAnswer>
}

const levels = new Map<string, LogLevel.LogLevel>(LogLevel.allLevels.map((level) => [level.label, level]))

/**
 * A bridge into `runtime` (the caller's, captured when the client was made). Log lines pass
 * `logLevel`, the client's own level, as they did in the engine.
 */
export const make = (
  runtime: Runtime.Runtime<never>,
  logLevel: LogLevel.LogLevel,
  provider: CredentialsProvider | undefined
): Bridge => {
  const fork = Runtime.runFork(runtime)
  const tracer = Runtime.runSync(runtime)(Effect.tracer)

  const log = (lines: ReadonlyArray<LogLine>) =>
    fork(
      Effect.forEach(
        lines,
        (line) =>
          Effect.logWithLevel(levels.get(line.level) ?? LogLevel.Info, ...line.message).pipe(
            Effect.annotateLogs(Object.fromEntries(line.annotations))
          ),
        { discard: true }
      ).pipe(Logger.withMinimumLogLevel(logLevel))
    )

  /** Spans whose engine parent has not come yet, by that parent's id: a parent ends after its children. */
  const waiting = new Map<number, Array<FinishedSpan>>()

  const replaySpan = (span: FinishedSpan, parent: Tracer.AnySpan | undefined) => {
    const replayed = tracer.span(
      span.name,
      Option.fromNullable(parent),
      Context.empty(),
      [],
      span.startTime,
      "internal"
    )
    for (const [key, value] of span.attributes) replayed.attribute(key, value)
    for (const child of waiting.get(span.id) ?? []) replaySpan(child, replayed)
    waiting.delete(span.id)
    replayed.end(span.endTime, span.failure === undefined ? Exit.void : Exit.fail(span.failure))
  }

  const spans = (finished: ReadonlyArray<FinishedSpan>, callerSpan: (ref: number) => Tracer.AnySpan | undefined) => {
    for (const span of finished) {
      if (span.parent !== undefined) {
        const siblings = waiting.get(span.parent)
        if (siblings === undefined) waiting.set(span.parent, [span])
        else siblings.push(span)
        continue
      }
      replaySpan(span, span.callerParent === undefined ? undefined : callerSpan(span.callerParent))
    }
  }

  return {
    replay: (telemetry, callerSpan) => {
      for (const update of telemetry.metrics) apply(update)
      if (telemetry.logs.length > 0) log(telemetry.logs)
      if (telemetry.spans.length > 0) spans(telemetry.spans, callerSpan)
    },
    reset: () => waiting.clear(),
    credentials: async () => {
      if (provider === undefined) return { _tag: "NoCredentials", message: "No credentials provider" }
      try {
        const identity = await provider()
        return {
          _tag: "Credentials",
          identity: {
            accessKeyId: identity.accessKeyId,
            secretAccessKey: identity.secretAccessKey,
            ...(identity.sessionToken === undefined ? {} : { sessionToken: identity.sessionToken }),
            ...(identity.expiration === undefined ? {} : { expiration: identity.expiration })
          }
        }
      } catch (error) {
        return { _tag: "NoCredentials", message: error instanceof Error ? error.message : String(error) }
      }
    }
  }
}
