/**
 * Tests written the way an app that composes `KinesisClient` writes its own, with the layers of
 * `effect-kinesis/testing`. docs/testing.md walks through this file.
 *
 * The code under test is a small service of the app's: it records a signup event per user.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Effect, Layer, TestClock } from "effect"
import { FlushNone, KinesisClient, KinesisUnknownException } from "effect-kinesis"
import { LocalKinesis, MemoryKinesis } from "effect-kinesis/testing"

// --- the app's code -------------------------------------------------------------------------

class Signups extends Context.Tag("app/Signups")<
  Signups,
  { readonly signedUp: (userId: string) => Effect.Effect<void> }
>() {
  static readonly layer = Layer.effect(
    Signups,
    Effect.gen(function* () {
      const kinesis = yield* KinesisClient.KinesisClient
      return {
        signedUp: (userId) =>
          kinesis
            .record({
              data: new TextEncoder().encode(JSON.stringify({ type: "signup", userId })),
              partitionKey: userId,
              streamName: "signups"
            })
            .pipe(Effect.orDie)
      }
    })
  )
}

const decode = (data: Uint8Array) => JSON.parse(new TextDecoder().decode(data)) as { type: string; userId: string }

// --- tests over the in-memory Kinesis -------------------------------------------------------

describe("Signups, in memory", () => {
  // A fresh client per test: each test provides its own layer.
  const TestLive = Signups.layer.pipe(Layer.provideMerge(MemoryKinesis.layerClient({ flushStrategy: FlushNone() })))

  it.scoped("a signup reaches the stream once flushed", () =>
    Effect.gen(function* () {
      const signups = yield* Signups
      const client = yield* KinesisClient.KinesisClient
      const kinesis = yield* MemoryKinesis.MemoryKinesis

      yield* signups.signedUp("user-1")
      expect(yield* kinesis.records("signups")).toEqual([]) // cached, not sent yet
      const flushed = yield* client.flush()

      expect(flushed.recordsFlushed).toBe(1)
      const [delivered] = yield* kinesis.records("signups")
      expect(delivered?.partitionKey).toBe("user-1")
      expect(decode(delivered!.data)).toEqual({ type: "signup", userId: "user-1" })
    }).pipe(Effect.provide(TestLive))
  )

  it.scoped("throttled records stay in the cache and go out on a later flush", () =>
    Effect.gen(function* () {
      const signups = yield* Signups
      const client = yield* KinesisClient.KinesisClient
      const kinesis = yield* MemoryKinesis.MemoryKinesis

      yield* signups.signedUp("user-1")
      yield* signups.signedUp("user-2")
      yield* kinesis.throttle((entry) => entry.partitionKey === "user-2")
      expect((yield* client.flush()).recordsFlushed).toBe(1)

      yield* kinesis.accept
      expect((yield* client.flush()).recordsFlushed).toBe(1)
      expect((yield* kinesis.records("signups")).map((r) => r.partitionKey)).toEqual(["user-1", "user-2"])
    }).pipe(Effect.provide(TestLive))
  )

  it.scoped("while Kinesis can't be reached, the flush fails and the records wait", () =>
    Effect.gen(function* () {
      const signups = yield* Signups
      const client = yield* KinesisClient.KinesisClient
      const kinesis = yield* MemoryKinesis.MemoryKinesis

      yield* signups.signedUp("user-1")
      yield* kinesis.noResponse
      const error = yield* Effect.flip(client.flush())
      expect(error).toBeInstanceOf(KinesisUnknownException)

      yield* kinesis.accept
      expect((yield* client.flush()).recordsFlushed).toBe(1)
    }).pipe(Effect.provide(TestLive))
  )
})

// One client shared by the tests of a block. Under TestClock (it.effect) the automatic flush
// runs when the test moves time; awaitRequests lets the flush that set off finish.
layer(Signups.layer.pipe(Layer.provideMerge(MemoryKinesis.layerClient())))("Signups, automatic flush", (it) => {
  it.effect("the automatic flush sends the signups every 30 seconds", () =>
    Effect.gen(function* () {
      const signups = yield* Signups
      const kinesis = yield* MemoryKinesis.MemoryKinesis

      yield* signups.signedUp("user-1")
      yield* TestClock.adjust("29 seconds")
      expect(yield* kinesis.requests).toEqual([])
      yield* TestClock.adjust("1 second")
      yield* kinesis.awaitRequests(1)
      expect((yield* kinesis.records("signups")).map((r) => r.partitionKey)).toEqual(["user-1"])
    })
  )
})

describe("Signups, when Kinesis does not answer", () => {
  // A request that hangs gives up after requestTimeout: in real time here (it.scopedLive).
  it.scopedLive("the flush gives up after requestTimeout and keeps the record", () =>
    Effect.gen(function* () {
      const signups = yield* Signups
      const client = yield* KinesisClient.KinesisClient
      const kinesis = yield* MemoryKinesis.MemoryKinesis

      yield* kinesis.hang
      yield* signups.signedUp("user-1")
      expect(yield* Effect.flip(client.flush())).toBeInstanceOf(KinesisUnknownException)

      yield* kinesis.accept
      expect((yield* client.flush()).recordsFlushed).toBe(1)
    }).pipe(
      Effect.provide(
        Signups.layer.pipe(
          Layer.provideMerge(MemoryKinesis.layerClient({ flushStrategy: FlushNone(), requestTimeout: "200 millis" }))
        )
      )
    )
  )
})

// --- a test against a real Kinesis API on this machine ----------------------------------------

layer(
  Signups.layer.pipe(
    Layer.provideMerge(LocalKinesis.layerClient({ streams: ["signups"], options: { flushStrategy: FlushNone() } }))
  ),
  {
    timeout: "30 seconds"
  }
)("Signups, against a local Kinesis", (it) => {
  it.scoped("a signup can be read back from the stream", () =>
    Effect.gen(function* () {
      const signups = yield* Signups
      const client = yield* KinesisClient.KinesisClient
      const local = yield* LocalKinesis.LocalKinesis

      yield* signups.signedUp("user-9")
      expect((yield* client.flush()).recordsFlushed).toBe(1)

      const records = yield* local.readStream("signups")
      expect(records.map((record) => decode(record.data).userId)).toEqual(["user-9"])
    })
  )
})
