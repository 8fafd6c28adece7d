/**
 * The Promise facade (`effect-kinesis/promise`) end to end against kinesalite: records go through
 * the SQLite cache in a temporary directory and PutRecords to a real Kinesis API, and are read
 * back from the stream. Expected failures come back as `{ _tag: "Error" }`, never as rejections.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import {
  AmplifyKinesisClient,
  ClientClosedException,
  FlushNone,
  type KinesisClientConfig,
  KinesisUnknownException,
  KinesisValidationException,
  type RecordInput,
  type Result
} from "../src/Promise.js"
import { type LocalKinesisServer, startLocalKinesis } from "../src/testing.js"
import { expectCreateRefused } from "./support/promiseClient.js"
import { flushData } from "./support/senders.js"
import { tempDirs } from "./support/tempDir.js"

let local: LocalKinesisServer
const { make: tempDir, removeAll: removeTempDirs } = tempDirs("effect-kinesis-promise-")
const clients: Array<AmplifyKinesisClient> = []

beforeAll(async () => {
  local = await startLocalKinesis()
})

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()))
  removeTempDirs()
})

afterAll(async () => {
  await local.dispose()
})

const configFor = (storagePath: string, options: KinesisClientConfig["options"] = {}): KinesisClientConfig => ({
  region: "us-east-1",
  storagePath,
  credentialsProvider: local.clientConfig.credentials!,
  options: { flushStrategy: FlushNone(), ...options },
  kinesisClientConfig: local.clientConfig
})

const create = async (config: KinesisClientConfig) => {
  const client = await AmplifyKinesisClient.create(config)
  clients.push(client)
  return client
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const input = (streamName: string, text: string): RecordInput => ({
  data: encoder.encode(text),
  partitionKey: `pk-${text}`,
  streamName
})

let streamCounter = 0
const newStream = async () => {
  const name = `promise-${++streamCounter}-${process.pid}`
  await local.createStream(name)
  return name
}

const readTexts = async (stream: string) =>
  (await local.readStream(stream)).map((record) => `${record.partitionKey}:${decoder.decode(record.data)}`).sort()

const expectError = <A>(result: Result<A>, errorClass: abstract new (...args: never) => Error) => {
  expect(result._tag).toBe("Error")
  if (result._tag === "Error") {
    expect(result.error).toBeInstanceOf(errorClass)
    expect(result.error._tag).toBe(errorClass.name)
  }
}

describe("AmplifyKinesisClient", () => {
  it("records, flushes to Kinesis, clears, closes, and then answers every call with ClientClosedException", async () => {
    const stream = await newStream()
    const client = await create(configFor(tempDir()))
    expect(client.isEnabled).toBe(true)
    expect(client.isClosed).toBe(false)

    for (const text of ["one", "two", "three"]) {
      expect(await client.record(input(stream, text))).toEqual({ _tag: "Ok", value: {} })
    }
    expect(await client.flush()).toEqual({ _tag: "Ok", value: flushData({ recordsFlushed: 3 }) })
    expect(await readTexts(stream)).toEqual(["pk-one:one", "pk-three:three", "pk-two:two"])

    await client.record(input(stream, "four"))
    await client.record(input(stream, "five"))
    expect(await client.clearCache()).toEqual({ _tag: "Ok", value: { recordsCleared: 2 } })
    expect(await client.flush()).toEqual({ _tag: "Ok", value: flushData({ recordsFlushed: 0 }) })
    expect(await readTexts(stream)).toHaveLength(3)

    await client.close()
    expect(client.isClosed).toBe(true)
    expect(client.isEnabled).toBe(false)
    await client.close() // idempotent

    // Resolved results, not rejections (a FiberFailure would be a rejection).
    expectError(await client.record(input(stream, "late")), ClientClosedException)
    expectError(await client.flush(), ClientClosedException)
    expectError(await client.clearCache(), ClientClosedException)
    client.enable()
    expect(client.isEnabled).toBe(false)
    expect(await readTexts(stream)).toHaveLength(3)
  })

  it("cacheStatus and flush tell what is cached, delivered, failed and dropped; cacheStatus works while disabled", async () => {
    const stream = await newStream()
    const client = await create(configFor(tempDir(), { maxRetries: 0 }))
    const empty = { records: 0, bytes: 0, oldestRecordAgeMs: undefined }
    expect(await client.cacheStatus()).toEqual({ _tag: "Ok", value: empty })

    for (const text of ["a", "b"]) await client.record(input(stream, text))
    await client.record(input("promise-missing-stream", "c"))
    const status = await client.cacheStatus()
    // Each record: 1 byte of data and a partition key of 4.
    expect(status).toMatchObject({ _tag: "Ok", value: { records: 3, bytes: 15 } })
    const age = status._tag === "Ok" ? status.value.oldestRecordAgeMs : undefined
    expect(age).toBeGreaterThanOrEqual(0)
    expect(age).toBeLessThan(60_000)

    // The missing stream is refused (ResourceNotFoundException) and, with no retry left, dropped.
    expect(await client.flush()).toEqual({
      _tag: "Ok",
      value: flushData({ recordsFlushed: 2, recordsFailed: 1, recordsDropped: 1, recordsRemaining: 0 })
    })
    expect(await readTexts(stream)).toEqual(["pk-a:a", "pk-b:b"])
    expect(await client.flush()).toEqual({ _tag: "Ok", value: flushData({}) })

    await client.record(input(stream, "d"))
    client.disable()
    expect(await client.cacheStatus()).toMatchObject({ _tag: "Ok", value: { records: 1, bytes: 5 } })
    await client.close()
    expectError(await client.cacheStatus(), ClientClosedException)
  })

  it("a caller that retries flush() while one is in progress lets that flush finish", async () => {
    const stream = await newStream()
    const client = await create(configFor(tempDir()))
    await client.record(input(stream, "one"))
    const first = client.flush()
    // Every answer lets the event loop turn, so the response of the flush in flight gets read.
    let calls = 0
    let result: Result<{ readonly flushInProgress: boolean }>
    do {
      result = await client.flush()
      calls++
    } while (result._tag === "Ok" && result.value.flushInProgress && calls < 100_000)
    expect(calls).toBeLessThan(100_000)
    expect(await first).toEqual({ _tag: "Ok", value: flushData({ recordsFlushed: 1 }) })
    expect(await readTexts(stream)).toEqual(["pk-one:one"])
  })

  it("record() keeps what it was given: changing the buffer right after the call changes nothing", async () => {
    const stream = await newStream()
    const client = await create(configFor(tempDir()))
    const data = encoder.encode("original")
    const recorded = client.record({ data, partitionKey: "pk-original", streamName: stream })
    data.set(encoder.encode("CHANGED!"))
    expect(await recorded).toEqual({ _tag: "Ok", value: {} })
    expect(await client.flush()).toMatchObject({ _tag: "Ok", value: { recordsFlushed: 1 } })
    expect(await readTexts(stream)).toEqual(["pk-original:original"])
  })

  it("the SDK client is the escape hatch to Kinesis itself", async () => {
    const stream = await newStream()
    const client = await create(configFor(tempDir()))
    const { DescribeStreamCommand } = await import("@aws-sdk/client-kinesis")
    const described = await client.kinesisClient.send(new DescribeStreamCommand({ StreamName: stream }))
    expect(described.StreamDescription?.StreamName).toBe(stream)
  })

  it("disable drops records at once and enable takes them again at once; a manual flush works while disabled", async () => {
    const stream = await newStream()
    const client = await create(configFor(tempDir()))
    client.disable()
    expect(client.isEnabled).toBe(false)
    expect(await client.record(input(stream, "dropped"))).toEqual({ _tag: "Ok", value: {} })
    expect(await client.record(null as unknown as RecordInput)).toEqual({ _tag: "Ok", value: {} })
    client.enable()
    expect(client.isEnabled).toBe(true)
    expect(await client.flush()).toEqual({ _tag: "Ok", value: flushData({ recordsFlushed: 0 }) })

    expect(await client.record(input(stream, "kept"))).toEqual({ _tag: "Ok", value: {} })
    client.disable()
    client.disable()
    expect(client.isEnabled).toBe(false)
    expect(await client.flush()).toEqual({ _tag: "Ok", value: flushData({ recordsFlushed: 1 }) })
    expect(await readTexts(stream)).toEqual(["pk-kept:kept"])
  })

  it("records cached by one client and never flushed are flushed by the next client on the same storagePath", async () => {
    const stream = await newStream()
    const dir = tempDir()
    const first = await create(configFor(dir))
    for (const text of ["a", "b", "c"]) await first.record(input(stream, text))
    await first.close()
    expect(await readTexts(stream)).toEqual([])

    const second = await create(configFor(dir))
    expect(await second.flush()).toEqual({ _tag: "Ok", value: flushData({ recordsFlushed: 3 }) })
    expect(await readTexts(stream)).toEqual(["pk-a:a", "pk-b:b", "pk-c:c"])
    expect(await second.clearCache()).toEqual({ _tag: "Ok", value: { recordsCleared: 0 } })
  })

  it("one open client per cache file: a second create rejects fast; after close a new one opens", async () => {
    const dir = tempDir()
    const owner = await create(configFor(dir))
    await expectCreateRefused(configFor(dir))
    // The owner is unharmed.
    expect((await owner.record(input("s", "x")))._tag).toBe("Ok")

    await owner.close()
    const successor = await create(configFor(dir))
    // The successor, which opened an existing file, owns it in turn.
    await expectCreateRefused(configFor(dir))
    expect(await successor.clearCache()).toEqual({ _tag: "Ok", value: { recordsCleared: 1 } })
  })

  it("invalid input comes back as an Error result with KinesisValidationException", async () => {
    const stream = await newStream()
    const client = await create(configFor(tempDir()))
    const bad: ReadonlyArray<unknown> = [
      { data: "text, not bytes", partitionKey: "k", streamName: stream },
      { data: new Uint8Array(1), partitionKey: "", streamName: stream },
      { data: new Uint8Array(1), partitionKey: "x".repeat(257), streamName: stream },
      { data: new Uint8Array(1), partitionKey: "k", streamName: "no spaces allowed" },
      { data: new Uint8Array(1), partitionKey: "k", streamName: "s".repeat(129) },
      { data: new Uint8Array(1), streamName: stream },
      { data: new Uint8Array(10 * 1024 * 1024), partitionKey: "k", streamName: stream },
      null,
      undefined
    ]
    for (const value of bad) expectError(await client.record(value as RecordInput), KinesisValidationException)
    // Nothing was stored, and the client still works.
    expect(await client.clearCache()).toEqual({ _tag: "Ok", value: { recordsCleared: 0 } })
    expect((await client.record(input(stream, "fine")))._tag).toBe("Ok")
    expect(await client.flush()).toEqual({ _tag: "Ok", value: flushData({ recordsFlushed: 1 }) })
  })

  it("create with bad options rejects with KinesisValidationException", async () => {
    const dir = tempDir()
    await expectCreateRefused(configFor(dir, { cacheMaxBytes: 0 }), KinesisValidationException)
    await expectCreateRefused(configFor(dir, { cacheMaxBytes: 1.5 }), KinesisValidationException)
    await expectCreateRefused(configFor(dir, { maxRetries: -1 }), KinesisValidationException)
    // Nothing was left holding the cache: a valid create on the same path opens.
    const client = await create(configFor(dir))
    expect(client.isClosed).toBe(false)
  })

  it("with the server down, flush is an Error result with KinesisUnknownException and keeps the records", async () => {
    const stream = await newStream()
    const client = await create(configFor(tempDir()))
    await client.record(input(stream, "offline"))
    await local.stop()
    try {
      expectError(await client.flush(), KinesisUnknownException)
    } finally {
      await local.start()
    }
    expect(await client.flush()).toEqual({ _tag: "Ok", value: flushData({ recordsFlushed: 1 }) })
    expect(await readTexts(stream)).toEqual(["pk-offline:offline"])
  })
})

describe("AmplifyKinesisClient: drain, streamConcurrency and close({ flushTimeout })", () => {
  const texts = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${i}`)
  const recordAll = async (client: AmplifyKinesisClient, stream: string, all: ReadonlyArray<string>) => {
    for (const text of all) expect((await client.record(input(stream, text)))._tag).toBe("Ok")
  }
  const expected = (all: ReadonlyArray<string>) => all.map((text) => `pk-${text}:${text}`).sort()

  it("create refuses a bad drain or streamConcurrency with KinesisValidationException", async () => {
    const dir = tempDir()
    for (const streamConcurrency of [0, -1, 1.5]) {
      await expectCreateRefused(configFor(dir, { streamConcurrency }), KinesisValidationException)
    }
    await expectCreateRefused(configFor(dir, { drain: "yes" as unknown as boolean }), KinesisValidationException)
    const client = await create(configFor(dir, { drain: true, streamConcurrency: 1 }))
    expect(client.isClosed).toBe(false)
  })

  it("with drain, one flush delivers every batch of every stream", async () => {
    const [big, small] = [await newStream(), await newStream()]
    const client = await create(configFor(tempDir(), { drain: true, streamConcurrency: 2 }))
    await recordAll(client, big, texts("big", 1100))
    await recordAll(client, small, texts("small", 2))

    expect(await client.flush()).toEqual({ _tag: "Ok", value: flushData({ recordsFlushed: 1102 }) })
    expect(await readTexts(big)).toEqual(expected(texts("big", 1100)))
    expect(await readTexts(small)).toEqual(expected(texts("small", 2)))
  })

  it("close({ flushTimeout }) delivers what is cached before closing; the next client finds the cache empty", async () => {
    const [big, small] = [await newStream(), await newStream()]
    const dir = tempDir()
    const client = await create(configFor(dir))
    await recordAll(client, big, texts("big", 700))
    await recordAll(client, small, texts("small", 2))

    await client.close({ flushTimeout: "30 seconds" })

    expect(client.isClosed).toBe(true)
    expectError(await client.flush(), ClientClosedException)
    expect(await readTexts(big)).toEqual(expected(texts("big", 700)))
    expect(await readTexts(small)).toEqual(expected(texts("small", 2)))
    const next = await create(configFor(dir))
    expect(await next.cacheStatus()).toMatchObject({ _tag: "Ok", value: { records: 0 } })
  })

  it("close({ flushTimeout: 0 }) closes without a final flush; the records stay for the next client", async () => {
    const stream = await newStream()
    const dir = tempDir()
    const client = await create(configFor(dir, { logLevel: "None" }))
    await recordAll(client, stream, ["kept"])

    await client.close({ flushTimeout: 0 })

    expect(client.isClosed).toBe(true)
    expect(await readTexts(stream)).toEqual([])
    const next = await create(configFor(dir))
    expect(await next.cacheStatus()).toMatchObject({ _tag: "Ok", value: { records: 1 } })
  })
})
