// A Promise program as a user writes it from the README. It leaves its client open: the process
// must exit by itself. Its stdout must hold only its own lines (the client logs to stderr).
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { AmplifyKinesisClient } from "effect-kinesis/promise"
import { startLocalKinesis } from "effect-kinesis/testing"

const local = await startLocalKinesis({ streams: ["promise-app"] })
const storagePath = fs.mkdtempSync(path.join(os.tmpdir(), "package-check-"))
// No region: it comes from AWS_REGION.
const { region: _region, ...withoutRegion } = local.config
const client = await AmplifyKinesisClient.create({ ...withoutRegion, storagePath })
const recorded = await client.record({
  data: new TextEncoder().encode("hi"),
  partitionKey: "p",
  streamName: "promise-app"
})
if (recorded._tag === "Error") throw recorded.error
// A stream the server does not have: the client logs a warning (to stderr).
await client.record({ data: new TextEncoder().encode("lost"), partitionKey: "p", streamName: "no-such-stream" })
const status = await client.cacheStatus()
if (status._tag === "Error" || status.value.records !== 2) throw new Error(`cacheStatus: ${JSON.stringify(status)}`)
const flushed = await client.flush()
if (
  flushed._tag === "Error" ||
  flushed.value.recordsFlushed !== 1 ||
  flushed.value.recordsFailed !== 1 ||
  flushed.value.recordsRemaining !== 1
) {
  throw new Error(`flush: ${JSON.stringify(flushed)}`)
}
const read = await local.readStream("promise-app")
if (read.length !== 1) throw new Error(`stream holds ${read.length} records`)
await local.dispose()
console.log("promise program: ok")
// The client stays open on purpose.
