/**
 * The library as a user sees it: the Promise facade (`effect-kinesis/promise`), nothing else. The
 * benchmarks that go through this module stay valid whatever runs beneath the facade.
 */
import { AmplifyKinesisClient, FlushNone, type FlushStrategy, type KinesisClientOptions } from "../src/Promise.js"
import type { BenchRecord, RecordSource } from "./records.js"
import { credentials } from "./sdk.js"

/** The options a benchmark line may set; the others keep the library's defaults. */
export interface BenchClientOptions {
  readonly cacheMaxBytes?: number
  readonly flushStrategy?: FlushStrategy
  readonly drain?: boolean
  /** Batches of one stream in flight at once (1 to 10; the library's default is 1). */
  readonly requestsPerStream?: number
}

/** The client settings the benchmarks use: the server at `endpoint`, the cache in `storagePath`. */
export const createClient = (
  endpoint: string,
  storagePath: string,
  options: BenchClientOptions = {}
): Promise<AmplifyKinesisClient> => {
  // `requestsPerStream` is typed here as well, so that this compiles before and after the option
  // is part of `KinesisClientOptions` (until then the client ignores it).
  const clientOptions: KinesisClientOptions & { readonly requestsPerStream?: number } = {
    cacheMaxBytes: options.cacheMaxBytes ?? 4 * 1024 * 1024 * 1024,
    flushStrategy: options.flushStrategy ?? FlushNone(),
    ...(options.drain === undefined ? {} : { drain: options.drain }),
    ...(options.requestsPerStream === undefined ? {} : { requestsPerStream: options.requestsPerStream })
  }
  return AmplifyKinesisClient.create({
    region: "us-east-1",
    storagePath,
    credentialsProvider: credentials,
    // The acknowledging server and kinesalite speak HTTP/1.1 only; no SDK retries.
    kinesisClientConfig: { endpoint, maxAttempts: 1 },
    http: { version: "1.1" },
    options: clientOptions
  })
}

/** Records one record; throws unless the client answered `Ok`. */
export const recordOne = async (client: AmplifyKinesisClient, record: BenchRecord): Promise<void> => {
  const result = await client.record(record)
  if (result._tag === "Error") throw result.error
}

/** Records every record of `source` (indexes `from` to `to`), with `inFlight` calls waiting at once. */
export const recordAll = async (
  client: AmplifyKinesisClient,
  source: RecordSource,
  inFlight: number,
  from = 0,
  to = source.count
): Promise<void> => {
  let next = from
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < to) await recordOne(client, source.at(next++))
    })
  )
}

/**
 * Records records `from` to `to` of `source` through `client.recordAll`, `perCall` inputs per call,
 * one call at a time; throws unless the client answered `Ok` for every record.
 */
export const recordInGroups = async (
  client: AmplifyKinesisClient,
  source: RecordSource,
  perCall: number,
  from = 0,
  to = source.count
): Promise<void> => {
  for (let first = from; first < to; first += perCall) {
    const inputs = Array.from({ length: Math.min(perCall, to - first) }, (_, i) => source.at(first + i))
    for (const outcome of await client.recordAll(inputs)) if (outcome._tag === "Error") throw outcome.error
  }
}

/** Calls `flush()` until the cache is empty; returns how many records the service accepted. */
export const flushUntilEmpty = async (client: AmplifyKinesisClient): Promise<number> => {
  let total = 0
  for (;;) {
    const result = await client.flush()
    if (result._tag === "Error") throw result.error
    const { recordsFlushed, recordsFailed, recordsRemaining, flushInProgress } = result.value
    total += recordsFlushed
    if (recordsFailed > 0) throw new Error(`The server refused ${recordsFailed} records`)
    if (flushInProgress) await new Promise((resolve) => setTimeout(resolve, 1))
    else if (recordsRemaining === 0) return total
  }
}
