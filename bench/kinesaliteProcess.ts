/**
 * Runs kinesalite (the local Kinesis of effect-kinesis/testing: LevelDB in a temporary directory)
 * in a child process of the benchmark, on 127.0.0.1, and reports its port to the parent over IPC. A
 * process of its own, like a real Kinesis endpoint: the server's work does not share the client's
 * thread. Exits when the parent disconnects.
 */
import { startLocalKinesis } from "../src/testing.js"

const local = await startLocalKinesis()
process.send?.({ port: Number(new URL(local.endpoint).port) })
process.on("disconnect", () => {
  local.dispose().then(() => process.exit(0))
})
