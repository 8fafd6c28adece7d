// A CommonJS app that opens a client (automatic flush on), records, and ends without closing it:
// the process must exit by itself, with the app's CommonJS copy of Effect running the client.
const fs = require("node:fs")
const os = require("node:os")
const path = require("node:path")
const { Effect, Scope } = require("effect")
const { KinesisClient } = require("effect-kinesis")

const storagePath = fs.mkdtempSync(path.join(os.tmpdir(), "package-check-"))
Effect.runFork(
  Effect.gen(function* () {
    const scope = yield* Scope.make() // never closed
    const client = yield* Scope.extend(scope)(
      KinesisClient.make({ region: "us-east-1", storagePath, kinesisClientConfig: { endpoint: "http://127.0.0.1:9" } })
    )
    yield* client.record({ data: new Uint8Array([1]), partitionKey: "p", streamName: "idle" })
    console.log("idle client: recorded")
  })
)
