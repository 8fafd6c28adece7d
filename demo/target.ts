/**
 * Where the demo sends its records, chosen from the environment:
 *
 * - nothing set: kinesalite, started in this process on 127.0.0.1, with a fresh 2-shard stream;
 *   the outage is real (the server is stopped and started again);
 * - `KINESIS_ENDPOINT`: a Kinesis-compatible server you run (kinesalite, LocalStack, ...); the stream
 *   `KINESIS_STREAM` (default `effect-kinesis-demo`) is created with 2 shards if it is missing;
 * - `KINESIS_STREAM` without `KINESIS_ENDPOINT`: Amazon Kinesis in `AWS_REGION`, with the AWS SDK's
 *   default credentials; the stream must exist.
 *
 * With a server the demo does not own, the outage is simulated by the client's request handler:
 * while "offline", every request fails before it leaves the process. A handler instance can't be
 * copied to another thread, so that client runs its engine on the demo's thread (the library says
 * so in an Info line).
 */
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  type KinesisClientConfig,
  ListShardsCommand
} from "@aws-sdk/client-kinesis"
import type { NodeHttpHandler } from "@smithy/node-http-handler"
import type { AmplifyKinesisClient } from "../src/Promise.js"
import { http1Handler, credentials as localCredentials, startLocalKinesis } from "../src/testing.js"

/** A record read back from the stream. */
export interface ReadRecord {
  readonly data: Uint8Array
}

export interface Target {
  /** One line saying where the records go. */
  readonly description: string
  readonly region: string
  readonly streamName: string
  /** `credentialsProvider` for the client; undefined means the AWS SDK's default chain. */
  readonly credentials: KinesisClientConfig["credentials"]
  /** `kinesisClientConfig` for the client. */
  readonly clientConfig: Partial<KinesisClientConfig>
  /** `http` for the client: HTTP/1.1 for a local server. */
  readonly http?: { readonly version: "1.1" }
  /** How often the demo flushes: faster against a local server, gentler against AWS. */
  readonly flushEveryMillis: number
  /** Takes Kinesis out of reach of the client. */
  readonly goOffline: (client: AmplifyKinesisClient) => Promise<void>
  /** Brings it back. */
  readonly goOnline: (client: AmplifyKinesisClient) => Promise<void>
  /** Every record of the stream written since `since` (or since the stream was created). */
  readonly readStream: (since: Date) => Promise<ReadonlyArray<ReadRecord>>
  readonly dispose: () => Promise<void>
}

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

export const openTarget = (env: NodeJS.ProcessEnv = process.env): Promise<Target> => {
  if (env.KINESIS_ENDPOINT) return remoteTarget(env, env.KINESIS_ENDPOINT)
  if (env.KINESIS_STREAM) return remoteTarget(env, undefined)
  return localTarget()
}

/** kinesalite in this process: nothing to configure, and a real outage. */
const localTarget = async (): Promise<Target> => {
  const local = await startLocalKinesis()
  const streamName = "effect-kinesis-demo"
  await local.createStream(streamName, 2)
  return {
    description: `kinesalite on ${local.endpoint} (in this process), stream ${streamName} with 2 shards`,
    region: "us-east-1",
    streamName,
    credentials: localCredentials,
    clientConfig: { endpoint: local.endpoint, maxAttempts: 1 },
    http: { version: "1.1" },
    flushEveryMillis: 50,
    goOffline: () => local.stop(),
    goOnline: () => local.start(),
    readStream: () => local.readStream(streamName),
    dispose: () => local.dispose()
  }
}

/** A server the demo does not own: a local endpoint, or Amazon Kinesis itself. */
const remoteTarget = async (env: NodeJS.ProcessEnv, endpoint: string | undefined): Promise<Target> => {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? (endpoint ? "us-east-1" : undefined)
  if (!region) throw new Error("Set AWS_REGION to the region of the stream KINESIS_STREAM.")
  const streamName = env.KINESIS_STREAM ?? "effect-kinesis-demo"
  // A local endpoint accepts any signature; real credentials from the environment win if present.
  const credentials = endpoint && !env.AWS_ACCESS_KEY_ID && !env.AWS_PROFILE ? localCredentials : undefined
  // HTTP/1.1: kinesalite does not speak HTTP/2, and every other server speaks HTTP/1.1 too.
  const outage = offlineSwitch(http1Handler())
  const clientConfig: Partial<KinesisClientConfig> = {
    ...(endpoint ? { endpoint } : {}),
    requestHandler: outage.handler
  }
  const sdk = new KinesisClient({
    region,
    ...(credentials ? { credentials } : {}),
    ...(endpoint ? { endpoint, requestHandler: http1Handler() } : {})
  })
  if (endpoint) await ensureStream(sdk, streamName)
  else await sdk.send(new DescribeStreamSummaryCommand({ StreamName: streamName }))
  return {
    description: endpoint
      ? `the Kinesis endpoint ${endpoint}, stream ${streamName} (outage simulated in the client)`
      : `Amazon Kinesis in ${region}, stream ${streamName} (outage simulated in the client)`,
    region,
    streamName,
    credentials,
    clientConfig,
    flushEveryMillis: 500,
    goOffline: async () => outage.set(true),
    goOnline: async () => outage.set(false),
    readStream: (since) => readStreamSince(sdk, streamName, since),
    dispose: async () => sdk.destroy()
  }
}

const ensureStream = async (sdk: KinesisClient, streamName: string) => {
  const status = () =>
    sdk.send(new DescribeStreamSummaryCommand({ StreamName: streamName })).then(
      (described) => described.StreamDescriptionSummary?.StreamStatus,
      (error: unknown) => {
        if (error instanceof Error && error.name === "ResourceNotFoundException") return undefined
        throw error
      }
    )
  if ((await status()) === undefined) await sdk.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: 2 }))
  while ((await status()) !== "ACTIVE") await sleep(100)
}

/** A request handler that, while switched off, fails every request the way a dead network does. */
const offlineSwitch = (inner: NodeHttpHandler) => {
  let offline = false
  const handler: NodeHttpHandler = Object.assign(Object.create(inner) as NodeHttpHandler, {
    handle: (...args: Parameters<NodeHttpHandler["handle"]>) =>
      offline
        ? Promise.reject(Object.assign(new Error("connect ECONNREFUSED (simulated outage)"), { code: "ECONNREFUSED" }))
        : inner.handle(...args)
  })
  return {
    handler,
    set: (on: boolean) => {
      offline = on
    }
  }
}

/** Reads every shard from `since` until it has caught up with the tip. */
const readStreamSince = async (sdk: KinesisClient, streamName: string, since: Date) => {
  const records: Array<ReadRecord> = []
  let nextToken: string | undefined
  do {
    const listed = await sdk.send(
      new ListShardsCommand(nextToken ? { NextToken: nextToken } : { StreamName: streamName })
    )
    for (const shard of listed.Shards ?? []) {
      let iterator = (
        await sdk.send(
          new GetShardIteratorCommand({
            StreamName: streamName,
            ShardId: shard.ShardId,
            ShardIteratorType: "AT_TIMESTAMP",
            Timestamp: since
          })
        )
      ).ShardIterator
      while (iterator) {
        const page = await sdk.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }))
        for (const record of page.Records ?? []) records.push({ data: record.Data ?? new Uint8Array() })
        if ((page.Records ?? []).length === 0 && (page.MillisBehindLatest ?? 0) === 0) break
        iterator = page.NextShardIterator
        await sleep(200) // GetRecords allows 5 calls per second per shard
      }
    }
    nextToken = listed.NextToken
  } while (nextToken)
  return records
}
