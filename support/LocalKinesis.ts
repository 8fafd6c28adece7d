/**
 * A real Kinesis API server on this machine (kinesalite, in-process, on 127.0.0.1), for the tests,
 * the benchmarks and the demo. Its streams live in LevelDB in a temporary directory, so the server
 * can be stopped and started again on the same port without losing what it holds.
 */

import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import {
  CreateStreamCommand,
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  type KinesisClientConfig
} from "@aws-sdk/client-kinesis"
import { NodeHttpHandler } from "@smithy/node-http-handler"
import kinesalite from "kinesalite"

/** A record as read back from a stream. */
export interface StreamRecord {
  readonly partitionKey: string
  readonly data: Uint8Array
  readonly sequenceNumber: string
}

/** A running kinesalite server and the means to use it. */
export interface LocalKinesis {
  readonly endpoint: string
  /** SDK settings that reach this server: endpoint, HTTP/1.1 handler, dummy credentials, few retries. */
  readonly clientConfig: Partial<KinesisClientConfig>
  /** An SDK client of the tests' own, for setting up streams and reading them back. */
  readonly sdk: KinesisClient
  /** Creates a stream and waits until it is active. */
  readonly createStream: (name: string, shardCount?: number) => Promise<void>
  /** Reads every record of a stream, shard by shard, from the start. */
  readonly readStream: (name: string) => Promise<ReadonlyArray<StreamRecord>>
  /** Takes the server off the network; what it holds is kept. */
  readonly stop: () => Promise<void>
  /** Brings a stopped server back on the same port. */
  readonly start: () => Promise<void>
  /** Stops the server for good and deletes its data. */
  readonly dispose: () => Promise<void>
}

/** Dummy credentials: kinesalite checks that requests are signed, not by whom. */
export const credentials = { accessKeyId: "AKIDLOCAL", secretAccessKey: "local-secret" }

/** An HTTP/1.1 request handler: kinesalite does not speak the SDK's default HTTP/2. */
export const http1Handler = () => new NodeHttpHandler({ httpAgent: new http.Agent({ keepAlive: true }) })

const listen = (server: http.Server, port: number) =>
  new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject)
      resolve()
    })
  })

/**
 * Stops listening. kinesalite's own `server.close` also closes its LevelDB store, and a request it is
 * still serving then crashes the process, so stopping uses plain `http.Server` close and keeps the store.
 */
const stopListening = (server: http.Server) =>
  new Promise<void>((resolve, reject) => {
    server.closeAllConnections()
    http.Server.prototype.close.call(server, (error) => (error ? reject(error) : resolve()))
  })

/** Stops listening and closes the store, for good. */
const shutDown = (server: http.Server) =>
  new Promise<void>((resolve, reject) => {
    server.closeAllConnections()
    server.close((error) => (error ? reject(error) : resolve()))
  })

/** Starts kinesalite on a free port of 127.0.0.1. */
export const startLocalKinesis = async (): Promise<LocalKinesis> => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kinesalite-"))
  const server = kinesalite({
    path: dataDir,
    createStreamMs: 0,
    deleteStreamMs: 0,
    updateStreamMs: 0,
    shardLimit: 100
  })
  await listen(server, 0)
  const port = (server.address() as AddressInfo).port
  const endpoint = `http://127.0.0.1:${port}`
  let running = true
  const clientConfig: Partial<KinesisClientConfig> = {
    endpoint,
    region: "us-east-1",
    credentials,
    requestHandler: http1Handler(),
    maxAttempts: 1
  }
  const sdk = new KinesisClient({ ...clientConfig, requestHandler: http1Handler(), maxAttempts: 3 })

  const createStream = async (name: string, shardCount = 1) => {
    await sdk.send(new CreateStreamCommand({ StreamName: name, ShardCount: shardCount }))
    for (;;) {
      const described = await sdk.send(new DescribeStreamCommand({ StreamName: name }))
      if (described.StreamDescription?.StreamStatus === "ACTIVE") return
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  const readStream = async (name: string) => {
    const described = await sdk.send(new DescribeStreamCommand({ StreamName: name }))
    const records: Array<StreamRecord> = []
    for (const shard of described.StreamDescription?.Shards ?? []) {
      let iterator = (
        await sdk.send(
          new GetShardIteratorCommand({ StreamName: name, ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON" })
        )
      ).ShardIterator
      while (iterator) {
        const page = await sdk.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }))
        for (const record of page.Records ?? []) {
          records.push({
            partitionKey: record.PartitionKey ?? "",
            data: record.Data ?? new Uint8Array(),
            sequenceNumber: record.SequenceNumber ?? ""
          })
        }
        if ((page.Records ?? []).length === 0) break
        iterator = page.NextShardIterator
      }
    }
    return records
  }

  return {
    endpoint,
    clientConfig,
    sdk,
    createStream,
    readStream,
    stop: async () => {
      if (!running) return
      running = false
      await stopListening(server)
    },
    start: async () => {
      if (running) return
      await listen(server, port)
      running = true
    },
    dispose: async () => {
      sdk.destroy()
      if (!running) await listen(server, port)
      await shutDown(server)
      running = false
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
}
