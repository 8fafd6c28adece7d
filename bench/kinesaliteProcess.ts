/**
 * Runs kinesalite (LevelDB in a temporary directory, as support/LocalKinesis.ts does) in a child process of the benchmark, on 127.0.0.1, and reports its
 * port to the parent over IPC. A process of its own, like a real Kinesis endpoint: the server's work
 * does not share the client's thread. Exits when the parent disconnects.
 */
import * as fs from "node:fs"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import kinesalite from "kinesalite"

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kinesalite-bench-"))
const server = kinesalite({ path: dataDir, createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 })
server.listen(0, "127.0.0.1", () => {
  process.send?.({ port: (server.address() as AddressInfo).port })
})
process.on("disconnect", () => {
  server.closeAllConnections()
  server.close(() => {
    fs.rmSync(dataDir, { recursive: true, force: true })
    process.exit(0)
  })
})
