/**
 * The in-memory Kinesis of effect-kinesis/testing, beyond what the examples show: refusing whole
 * requests, the record of every request, and sequence numbers in acceptance order.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { FlushNone, KinesisClient } from "effect-kinesis"
import { MemoryKinesis } from "effect-kinesis/testing"

const record = (streamName: string, key: string) => ({ data: new Uint8Array([1, 2]), partitionKey: key, streamName })

describe("MemoryKinesis", () => {
  it.scoped("refuse: every request fails as a whole, is charged, and is kept in requests; nothing is accepted", () =>
    Effect.gen(function* () {
      const client = yield* KinesisClient.KinesisClient
      const kinesis = yield* MemoryKinesis.MemoryKinesis
      yield* client.record(record("a", "k1"))
      yield* kinesis.refuse({ name: "AccessDeniedException", status: 403 })
      const flushed = yield* client.flush()
      expect(flushed.recordsFlushed).toBe(0)
      expect(yield* kinesis.records()).toEqual([])
      expect(yield* kinesis.requests).toEqual([
        { stream: "a", entries: [{ partitionKey: "k1", data: new Uint8Array([1, 2]) }], bytes: 4 }
      ])
    }).pipe(Effect.provide(MemoryKinesis.layerClient({ flushStrategy: FlushNone(), maxRetries: 0 })))
  )

  it.scoped("records: accepted records of every stream in acceptance order, numbered from 0", () =>
    Effect.gen(function* () {
      const client = yield* KinesisClient.KinesisClient
      const kinesis = yield* MemoryKinesis.MemoryKinesis
      yield* client.record(record("b", "k1"))
      yield* client.record(record("a", "k2"))
      yield* client.flush()
      expect((yield* kinesis.records()).map((r) => [r.stream, r.partitionKey, r.sequenceNumber])).toEqual([
        ["a", "k2", "0"],
        ["b", "k1", "1"]
      ])
      expect((yield* kinesis.records("b")).map((r) => r.partitionKey)).toEqual(["k1"])
      // One stream at a time, so that acceptance order is name order.
    }).pipe(Effect.provide(MemoryKinesis.layerClient({ flushStrategy: FlushNone(), streamConcurrency: 1 })))
  )

  for (const countThrottling of [false, true]) {
    it.scoped(
      `a client with countThrottling: ${countThrottling} ${countThrottling ? "drops" : "keeps"} throttled records`,
      () =>
        Effect.gen(function* () {
          const client = yield* KinesisClient.KinesisClient
          const kinesis = yield* MemoryKinesis.MemoryKinesis
          yield* client.record(record("a", "k1"))
          yield* kinesis.throttle()
          const throttled = yield* client.flush()
          expect(throttled).toMatchObject({ recordsFailed: 1, recordsDropped: countThrottling ? 1 : 0 })
          yield* kinesis.accept
          expect((yield* client.flush()).recordsFlushed).toBe(countThrottling ? 0 : 1)
          expect(yield* kinesis.records("a")).toHaveLength(countThrottling ? 0 : 1)
        }).pipe(
          Effect.provide(MemoryKinesis.layerClient({ flushStrategy: FlushNone(), maxRetries: 0, countThrottling }))
        )
    )
  }
})
