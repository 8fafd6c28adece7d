/**
 * A stand-in for Kinesis that acknowledges every record at once: a node:http server on 127.0.0.1
 * that parses the PutRecords JSON body and answers success for each of its records. It measures the
 * client, not a server. Per stream it counts the records it acknowledged and the distinct records
 * among them (by the index that `recordSource` puts at the start of each record's data).
 *
 * `startAckServerProcess` runs it in a child process of its own (ackServerProcess.ts), as a remote
 * Kinesis would be: its parsing does not share the client's thread.
 */
import { fork } from "node:child_process"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** What the server received for one stream. */
export interface StreamCount {
  /** Records acknowledged, duplicates included. */
  readonly acknowledged: number
  /** Distinct records acknowledged. */
  readonly distinct: number
}

/** A running acknowledging server. */
export interface AckServer {
  readonly endpoint: string
  /** What the server received for `stream` so far. */
  readonly count: (stream: string) => Promise<StreamCount>
  readonly close: () => Promise<void>
}

const entry = '{"SequenceNumber":"1","ShardId":"shardId-000000000000"}'

/** A set of record indexes, as a growing bitmap. */
class Seen {
  private bits = new Uint8Array(1 << 14)
  acknowledged = 0
  distinct = 0
  add(index: number) {
    this.acknowledged++
    const byte = index >>> 3
    if (byte >= this.bits.length) {
      const grown = new Uint8Array(Math.max(byte + 1, this.bits.length * 2))
      grown.set(this.bits)
      this.bits = grown
    }
    const mask = 1 << (index & 7)
    if ((this.bits[byte]! & mask) === 0) {
      this.bits[byte]! |= mask
      this.distinct++
    }
  }
}

interface PutRecordsBody {
  readonly StreamName?: string
  readonly Records?: ReadonlyArray<{ readonly Data?: string }>
}

/** Starts the server in this process on a free port of 127.0.0.1. */
export const startAckServer = async (): Promise<AckServer> => {
  const streams = new Map<string, Seen>()
  const server = http.createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as PutRecordsBody
      const records = body.Records ?? []
      const stream = body.StreamName ?? ""
      let seen = streams.get(stream)
      if (seen === undefined) {
        seen = new Seen()
        streams.set(stream, seen)
      }
      // The first 8 base64 characters hold the first 6 bytes of the data: the index is the first 4.
      for (const record of records) seen.add(Buffer.from(record.Data?.slice(0, 8) ?? "", "base64").readUInt32BE(0))
      const answer = `{"FailedRecordCount":0,"Records":[${Array.from({ length: records.length }, () => entry).join(",")}]}`
      response.writeHead(200, {
        "content-type": "application/x-amz-json-1.1",
        "content-length": Buffer.byteLength(answer),
        "x-amzn-requestid": "bench"
      })
      response.end(answer)
    })
  })
  // A client may record for many seconds before it flushes: keep its idle connection open, as a
  // remote endpoint would, instead of node's 5 s (a reused socket the server has closed fails the
  // request, and the benchmarks make no retries).
  server.keepAliveTimeout = 10 * 60 * 1000
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    endpoint: `http://127.0.0.1:${port}`,
    count: async (stream) => {
      const seen = streams.get(stream)
      return { acknowledged: seen?.acknowledged ?? 0, distinct: seen?.distinct ?? 0 }
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((error) => (error ? reject(error) : resolve()))
      })
  }
}

/** A message from the server's process: its port, or the answer to a count. */
type FromServer = { readonly port: number } | { readonly stream: string; readonly count: StreamCount }

/** Starts the server in a child process of its own. */
export const startAckServerProcess = async (): Promise<AckServer> => {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "ackServerProcess.ts")
  const child = fork(script, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] })
  const port = await new Promise<number>((resolve, reject) => {
    child.once("message", (message) => resolve((message as { port: number }).port))
    child.once("error", reject)
    child.once("exit", (code) => reject(new Error(`the acknowledging server exited with code ${code}`)))
  })
  const pending = new Map<string, Array<(count: StreamCount) => void>>()
  child.on("message", (message: FromServer) => {
    if (!("stream" in message)) return
    const waiters = pending.get(message.stream) ?? []
    pending.delete(message.stream)
    for (const waiter of waiters) waiter(message.count)
  })
  return {
    endpoint: `http://127.0.0.1:${port}`,
    count: (stream) =>
      new Promise((resolve) => {
        pending.set(stream, [...(pending.get(stream) ?? []), resolve])
        child.send({ count: stream })
      }),
    close: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve())
        child.disconnect()
      })
  }
}
