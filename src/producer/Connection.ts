/**
 * How the producer reaches an engine: a Worker thread started on the engine's settings, or a host
 * on the caller's thread over a `MessageChannel`. Either way the producer sees one port, and the
 * engine one answer per request. A connection keeps the process alive only while the producer says
 * an answer is awaited.
 *
 * @internal
 */

import { fileURLToPath } from "node:url"
import { MessageChannel, Worker } from "node:worker_threads"
import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import { type AmplifyKinesisException, fromWire, KinesisStorageException } from "../Errors.js"
import type { Engine } from "../engine/Engine.js"
import { type AskCredentials, serve } from "../engine/host.js"
import type { FromEngine, Port, ToEngine } from "../protocol/Messages.js"
import type { EngineSettings } from "../protocol/Settings.js"

/** A running engine, as the producer uses it. */
export interface Connection {
  /** Sends a message; the buffers listed are transferred. */
  readonly post: (message: ToEngine, transfer?: ReadonlyArray<ArrayBuffer>) => void
  /** Whether an answer is awaited: only then does the connection keep the process alive. */
  readonly setActive: (active: boolean) => void
  /** Once the engine has answered `Close`: lets it end, within a bound, or ends it. */
  readonly stop: () => Promise<void>
}

/** What the producer hears from a connection. */
export interface Handlers {
  readonly onMessage: (message: FromEngine) => void
  /** The engine stopped without being closed (a crash, an exit, a defect), with the reason. */
  readonly onExit: (reason: string) => void
}

/** Starts an engine; resolves once it is ready, rejects with the reason it could not start. */
export type Connect = (handlers: Handlers) => Promise<Connection>

/** Posts a message, with a transfer list only when there is one: an empty list is not free. */
const postTo = (
  target: { postMessage(message: unknown, transfer?: ReadonlyArray<ArrayBuffer>): void },
  message: unknown,
  transfer: ReadonlyArray<ArrayBuffer> | undefined
) => (transfer === undefined ? target.postMessage(message) : target.postMessage(message, transfer))

/** How long a closed engine's thread may take to exit before it is terminated. */
const exitBoundMillis = 5_000

/**
 * Starts the worker's script, next to the engine's modules: the built `.js`; or, when the library
 * runs from its TypeScript sources (its own tests and benchmarks), the `.ts` through tsx's require
 * hook, since a worker does not inherit the loader of the thread that starts it.
 */
const startWorker = (settings: EngineSettings): Worker => {
  // A small young generation: the worker's garbage is short-lived buffers. A capped old generation:
  // V8 then collects fully often enough that the row buffers of batch reads don't pile up.
  const options = { workerData: settings, resourceLimits: { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 128 } }
  if (!import.meta.url.endsWith(".ts")) return new Worker(new URL("../engine/worker.js", import.meta.url), options)
  const script = JSON.stringify(fileURLToPath(new URL("../engine/worker.ts", import.meta.url)))
  return new Worker(`require("tsx/cjs/api").register(); require(${script})`, { ...options, eval: true })
}

/** Waits for the engine's first word: ready, or why it could not open. */
const untilReady = (
  port: {
    on(event: "message", listener: (message: FromEngine) => void): unknown
    off(event: "message", listener: (message: FromEngine) => void): unknown
  },
  handlers: Handlers,
  connection: Connection,
  onFailed: () => void
): { readonly ready: Promise<Connection>; readonly died: (reason: string) => void } => {
  let settle: { resolve: (c: Connection) => void; reject: (e: AmplifyKinesisException) => void } | undefined
  const ready = new Promise<Connection>((resolve, reject) => {
    settle = { resolve, reject }
  })
  let opened = false
  const first = (message: FromEngine) => {
    // What the engine logged or traced while it opened comes before its first word.
    if (opened || message[0] === "Telemetry") return handlers.onMessage(message)
    if (message[0] === "Ready") {
      opened = true
      return settle?.resolve(connection)
    }
    if (message[0] === "OpenFailed") {
      onFailed()
      return settle?.reject(fromWire(message[1]))
    }
  }
  port.on("message", first)
  // Waiting for the engine to open is waiting for an answer: it keeps the process alive until then.
  void ready.then(
    () => connection.setActive(false),
    () => {}
  )
  return {
    ready,
    died: (reason) => {
      port.off("message", first)
      if (opened) return handlers.onExit(reason)
      settle?.reject(new KinesisStorageException({ message: `The engine could not start: ${reason}` }))
    }
  }
}

/** Connects to an engine on a Worker thread of its own, built from `settings`. */
export const workerConnect =
  (settings: EngineSettings): Connect =>
  (handlers) => {
    const worker = startWorker(settings)
    let closing = false
    const connection: Connection = {
      post: (message, transfer) => postTo(worker, message, transfer),
      setActive: (active) => (active ? worker.ref() : worker.unref()),
      stop: () =>
        new Promise<void>((stopped) => {
          closing = true
          // Waiting for the thread to end is waiting for an answer: the worker keeps the process
          // alive until it exits, or until the timer ends it.
          const timer = setTimeout(() => void worker.terminate(), exitBoundMillis)
          timer.unref()
          worker.once("exit", () => {
            clearTimeout(timer)
            stopped()
          })
          worker.ref()
        })
    }
    const { ready, died } = untilReady(worker, handlers, connection, () => {
      closing = true
      void worker.terminate()
    })
    // An uncaught error comes first, the exit after: the death is reported once, at the exit (the
    // thread no longer holds the cache file then), with the error as its reason.
    let failure: string | undefined
    worker.on("error", (error) => {
      failure ??= error.message
    })
    worker.on("exit", (code) => {
      if (!closing) died(failure ?? `its thread exited with code ${code}`)
    })
    return ready
  }

/** Runs an effect on the caller's runtime (its clock, logger and tracer), forked. */
export type Fork = (effect: Effect.Effect<void>) => Fiber.RuntimeFiber<void, never>

/**
 * Connects to an engine served on the caller's thread, over a `MessageChannel`: for test layers and
 * configurations that can't cross to another thread. The host runs on the caller's runtime, so
 * its clock (a `TestClock` in tests) is the engine's.
 */
export const inThreadConnect =
  <E>(fork: Fork, makeEngine: (askCredentials: AskCredentials) => Effect.Effect<Engine, E, Scope.Scope>): Connect =>
  (handlers) => {
    const { port1, port2 } = new MessageChannel()
    let closing = false
    const connection: Connection = {
      post: (message, transfer) =>
        transfer === undefined
          ? port1.postMessage(message)
          : port1.postMessage(message, transfer as Array<ArrayBuffer>),
      setActive: (active) => (active ? port1.ref() : port1.unref()),
      stop: async () => {
        closing = true
        await ended
        port1.close()
      }
    }
    const { ready, died } = untilReady(port1, handlers, connection, () => {
      closing = true
      port1.close()
    })
    // The engine's side never keeps the process alive: its port is unreferenced whenever it listens.
    const enginePort: Port<ToEngine, FromEngine> = {
      postMessage: (message, transfer) =>
        transfer === undefined
          ? port2.postMessage(message)
          : port2.postMessage(message, transfer as Array<ArrayBuffer>),
      on: (event, listener) => {
        port2.on(event, listener)
        port2.unref()
      },
      off: (event, listener) => port2.off(event, listener)
    }
    const host = fork(serve(enginePort, makeEngine))
    // The host ends on its own once it has answered Close (that answer may still be on its way):
    // only an end by failure or interruption is a death.
    const ended = new Promise<void>((resolve) =>
      host.addObserver((exit) => {
        port2.close()
        if (!closing && exit._tag === "Failure") died(`the engine ended: ${String(exit.cause)}`)
        resolve()
      })
    )
    return ready
  }
