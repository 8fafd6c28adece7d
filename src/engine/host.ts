/**
 * Serves an engine over a message port: the same code in a Worker (`worker.ts`) and on the caller's
 * thread over a `MessageChannel`. Messages are handled in the order they arrive, each started at
 * once, so that an insert, a clear and a flush reach the cache's actor in the order they were
 * sent. Every request gets exactly one answer: a defect becomes a `KinesisStorageException` that
 * says what was found. What the engine logs, measures and traces crosses before each answer.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import { toWire, type WireError } from "../Errors.js"
import { unpack } from "../protocol/Groups.js"
import type { Call, CredentialsIdentity, FromEngine, Port, ToEngine } from "../protocol/Messages.js"
import type { Engine } from "./Engine.js"
import type { AskCredentials } from "./send/Sdk.js"
import { callerSpan, makeGatherer } from "./telemetry.js"

export type { AskCredentials } from "./send/Sdk.js"

/** The error a failed or defective operation answers with. */
const failureOf = (cause: Cause.Cause<unknown>): unknown => {
  const failure = Cause.failureOption(cause)
  return failure._tag === "Some" ? failure.value : Cause.squash(cause)
}

/** The effect of a call other than close. */
const operation = (engine: Engine, call: Exclude<Call, { _tag: "Close" }>): Effect.Effect<unknown, unknown> => {
  switch (call._tag) {
    case "Flush":
      return engine.flush
    case "Clear":
      return engine.clear
    case "Status":
      return engine.status
    case "Enable":
      return engine.enable
    case "Disable":
      return engine.disable
  }
}

/**
 * Builds the engine and serves the port until a `Close` call has been answered. If the engine can't
 * be built, the port hears `OpenFailed` with the reason and nothing else.
 */
export const serve = <E>(
  port: Port<ToEngine, FromEngine>,
  makeEngine: (askCredentials: AskCredentials) => Effect.Effect<Engine, E, Scope.Scope>
): Effect.Effect<void> =>
  Effect.gen(function* () {
    let telemetryDue = false
    const sendTelemetry = () => {
      telemetryDue = false
      const telemetry = gatherer.take()
      if (telemetry !== undefined) port.postMessage(["Telemetry", telemetry])
    }
    // What is gathered between answers crosses at the next turn of the event loop.
    const gatherer = makeGatherer(() => {
      if (telemetryDue) return
      telemetryDue = true
      setImmediate(sendTelemetry)
    })
    /** Sends a message after what was gathered before it, so that a flush's spans and logs come before its answer. */
    const post = (message: FromEngine, transfer?: ReadonlyArray<ArrayBuffer>) => {
      sendTelemetry()
      if (transfer === undefined) port.postMessage(message)
      else port.postMessage(message, transfer)
    }

    const asks = new Map<number, { resolve: (identity: CredentialsIdentity) => void; reject: (error: Error) => void }>()
    let nextAsk = 0
    const askCredentials: AskCredentials = () =>
      new Promise((resolve, reject) => {
        const id = nextAsk++
        asks.set(id, { resolve, reject })
        post(["AskCredentials", id])
      })

    const scope = yield* Scope.make()
    const opened = yield* gatherer.gather(Effect.exit(Scope.extend(makeEngine(askCredentials), scope)))
    if (Exit.isFailure(opened)) {
      post(["OpenFailed", toWire(failureOf(opened.cause))])
      return yield* Scope.close(scope, Exit.void)
    }
    const engine = opened.value
    const run = Runtime.runFork(yield* gatherer.gather(Effect.runtime<never>()))

    const answer = (id: number, effect: Effect.Effect<unknown, unknown>) =>
      run(
        Effect.matchCause(effect, {
          onFailure: (cause) => post(["Failed", id, toWire(failureOf(cause))]),
          onSuccess: (value) => post(["Done", id, value])
        })
      )

    const insert = (firstSeq: number, chunks: ReadonlyArray<ArrayBuffer>, lengths: ReadonlyArray<number>) =>
      run(
        Effect.matchCause(
          Effect.suspend(() => engine.insert(unpack(chunks, lengths))),
          {
            onFailure: (cause) => {
              const error = toWire(failureOf(cause))
              post(["Committed", firstSeq, lengths.length === 0 ? [] : [[-1, error]]])
            },
            onSuccess: (errors) => {
              const failures: Array<readonly [number, WireError]> = []
              for (const [index, error] of errors.entries())
                if (error !== undefined) failures.push([index, toWire(error)])
              post(["Committed", firstSeq, failures])
            }
          }
        )
      )

    // Whatever ends the host (its Close, a defect, an interruption), the engine's resources go with it.
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    yield* Effect.async<void>((resume) => {
      let closing = false
      const onMessage = (message: ToEngine) => {
        switch (message[0]) {
          case "Insert":
            return insert(message[1], message[2], message[3])
          case "Credentials": {
            const [, askId, reply] = message
            const ask = asks.get(askId)
            asks.delete(askId)
            if (reply._tag === "Credentials") ask?.resolve(reply.identity)
            else ask?.reject(new Error(reply.message))
            return
          }
          case "Call": {
            const [, id, call, parentSpan] = message
            if (call._tag !== "Close") {
              const effect = operation(engine, call)
              return answer(
                id,
                parentSpan === undefined ? effect : Effect.withParentSpan(effect, callerSpan(parentSpan))
              )
            }
            if (closing) return answer(id, Effect.void)
            closing = true
            const flushTimeout =
              call.flushTimeoutMillis === undefined ? undefined : Duration.millis(call.flushTimeoutMillis)
            return run(
              engine.close(flushTimeout).pipe(
                Effect.ensuring(Scope.close(scope, Exit.void)),
                Effect.onExit((exit) =>
                  Effect.sync(() => {
                    port.off("message", onMessage)
                    post(Exit.isSuccess(exit) ? ["Done", id, undefined] : ["Failed", id, toWire(failureOf(exit.cause))])
                    resume(Effect.void)
                  })
                ),
                Effect.ignore
              )
            )
          }
        }
      }
      port.on("message", onMessage)
      post(["Ready"])
    })
  }).pipe(Effect.scoped)
