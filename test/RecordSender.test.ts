/**
 * The SDK sender and the SDK client built from plain data, against real servers: kinesalite, and
 * plain HTTP servers on 127.0.0.1 that answer late or never. The request timeout runs on Effect's
 * Clock, so TestClock drives it.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { KinesisClient as SdkClient, type KinesisClientConfig as SdkClientConfig } from "@aws-sdk/client-kinesis"
import { describe, expect, it, layer } from "@effect/vitest"
import { Chunk, Effect, Fiber, Option, TestClock } from "effect"
import { http1Handler } from "../src/engine/send/http1Handler.js"
import * as RecordSender from "../src/engine/send/RecordSender.js"
import * as Sdk from "../src/engine/send/Sdk.js"
import { credentials, LocalKinesis } from "../src/testing.js"

const region = "us-east-1"
const entry = (text: string): RecordSender.PutEntry => ({
  partitionKey: `key-${text}`,
  data: new TextEncoder().encode(text)
})

/** A promise and the function that settles it. */
const latch = () => {
  let open: () => void = () => {}
  const promise = new Promise<void>((resolve) => {
    open = resolve
  })
  return { open, promise }
}

/** Whether the promise settles within `millis` of real time (TestClock or not). */
const settlesWithin = (promise: Promise<unknown>, millis: number) =>
  Effect.promise(() => {
    let timer: NodeJS.Timeout | undefined
    return Promise.race([
      promise.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), millis)
      })
    ]).finally(() => clearTimeout(timer))
  })

/** Waits (in real time) until some fiber sleeps on the TestClock: the timeout has started. */
const untilSleeping = Effect.gen(function* () {
  while (Chunk.isEmpty(yield* TestClock.sleeps())) {
    yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
  }
})

/** A plain HTTP server on 127.0.0.1 for the life of the scope. */
const startServer = (answer: http.RequestListener) =>
  Effect.acquireRelease(
    Effect.async<http.Server>((resume) => {
      const server = http.createServer(answer)
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((server) => ({ server, endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })))

/** A server that reads each request and never answers; it tells when one arrives and when its socket closes. */
const silentServer = Effect.gen(function* () {
  const received = latch()
  const closed = latch()
  let requests = 0
  const { endpoint } = yield* startServer((request) => {
    requests++
    request.resume()
    request.socket.once("close", closed.open)
    received.open()
  })
  return { endpoint, received: received.promise, closed: closed.promise, requests: () => requests }
})

/** An SDK client for the life of the scope. */
const scopedClient = (make: () => SdkClient) =>
  Effect.acquireRelease(Effect.sync(make), (client) => Effect.sync(() => client.destroy()))

/** An HTTP/1.1 SDK client of the scope's lifetime for a server at `endpoint`, with no SDK retries. */
const silentClient = (endpoint: string) =>
  scopedClient(() => new SdkClient({ endpoint, region, credentials, requestHandler: http1Handler(), maxAttempts: 1 }))

describe("RecordSender.fromSdkClient", () => {
  it.scoped("times out on the Clock as no response and aborts the request the server never answers", () =>
    Effect.gen(function* () {
      const server = yield* silentServer
      const sdk = yield* silentClient(server.endpoint)
      const sender = RecordSender.fromSdkClient(sdk, "5 seconds")
      const call = yield* Effect.fork(Effect.flip(sender.putRecords("silent", [entry("a")])))

      yield* Effect.promise(() => server.received)
      yield* untilSleeping
      yield* TestClock.adjust("4999 millis")
      expect(yield* Fiber.poll(call)).toEqual(Option.none())
      expect(yield* settlesWithin(server.closed, 50)).toBe(false)

      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(call)
      expect(error).toBeInstanceOf(RecordSender.NoResponse)
      expect(error.message).toMatch(/timed out after 5s/)
      expect(yield* settlesWithin(server.closed, 5_000)).toBe(true)
    })
  )

  it.scoped("aborts the request when the calling fiber is interrupted", () =>
    Effect.gen(function* () {
      const server = yield* silentServer
      const sdk = yield* silentClient(server.endpoint)
      const call = yield* Effect.fork(RecordSender.fromSdkClient(sdk, "1 hour").putRecords("silent", [entry("a")]))
      yield* Effect.promise(() => server.received)
      yield* Fiber.interrupt(call)
      expect(yield* settlesWithin(server.closed, 5_000)).toBe(true)
    })
  )

  it.scoped("a credentials provider that never settles times out as no response, and nothing is sent", () =>
    Effect.gen(function* () {
      const server = yield* silentServer
      const asked = latch()
      const sdk = yield* scopedClient(
        () =>
          new SdkClient({
            endpoint: server.endpoint,
            region,
            credentials: () => {
              asked.open()
              return new Promise(() => {})
            },
            requestHandler: http1Handler(),
            maxAttempts: 1
          })
      )
      const call = yield* Effect.fork(
        Effect.flip(RecordSender.fromSdkClient(sdk, "5 seconds").putRecords("stuck", [entry("a")]))
      )

      yield* Effect.promise(() => asked.promise)
      yield* untilSleeping
      yield* TestClock.adjust("5 seconds")
      const error = yield* Fiber.join(call)
      expect(error).toBeInstanceOf(RecordSender.NoResponse)
      expect(error.message).toMatch(/timed out/)
      expect(server.requests()).toBe(0)
    })
  )
})

describe("Sdk.makeSdkClient", () => {
  layer(LocalKinesis.layer(), { excludeTestServices: true })("against kinesalite", (it) => {
    const sendTo = (sdk: SdkClient, stream: string, texts: ReadonlyArray<string>) =>
      RecordSender.fromSdkClient(sdk, "10 seconds").putRecords(stream, texts.map(entry))

    it.scoped("HTTP/1.1 with static credentials puts records", () =>
      Effect.gen(function* () {
        const local = yield* LocalKinesis.LocalKinesis
        yield* local.createStream("sdk-static")
        const sdk = yield* scopedClient(() =>
          Sdk.makeSdkClient({
            region,
            clientConfig: { endpoint: local.endpoint, maxAttempts: 1 },
            http: { version: "1.1", maxSockets: 2 },
            credentials
          })
        )
        const results = yield* sendTo(sdk, "sdk-static", ["one", "two"])
        expect(results).toEqual([{ _tag: "Accepted" }, { _tag: "Accepted" }])
        const stored = yield* local.readStream("sdk-static")
        expect(stored.map((record) => [record.partitionKey, new TextDecoder().decode(record.data)])).toEqual([
          ["key-one", "one"],
          ["key-two", "two"]
        ])
      })
    )

    const hour = 60 * 60 * 1000
    for (const [name, expiresIn, asks] of [
      ["an answer that expires in an hour is asked for once", hour, 1],
      ["an answer without expiration is asked for once", undefined, 1],
      // Every use of the identity asks again (more than once per request): at least once per request.
      ["an answer within the SDK's 5-minute refresh window is asked for on every request", 60 * 1000, "each"]
    ] as const) {
      it.scoped(`"ask": ${name}`, () =>
        Effect.gen(function* () {
          const local = yield* LocalKinesis.LocalKinesis
          const stream = `sdk-ask-${asks}-${expiresIn ?? "never"}`
          yield* local.createStream(stream)
          let calls = 0
          const askCredentials: Sdk.AskCredentials = async () => {
            calls++
            return {
              ...credentials,
              ...(expiresIn === undefined ? {} : { expiration: new Date(Date.now() + expiresIn) })
            }
          }
          const sdk = yield* scopedClient(() =>
            Sdk.makeSdkClient(
              {
                region,
                clientConfig: { endpoint: local.endpoint, maxAttempts: 1 },
                http: { version: "1.1" },
                credentials: "ask"
              },
              askCredentials
            )
          )
          // Three one after another, then two at once: concurrent requests share one ask.
          for (const text of ["a", "b", "c"]) yield* sendTo(sdk, stream, [text])
          yield* Effect.all([sendTo(sdk, stream, ["d"]), sendTo(sdk, stream, ["e"])], { concurrency: 2 })
          if (asks === "each") expect(calls).toBeGreaterThanOrEqual(5)
          else expect(calls).toBe(asks)
          expect((yield* local.readStream(stream)).length).toBe(5)
        })
      )
    }

    it.scoped('HTTP "2", and the SDK default, get no response from kinesalite (it speaks only HTTP/1.1)', () =>
      Effect.gen(function* () {
        const local = yield* LocalKinesis.LocalKinesis
        yield* local.createStream("sdk-http2")
        for (const http of [{ version: "2" as const }, undefined, { maxSockets: 4 }]) {
          const sdk = yield* scopedClient(() =>
            Sdk.makeSdkClient({ region, clientConfig: { endpoint: local.endpoint, maxAttempts: 1 }, http, credentials })
          )
          const error = yield* Effect.flip(sendTo(sdk, "sdk-http2", ["h2"]))
          expect(error).toBeInstanceOf(RecordSender.NoResponse)
          expect(error.message).toMatch(/HTTP\/2/)
        }
        expect(yield* local.readStream("sdk-http2")).toEqual([])
      })
    )
  })

  it.scopedLive("HTTP/1.1 maxSockets caps the connections to a host", () =>
    Effect.gen(function* () {
      let connections = 0
      const { server, endpoint } = yield* startServer((request, response) => {
        request.resume()
        request.on("end", () =>
          setTimeout(() => {
            response.writeHead(200, { "content-type": "application/x-amz-json-1.1" })
            response.end(
              JSON.stringify({
                FailedRecordCount: 0,
                Records: [{ SequenceNumber: "1", ShardId: "shardId-000000000000" }]
              })
            )
          }, 50)
        )
      })
      server.on("connection", () => connections++)
      const sendThree = (maxSockets: number | undefined) =>
        Effect.gen(function* () {
          connections = 0
          const sdk = yield* scopedClient(() =>
            Sdk.makeSdkClient({
              region,
              clientConfig: { endpoint, maxAttempts: 1 },
              http: maxSockets === undefined ? { version: "1.1" } : { version: "1.1", maxSockets },
              credentials
            })
          )
          const sender = RecordSender.fromSdkClient(sdk, "10 seconds")
          const results = yield* Effect.all(
            ["a", "b", "c"].map((text) => sender.putRecords("capped", [entry(text)])),
            { concurrency: "unbounded" }
          )
          expect(results.flat()).toEqual([{ _tag: "Accepted" }, { _tag: "Accepted" }, { _tag: "Accepted" }])
          return connections
        }).pipe(Effect.scoped)

      expect(yield* sendThree(1)).toBe(1)
      expect(yield* sendThree(undefined)).toBe(3)
    })
  )

  it.scopedLive("keeps handler settings given as data in clientConfig.requestHandler", () =>
    Effect.gen(function* () {
      const server = yield* silentServer
      const sdk = yield* scopedClient(() =>
        Sdk.makeSdkClient({
          region,
          clientConfig: {
            endpoint: server.endpoint,
            maxAttempts: 1,
            requestHandler: { requestTimeout: 100, throwOnRequestTimeout: true }
          },
          http: { version: "1.1" },
          credentials
        })
      )
      const error = yield* Effect.flip(RecordSender.fromSdkClient(sdk, "10 seconds").putRecords("slow", [entry("a")]))
      expect(error).toBeInstanceOf(RecordSender.NoResponse)
      expect(error.message).toMatch(/requestTimeout/)
    })
  )

  it('"ask" without askCredentials is a bug, thrown at once', () => {
    const settings: Sdk.SdkSettings = { region, clientConfig: {}, credentials: "ask" }
    expect(() => Sdk.makeSdkClient(settings)).toThrow(TypeError)
  })

  it("passes the data of clientConfig through, with region and credentials of the settings over it", async () => {
    const sdk = Sdk.makeSdkClient({
      region,
      clientConfig: {
        region: "eu-west-1",
        maxAttempts: 7,
        endpoint: "http://127.0.0.1:1"
      } satisfies Partial<SdkClientConfig>,
      credentials
    })
    try {
      expect(await sdk.config.region()).toBe(region)
      expect(await sdk.config.maxAttempts()).toBe(7)
      expect(await sdk.config.credentials()).toMatchObject(credentials)
    } finally {
      sdk.destroy()
    }
  })
})
