/**
 * Runs the acknowledging server (ackServer.ts) in a child process of the benchmark, on 127.0.0.1,
 * with the options given as JSON in the first argument: reports its port over IPC, answers
 * `{ count: stream }` with what it received for that stream, and exits when the parent disconnects.
 */
import { type AckServerOptions, startAckServer } from "./ackServer.js"

const server = await startAckServer(JSON.parse(process.argv[2] ?? "{}") as AckServerOptions)
process.send?.({ port: Number(new URL(server.endpoint).port) })
process.on("message", (message: { readonly count?: string }) => {
  if (message.count === undefined) return
  const stream = message.count
  void server.count(stream).then((count) => process.send?.({ stream, count }))
})
process.on("disconnect", () => {
  void server.close().then(() => process.exit(0))
})
