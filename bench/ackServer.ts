/**
 * A stand-in for Kinesis that acknowledges every record at once: a node:http server on 127.0.0.1
 * that parses the PutRecords JSON body and answers success for each of its records. It measures the
 * client, not a server.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"

/** A running acknowledging server. */
export interface AckServer {
  readonly endpoint: string
  /** How many records it has acknowledged. */
  readonly acknowledged: () => number
  readonly close: () => Promise<void>
}

const entry = '{"SequenceNumber":"1","ShardId":"shardId-000000000000"}'

/** Starts the server on a free port of 127.0.0.1. */
export const startAckServer = async (): Promise<AckServer> => {
  let acknowledged = 0
  const server = http.createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { Records?: ReadonlyArray<unknown> }
      const count = body.Records?.length ?? 0
      acknowledged += count
      const answer = `{"FailedRecordCount":0,"Records":[${Array.from({ length: count }, () => entry).join(",")}]}`
      response.writeHead(200, {
        "content-type": "application/x-amz-json-1.1",
        "content-length": Buffer.byteLength(answer),
        "x-amzn-requestid": "bench"
      })
      response.end(answer)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    endpoint: `http://127.0.0.1:${port}`,
    acknowledged: () => acknowledged,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((error) => (error ? reject(error) : resolve()))
      })
  }
}
