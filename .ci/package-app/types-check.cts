// CommonJS types: a .cts file that requires both entry points type-checks against the same Effect.
import { Effect, type Layer } from "effect"
import { FlushNone, KinesisClient } from "effect-kinesis"
import { AmplifyKinesisClient, type Result } from "effect-kinesis/promise"
import { MemoryKinesis } from "effect-kinesis/testing"

const layer: Layer.Layer<KinesisClient.KinesisClient, unknown> = KinesisClient.layer({
  options: { flushStrategy: FlushNone() }
})
const program: Effect.Effect<number, unknown> = Effect.flatMap(KinesisClient.KinesisClient, (client) =>
  Effect.map(client.flush(), (data) => data.recordsFlushed)
).pipe(Effect.provide(MemoryKinesis.layerClient()))
const create: (region: string) => Promise<AmplifyKinesisClient> = (region) => AmplifyKinesisClient.create({ region })
type Flushed = Result<{ readonly recordsFlushed: number }>

export { create, type Flushed, layer, program }
