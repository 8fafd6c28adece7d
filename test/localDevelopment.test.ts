/**
 * Local development: the AWS SDK speaks HTTP/2 by default and kinesalite only HTTP/1.1. A client
 * given only the endpoint gets no response, and the error says why; the configuration that
 * effect-kinesis/testing hands out works.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { FlushNone, KinesisClient, KinesisUnknownException } from "effect-kinesis"
import { credentials, LocalKinesis } from "effect-kinesis/testing"
import { scopedTempDir } from "./support/tempDir.js"

describe("local development", () => {
  it.scopedLive("with only an endpoint the flush fails, naming the HTTP/1.1 handler it needs", () =>
    Effect.gen(function* () {
      const local = yield* LocalKinesis.make({ streams: ["local-dev"] })
      const client = yield* KinesisClient.make({
        region: "us-east-1",
        credentialsProvider: credentials,
        storagePath: yield* scopedTempDir("effect-kinesis-local-"),
        options: { flushStrategy: FlushNone(), requestTimeout: "10 seconds" },
        kinesisClientConfig: { endpoint: local.endpoint }
      })
      yield* client.record({ data: new Uint8Array([1]), partitionKey: "p", streamName: "local-dev" })
      const error = yield* Effect.flip(client.flush())
      expect(error).toBeInstanceOf(KinesisUnknownException)
      expect(error.message).toMatch(/HTTP\/1\.1 requestHandler/)
      expect(error.message).toMatch(/http1Handler\(\) from effect-kinesis\/testing/)
    })
  )

  it.scopedLive("the ready configuration of LocalKinesis delivers", () =>
    Effect.gen(function* () {
      const local = yield* LocalKinesis.make({ streams: [{ name: "local-dev", shards: 2 }] })
      const client = yield* KinesisClient.make({
        ...local.config,
        storagePath: yield* scopedTempDir("effect-kinesis-local-"),
        options: { flushStrategy: FlushNone() }
      })
      yield* client.record({ data: new Uint8Array([1]), partitionKey: "p", streamName: "local-dev" })
      expect((yield* client.flush()).recordsFlushed).toBe(1)
      expect(yield* local.readStream("local-dev")).toHaveLength(1)
      // Off the network and back, with its data: an outage for real.
      yield* local.stop
      yield* client.record({ data: new Uint8Array([2]), partitionKey: "p", streamName: "local-dev" })
      expect(yield* Effect.flip(client.flush())).toBeInstanceOf(KinesisUnknownException)
      yield* local.start
      expect((yield* client.flush()).recordsFlushed).toBe(1)
      expect(yield* local.readStream("local-dev")).toHaveLength(2)
    })
  )
})
