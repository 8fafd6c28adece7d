/**
 * The AWS SDK client built from plain data. An SDK client can't be copied to another thread, so the
 * engine's thread builds its own from what can cross: the region, the data fields of the user's
 * `kinesisClientConfig`, the HTTP version and socket cap, and credentials given or asked for.
 *
 * @internal
 */
import { KinesisClient, type KinesisClientConfig } from "@aws-sdk/client-kinesis"
import { NodeHttp2Handler, type NodeHttpHandlerOptions } from "@smithy/node-http-handler"
import type { CredentialsIdentity } from "../../protocol/Messages.js"
import type { SdkSettings } from "../../protocol/Settings.js"
import { http1Handler } from "./http1Handler.js"

export type { SdkSettings } from "../../protocol/Settings.js"

/** Asks the caller's thread for credentials (its provider function); the answer carries `expiration` when the provider gives one. */
export type AskCredentials = () => Promise<CredentialsIdentity>

/** Handler settings given as data in `clientConfig.requestHandler` (an options object, not a handler). */
const handlerOptions = (clientConfig: Readonly<Record<string, unknown>>): Record<string, unknown> | undefined => {
  const handler = clientConfig.requestHandler
  return typeof handler === "object" &&
    handler !== null &&
    typeof (handler as { handle?: unknown }).handle !== "function"
    ? (handler as Record<string, unknown>)
    : undefined
}

/**
 * The request handler for HTTP settings (see `makeSdkClient`), with `options` as its settings; or
 * undefined to leave the SDK's own.
 */
export const httpHandler = (
  http: SdkSettings["http"],
  options?: Record<string, unknown>
): KinesisClientConfig["requestHandler"] => {
  switch (http?.version) {
    case "1.1":
      return http1Handler({
        maxSockets: http.maxSockets,
        handlerOptions: options as Omit<NodeHttpHandlerOptions, "httpAgent" | "httpsAgent"> | undefined
      })
    case "2":
      // What the SDK builds for Kinesis when given nothing: a session per request.
      return new NodeHttp2Handler({ disableConcurrentStreams: true, ...options })
    case undefined:
      return undefined
  }
}

/**
 * Builds a Kinesis SDK client from plain data: `clientConfig` as given, then `region`, the request
 * handler and the credentials of the settings over it.
 *
 * HTTP (`settings.http`):
 * - `version: "1.1"`: a `NodeHttpHandler` with keep-alive `http.Agent` and `https.Agent`, at most
 *   `maxSockets` sockets per host each when given (Node's default otherwise: no cap). Needed for
 *   kinesalite and other local servers, which speak only HTTP/1.1.
 * - `version: "2"`: a `NodeHttp2Handler` as the SDK makes it for Kinesis (`disableConcurrentStreams`:
 *   one HTTP/2 session per request). `maxSockets` is ignored: the handler has no cap on connections,
 *   and its `maxConcurrentStreams` is a cap on streams per session, past which it opens another
 *   session, so a smaller number would mean more connections, not fewer.
 * - no version: the SDK's own default handler, HTTP/2 for Kinesis; `maxSockets` is ignored as with
 *   `"2"`. The protocol is never switched to HTTP/1.1 because `maxSockets` was given.
 * A plain options object in `clientConfig.requestHandler` (`connectionTimeout`, `requestTimeout`, ...)
 * is kept: it becomes the settings of the handler built here (the agents stay this module's).
 *
 * Credentials (`settings.credentials`): an object is used as is; `undefined` leaves the SDK's default
 * provider chain; `"ask"` gives the SDK a provider function that calls `askCredentials`, and throws
 * a `TypeError` at once when `askCredentials` is missing.
 *
 * How often `askCredentials` is called, as read in `@aws-sdk/core` (`resolveAwsSdkSigV4Config`) and
 * `@smithy/core` (`memoizeIdentityProvider`): the SDK wraps the function and
 * - asks once, and keeps the answer for the life of the client, when it carries no `expiration`;
 * - with an `expiration`, keeps it until less than 5 minutes (`EXPIRATION_MS`, by the wall clock)
 *   remain; from then on it asks again on every use, which is more than once per request (an
 *   answer that itself expires within 5 minutes costs several asks per request: the caller's
 *   provider should hand out credentials that last longer);
 * - shares one pending ask among concurrent requests, and keeps no failure: after a rejection the
 *   next request asks again.
 * The shared pending ask is also a trap: an `askCredentials` that never settles holds every later
 * request of this client too (each is cut off only by the sender's request timeout). It must settle,
 * with a rejection when the caller's provider fails or takes too long.
 */
export const makeSdkClient = (settings: SdkSettings, askCredentials?: AskCredentials): KinesisClient => {
  const handler = httpHandler(settings.http, handlerOptions(settings.clientConfig))
  let credentials: KinesisClientConfig["credentials"]
  if (settings.credentials === "ask") {
    if (askCredentials === undefined) {
      throw new TypeError('makeSdkClient: credentials "ask" needs an askCredentials function')
    }
    credentials = () => askCredentials()
  } else {
    credentials = settings.credentials
  }
  return new KinesisClient({
    ...(settings.clientConfig as Partial<KinesisClientConfig>),
    region: settings.region,
    ...(handler === undefined ? {} : { requestHandler: handler }),
    ...(credentials === undefined ? {} : { credentials })
  })
}
