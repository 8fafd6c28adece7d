/**
 * A stand-in for Kinesis that acknowledges every record at once: a node:http server on 127.0.0.1
 * that parses the PutRecords JSON body and answers success for each of its records. It measures the
 * client, not a server. Per stream it counts the records it acknowledged and the distinct records
 * among them (by the index that `recordSource` puts at the start of each record's data).
 *
 * `startAckServerProcess` runs it in a child process of its own (ackServerProcess.ts), as a remote
 * Kinesis would be: its parsing does not share the client's thread. With `delayMs` it answers each
 * request that long after receiving it (a remote service's round trip), and counts its records when
 * it answers. `waitDelivered` asks it, from any process, to answer once a stream's records are all
 * acknowledged.
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

/** How the server answers. */
export interface AckServerOptions {
  /** How long after receiving a request the server answers it, ms. Default 0: at once. */
  readonly delayMs?: number
}

/** A set of record indexes, as a growing bitmap, and who waits for it to reach a count. */
class Seen {
  private bits = new Uint8Array(1 << 14)
  acknowledged = 0
  distinct = 0
  /** Answers to `GET /wait`, each called once `distinct` reaches its count. */
  waiters: Array<{ readonly distinct: number; readonly answer: () => void }> = []
  /** Answers the waiters whose count is reached. */
  settle() {
    const ready = this.waiters.filter((waiter) => this.distinct >= waiter.distinct)
    if (ready.length === 0) return
    this.waiters = this.waiters.filter((waiter) => this.distinct < waiter.distinct)
    for (const waiter of ready) waiter.answer()
  }
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

/** The path of the wait request: `/wait?stream=<name>&distinct=<count>`. */
const waitPath = "/wait"

/** Starts the server in this process on a free port of 127.0.0.1. */
export const startAckServer = async (options: AckServerOptions = {}): Promise<AckServer> => {
  const delayMs = options.delayMs ?? 0
  const streams = new Map<string, Seen>()
  const seenOf = (stream: string) => {
    let seen = streams.get(stream)
    if (seen === undefined) {
      seen = new Seen()
      streams.set(stream, seen)
    }
    return seen
  }
  const server = http.createServer((request, response) => {
    if (request.method === "GET" && request.url?.startsWith(waitPath)) {
      // Answered at once when the stream already has the records, else when a request brings them.
      const query = new URL(request.url, "http://localhost").searchParams
      const seen = seenOf(query.get("stream") ?? "")
      seen.waiters.push({
        distinct: Number(query.get("distinct")),
        answer: () => response.end(JSON.stringify({ acknowledged: seen.acknowledged, distinct: seen.distinct }))
      })
      seen.settle()
      request.resume()
      return
    }
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as PutRecordsBody
      const records = body.Records ?? []
      const acknowledge = () => {
        const seen = seenOf(body.StreamName ?? "")
        // The first 8 base64 characters hold the first 6 bytes of the data: the index is the first 4.
        for (const record of records) seen.add(Buffer.from(record.Data?.slice(0, 8) ?? "", "base64").readUInt32BE(0))
        const answer = `{"FailedRecordCount":0,"Records":[${Array.from({ length: records.length }, () => entry).join(",")}]}`
        response.writeHead(200, {
          "content-type": "application/x-amz-json-1.1",
          "content-length": Buffer.byteLength(answer),
          "x-amzn-requestid": "bench"
        })
        response.end(answer)
        seen.settle()
      }
      if (delayMs > 0) setTimeout(acknowledge, delayMs)
      else acknowledge()
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
export const startAckServerProcess = async (options: AckServerOptions = {}): Promise<AckServer> => {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "ackServerProcess.ts")
  const child = fork(script, [JSON.stringify(options)], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
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

/**
 * Resolves once the server at `endpoint` has acknowledged `distinct` distinct records of `stream`
 * (one request, answered by the server when it happens); rejects after `timeoutMs`.
 */
export const waitDelivered = (
  endpoint: string,
  stream: string,
  distinct: number,
  timeoutMs = 10 * 60 * 1000
): Promise<StreamCount> =>
  new Promise((resolve, reject) => {
    const url = `${endpoint}${waitPath}?stream=${encodeURIComponent(stream)}&distinct=${distinct}`
    const request = http.get(url, { agent: false }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as StreamCount))
      response.on("error", reject)
    })
    request.on("error", reject)
    request.setTimeout(timeoutMs, () =>
      request.destroy(new Error(`${stream}: fewer than ${distinct} records delivered after ${timeoutMs} ms`))
    )
  })
