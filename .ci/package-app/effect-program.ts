// An Effect program as a user writes it from the README: the library beside effect@3, the SDK's
// KinesisClient under an alias, a local Kinesis from effect-kinesis/testing.

import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { KinesisClient as SdkKinesisClient } from "@aws-sdk/client-kinesis"
import { Config, ConfigProvider, Context, Effect, Layer, Metric } from "effect"
import { FlushEngine, FlushNone, KinesisClient as Kinesis, KinesisValidationException } from "effect-kinesis"
import { LocalKinesis } from "effect-kinesis/testing"

const check = (ok: boolean, what: string) => {
  if (!ok) throw new Error(`package check failed: ${what}`)
}

const program = Effect.gen(function* () {
  const local = yield* LocalKinesis.make({ streams: ["effect-app"] })
  const storagePath = fs.mkdtempSync(path.join(os.tmpdir(), "package-check-"))

  // layerConfig with Config.succeed for the fields that don't come from config.
  const viaConfig = Kinesis.layerConfig({
    region: Config.string("REGION"),
    storagePath: Config.succeed(storagePath),
    credentialsProvider: Config.succeed(local.config.credentialsProvider),
    options: Config.succeed({ flushStrategy: FlushNone() }),
    kinesisClientConfig: Config.succeed(local.clientConfig)
  })
  yield* Effect.scoped(
    Effect.gen(function* () {
      const client = Context.get(yield* Layer.build(viaConfig), Kinesis.KinesisClient)
      check(client.kinesisClient instanceof SdkKinesisClient, "the escape hatch is an SDK KinesisClient")
      yield* client.record({ data: new TextEncoder().encode("one"), partitionKey: "p", streamName: "effect-app" })
      const { recordsFlushed } = yield* client.flush()
      check(recordsFlushed === 1, `layerConfig client flushed ${recordsFlushed}`)
    })
  ).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["REGION", "us-east-1"]]))))

  // layerFromEnv: region and endpoint from the environment (an HTTP/1.1 handler comes with the endpoint).
  yield* Effect.scoped(
    Effect.gen(function* () {
      const client = Context.get(
        yield* Layer.build(Kinesis.layerFromEnv({ credentialsProvider: local.config.credentialsProvider })),
        Kinesis.KinesisClient
      )
      yield* client.record({ data: new TextEncoder().encode("two"), partitionKey: "p", streamName: "effect-app" })
      const { recordsFlushed } = yield* client.flush()
      check(recordsFlushed === 1, `layerFromEnv client flushed ${recordsFlushed}`)
      const { records } = yield* client.cacheStatus()
      check(records === 0, `layerFromEnv client still caches ${records} records`)
      yield* client.close({ flushTimeout: "1 second" })
    })
  ).pipe(
    Effect.withConfigProvider(
      ConfigProvider.fromMap(
        new Map([
          ["AWS_REGION", "eu-west-1"],
          ["AWS_ENDPOINT_URL_KINESIS", local.endpoint],
          ["EFFECT_KINESIS_STORAGE_PATH", storagePath],
          ["EFFECT_KINESIS_FLUSH_INTERVAL", "none"]
        ])
      )
    )
  )

  const texts = (yield* local.readStream("effect-app")).map((r) => new TextDecoder().decode(r.data))
  check(JSON.stringify(texts) === JSON.stringify(["one", "two"]), `stream holds ${JSON.stringify(texts)}`)

  // The counters are tagged by stream.
  const delivered = yield* Metric.value(Metric.tagged(FlushEngine.recordsDelivered, "stream", "effect-app"))
  check(delivered.count === 2, `recordsDelivered{stream=effect-app} is ${delivered.count}`)

  // A region that is not a DNS label is a typed failure, not a defect.
  const bad = yield* Effect.flip(Effect.scoped(Kinesis.make({ region: "not a region!", storagePath })))
  check(bad instanceof KinesisValidationException, "a bad region fails with KinesisValidationException")

  fs.rmSync(storagePath, { recursive: true, force: true })
  console.log("effect program: ok")
})

Effect.runPromise(Effect.scoped(program)).catch((error) => {
  console.error(error)
  process.exit(1)
})
