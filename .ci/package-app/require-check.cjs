// A CommonJS app: require() of every entry point, and a layer built with require("effect") and run.
const fs = require("node:fs")
const os = require("node:os")
const path = require("node:path")
const { Effect, Layer, Context } = require("effect")
const { KinesisClient, FlushNone } = require("effect-kinesis")
const { AmplifyKinesisClient } = require("effect-kinesis/promise")
const { LocalKinesis } = require("effect-kinesis/testing")

if (typeof AmplifyKinesisClient.create !== "function") throw new Error("effect-kinesis/promise did not load")

const program = Effect.gen(function* () {
  const local = yield* LocalKinesis.make({ streams: ["cjs-app"] })
  const storagePath = fs.mkdtempSync(path.join(os.tmpdir(), "package-check-"))
  const layer = KinesisClient.layer({ ...local.config, storagePath, options: { flushStrategy: FlushNone() } })
  const client = Context.get(yield* Layer.build(layer), KinesisClient.KinesisClient)
  yield* client.record({ data: new Uint8Array([1]), partitionKey: "p", streamName: "cjs-app" })
  const flushed = yield* client.flush()
  if (flushed.recordsFlushed !== 1) throw new Error(`flushed ${flushed.recordsFlushed}`)
  yield* client.close()
  fs.rmSync(storagePath, { recursive: true, force: true })
})

Effect.runPromise(Effect.scoped(program)).then(
  () => console.log("require check: ok"),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
