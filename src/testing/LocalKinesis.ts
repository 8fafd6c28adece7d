/**
 * A real Kinesis API server on this machine for development and tests: kinesalite, in process, on
 * 127.0.0.1 and a free port. kinesalite is an optional peer dependency (`npm install -D
 * kinesalite`), loaded only when a server is started.
 *
 * The one trap it removes: the AWS SDK speaks HTTP/2 by default and kinesalite only HTTP/1.1, so a
 * client given only the endpoint fails every flush with "No response ... Protocol error". The
 * configurations handed out here carry an HTTP/1.1 request handler and dummy credentials.
 *
 * @example
 * import { Effect } from "effect"
 * import { KinesisClient } from "effect-kinesis"
 * import { LocalKinesis } from "effect-kinesis/testing"
 *
 * const program = Effect.gen(function* () {
 *   const local = yield* LocalKinesis.make({ streams: ["events"] })
 *   const client = yield* KinesisClient.make({ ...local.config, storagePath: "/tmp/cache" })
 *   yield* client.record({ data: new Uint8Array([1]), partitionKey: "p", streamName: "events" })
 *   yield* client.flush()
 *   const records = yield* local.readStream("events")
 * }).pipe(Effect.scoped)
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import {
  CreateStreamCommand,
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient as SdkClient,
  type KinesisClientConfig as SdkClientConfig
} from "@aws-sdk/client-kinesis"
import type { NodeHttpHandler } from "@smithy/node-http-handler"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { KinesisStorageException, KinesisValidationException } from "../Errors.js"
import { http1Handler as internalHttp1Handler } from "../engine/send/http1Handler.js"
import * as Client from "../KinesisClient.js"
import type { KinesisClientConfig, KinesisClientOptions } from "../KinesisClientConfig.js"

/** A record as read back from a stream. */
export interface StreamRecord {
  readonly partitionKey: string
  readonly data: Uint8Array
  readonly sequenceNumber: string
}

/** A running kinesalite server and the means to use it, with a Promise API. */
export interface LocalKinesisServer {
  readonly endpoint: string
  /** AWS SDK settings that reach this server: endpoint, HTTP/1.1 handler, dummy credentials, no SDK retries. */
  readonly clientConfig: Partial<SdkClientConfig>
  /** A ready effect-kinesis client configuration for this server (add `storagePath` and `options`). */
  readonly config: KinesisClientConfig
  /** An SDK client of its own, for setting up streams and reading them back. */
  readonly sdk: SdkClient
  /** Creates a stream and waits until it is active. */
  readonly createStream: (name: string, shardCount?: number) => Promise<void>
  /** Reads every record of a stream, shard by shard, from the start. */
  readonly readStream: (name: string) => Promise<ReadonlyArray<StreamRecord>>
  /** Takes the server off the network; what it holds is kept. */
  readonly stop: () => Promise<void>
  /** Brings a stopped server back on the same port. */
  readonly start: () => Promise<void>
  /** Stops the server for good and deletes its data. */
  readonly dispose: () => Promise<void>
}

/** A stream to create: a name (one shard), or a name and a shard count. */
export type StreamSpec = string | { readonly name: string; readonly shards: number }

/** The settings of a local server. */
export interface LocalKinesisOptions {
  /** Streams to create before the server is handed out. */
  readonly streams?: ReadonlyArray<StreamSpec>
  /** The port to listen on, on 127.0.0.1. Default: a free one. */
  readonly port?: number
}

/** Starting the server, or a call to it, failed (kinesalite missing, a port that can't be bound, ...). */
export class LocalKinesisError extends Data.TaggedError("LocalKinesisError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/** The region the configurations name; kinesalite accepts any. */
export const region = "us-east-1"

/** Dummy credentials: kinesalite checks that requests are signed, not by whom. */
export const credentials = { accessKeyId: "AKIDLOCAL", secretAccessKey: "local-secret" }

/** An HTTP/1.1 request handler for the AWS SDK: kinesalite does not speak the SDK's default HTTP/2. */
export const http1Handler: () => NodeHttpHandler = internalHttp1Handler

interface KinesaliteOptions {
  readonly path?: string
  readonly createStreamMs?: number
  readonly deleteStreamMs?: number
  readonly updateStreamMs?: number
  readonly shardLimit?: number
}

// A specifier typed as a plain string keeps bundlers and the type checker from requiring kinesalite
// where it is not installed: only starting a server needs it.
const kinesaliteModule: string = "kinesalite"

const loadKinesalite = async (): Promise<(options: KinesaliteOptions) => http.Server> => {
  try {
    const loaded = (await import(kinesaliteModule)) as { readonly default: (options: KinesaliteOptions) => http.Server }
    return loaded.default
  } catch (cause) {
    throw new LocalKinesisError({
      message: "A local Kinesis needs the kinesalite package: npm install --save-dev kinesalite@3",
      cause
    })
  }
}

const listen = (server: http.Server, port: number) =>
  new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject)
      resolve()
    })
  })

/**
 * Stops listening. kinesalite's own `server.close` also closes its LevelDB store, and a request it is
 * still serving then crashes the process, so stopping uses plain `http.Server` close and keeps the store.
 */
const stopListening = (server: http.Server) =>
  new Promise<void>((resolve, reject) => {
    server.closeAllConnections()
    http.Server.prototype.close.call(server, (error) => (error ? reject(error) : resolve()))
  })

/** Stops listening and closes the store, for good. */
const shutDown = (server: http.Server) =>
  new Promise<void>((resolve, reject) => {
    server.closeAllConnections()
    server.close((error) => (error ? reject(error) : resolve()))
  })

/**
 * Starts kinesalite on a free port of 127.0.0.1, with its data in a temporary directory, and creates
 * the streams asked for. Rejects with `LocalKinesisError` when kinesalite is not installed. Call
 * `dispose()` when done.
 */
export const startLocalKinesis = async (options: LocalKinesisOptions = {}): Promise<LocalKinesisServer> => {
  const kinesalite = await loadKinesalite()
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kinesalite-"))
  const server = kinesalite({
    path: dataDir,
    createStreamMs: 0,
    deleteStreamMs: 0,
    updateStreamMs: 0,
    shardLimit: 100
  })
  await listen(server, options.port ?? 0)
  const port = (server.address() as AddressInfo).port
  const endpoint = `http://127.0.0.1:${port}`
  let running = true
  const clientConfig: Partial<SdkClientConfig> = {
    endpoint,
    region,
    credentials,
    requestHandler: http1Handler(),
    maxAttempts: 1
  }
  const sdk = new SdkClient({ ...clientConfig, requestHandler: http1Handler(), maxAttempts: 3 })

  const createStream = async (name: string, shardCount = 1) => {
    await sdk.send(new CreateStreamCommand({ StreamName: name, ShardCount: shardCount }))
    for (;;) {
      const described = await sdk.send(new DescribeStreamCommand({ StreamName: name }))
      if (described.StreamDescription?.StreamStatus === "ACTIVE") return
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  const readStream = async (name: string) => {
    const described = await sdk.send(new DescribeStreamCommand({ StreamName: name }))
    const records: Array<StreamRecord> = []
    for (const shard of described.StreamDescription?.Shards ?? []) {
      let iterator = (
        await sdk.send(
          new GetShardIteratorCommand({ StreamName: name, ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON" })
        )
      ).ShardIterator
      while (iterator) {
        const page = await sdk.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }))
        for (const record of page.Records ?? []) {
          records.push({
            partitionKey: record.PartitionKey ?? "",
            data: record.Data ?? new Uint8Array(),
            sequenceNumber: record.SequenceNumber ?? ""
          })
        }
        if ((page.Records ?? []).length === 0) break
        iterator = page.NextShardIterator
      }
    }
    return records
  }

  const local: LocalKinesisServer = {
    endpoint,
    clientConfig,
    config: {
      region,
      credentialsProvider: credentials,
      kinesisClientConfig: { endpoint, maxAttempts: 1 },
      http: { version: "1.1" }
    },
    sdk,
    createStream,
    readStream,
    stop: async () => {
      if (!running) return
      running = false
      await stopListening(server)
    },
    start: async () => {
      if (running) return
      await listen(server, port)
      running = true
    },
    dispose: async () => {
      sdk.destroy()
      if (!running) await listen(server, port)
      await shutDown(server)
      running = false
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
  try {
    for (const stream of options.streams ?? []) {
      await (typeof stream === "string" ? createStream(stream) : createStream(stream.name, stream.shards))
    }
  } catch (error) {
    await local.dispose()
    throw error
  }
  return local
}

/** A running local Kinesis as an Effect service: the same server, with an Effect API. */
export interface LocalKinesis {
  readonly endpoint: string
  /** A ready effect-kinesis client configuration for this server (add `storagePath` and `options`). */
  readonly config: KinesisClientConfig
  /** AWS SDK settings that reach this server: endpoint, HTTP/1.1 handler, dummy credentials, no SDK retries. */
  readonly clientConfig: Partial<SdkClientConfig>
  /** An SDK client of its own, for calls this module does not cover. */
  readonly sdk: SdkClient
  /** Creates a stream and waits until it is active. */
  readonly createStream: (name: string, shardCount?: number) => Effect.Effect<void, LocalKinesisError>
  /** Reads every record of a stream, shard by shard, from the start. */
  readonly readStream: (name: string) => Effect.Effect<ReadonlyArray<StreamRecord>, LocalKinesisError>
  /** Takes the server off the network (what it holds is kept): the client then gets no response. */
  readonly stop: Effect.Effect<void, LocalKinesisError>
  /** Brings a stopped server back on the same port. */
  readonly start: Effect.Effect<void, LocalKinesisError>
}

/** The `LocalKinesis` service tag. */
export const LocalKinesis = Context.GenericTag<LocalKinesis>("effect-kinesis/testing/LocalKinesis")

const attempt = <A>(what: string, run: () => Promise<A>): Effect.Effect<A, LocalKinesisError> =>
  Effect.tryPromise({
    try: run,
    catch: (cause) =>
      cause instanceof LocalKinesisError
        ? cause
        : new LocalKinesisError({
            message: `${what}: ${cause instanceof Error ? cause.message : String(cause)}`,
            cause
          })
  })

/**
 * Starts a local Kinesis for the life of the scope and creates the streams asked for. Fails with
 * `LocalKinesisError` when kinesalite is not installed or a stream can't be created.
 */
export const make = (options: LocalKinesisOptions = {}): Effect.Effect<LocalKinesis, LocalKinesisError, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      attempt("Starting kinesalite", () => startLocalKinesis(options)),
      (server) => Effect.promise(() => server.dispose())
    ),
    (server) =>
      LocalKinesis.of({
        endpoint: server.endpoint,
        config: server.config,
        clientConfig: server.clientConfig,
        sdk: server.sdk,
        createStream: (name, shardCount) =>
          attempt(`Creating stream ${name}`, () => server.createStream(name, shardCount)),
        readStream: (name) => attempt(`Reading stream ${name}`, () => server.readStream(name)),
        stop: attempt("Stopping kinesalite", () => server.stop()),
        start: attempt("Starting kinesalite", () => server.start())
      })
  )

/** A local Kinesis as a layer: started when the layer is built, stopped and deleted when its scope closes. */
export const layer = (options: LocalKinesisOptions = {}): Layer.Layer<LocalKinesis, LocalKinesisError> =>
  Layer.scoped(LocalKinesis, make(options))

/** The settings of `layerClient`. */
export interface ClientOptions extends LocalKinesisOptions {
  /** The client's options (defaults as in production). */
  readonly options?: KinesisClientOptions
}

/**
 * A local Kinesis with its streams, and a real `KinesisClient` for it whose cache lives in a
 * temporary directory, deleted when the layer's scope closes (after the client is closed).
 */
export const layerClient = (
  options: ClientOptions = {}
): Layer.Layer<
  Client.KinesisClient | LocalKinesis,
  LocalKinesisError | KinesisValidationException | KinesisStorageException
> =>
  Layer.scoped(
    Client.KinesisClient,
    Effect.gen(function* () {
      const local = yield* LocalKinesis
      const storagePath = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "effect-kinesis-test-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      return yield* Client.make({
        ...local.config,
        storagePath,
        ...(options.options ? { options: options.options } : {})
      })
    })
  ).pipe(Layer.provideMerge(layer(options)))
