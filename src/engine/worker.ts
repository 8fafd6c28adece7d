/**
 * The engine's thread: a `worker_threads` Worker that builds the engine from the settings it was
 * started with (`workerData`) and serves it over its parent port until it is closed. Nothing here
 * runs on the caller's event loop.
 *
 * @internal
 */
import { parentPort, workerData } from "node:worker_threads"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { FromEngine, Port, ToEngine } from "../protocol/Messages.js"
import { type EngineSettings, optionsOrDie } from "../protocol/Settings.js"
import * as Database from "./cache/database.js"
import * as RecordStorage from "./cache/RecordStorage.js"
import * as Engine from "./Engine.js"
import { type AskCredentials, serve } from "./host.js"
import * as RecordSender from "./send/RecordSender.js"
import { makeSdkClient } from "./send/Sdk.js"

const port = parentPort!
const settings = workerData as EngineSettings

/** The cache and the sender the settings describe; the SDK client asks the caller for credentials when told to. */
const dependencies = (askCredentials: AskCredentials, requestTimeoutMillis: number) =>
  Layer.merge(
    Layer.scoped(
      RecordStorage.RecordStorage,
      RecordStorage.makeOn(Database, { filename: settings.filename, cacheMaxBytes: settings.options.cacheMaxBytes })
    ),
    Layer.scoped(
      RecordSender.RecordSender,
      Effect.acquireRelease(
        Effect.sync(() => makeSdkClient(settings.sdk, askCredentials)),
        (client) => Effect.sync(() => client.destroy())
      ).pipe(Effect.map((client) => RecordSender.fromSdkClient(client, requestTimeoutMillis)))
    )
  )

/**
 * An ask that always settles: the SDK shares one pending ask among its requests, so a provider that
 * never answers would hold every later request. It is bounded by the request timeout.
 */
const bounded =
  (ask: AskCredentials, millis: number): AskCredentials =>
  () =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`The credentials provider did not answer within ${millis} ms`)),
        millis
      )
      ask()
        .then(resolve, reject)
        .finally(() => clearTimeout(timer))
    })

const main = serve(port as unknown as Port<ToEngine, FromEngine>, (askCredentials) =>
  Effect.flatMap(optionsOrDie(settings.options), (options) =>
    Engine.make(
      options,
      dependencies(
        bounded(askCredentials, settings.options.requestTimeoutMillis),
        settings.options.requestTimeoutMillis
      )
    )
  )
)

Effect.runFork(main).addObserver(() => port.close())
