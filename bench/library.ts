/**
 * The library as a user sees it: the Promise facade (`effect-kinesis/promise`), nothing else. The
 * benchmarks that go through this module stay valid whatever runs beneath the facade.
 */
import { AmplifyKinesisClient, FlushNone, type FlushStrategy } from "../src/Promise.js"
import type { BenchRecord, RecordSource } from "./records.js"
import { credentials, http1Handler } from "./sdk.js"

/** The client settings the benchmarks use: the server at `endpoint`, the cache in `storagePath`. */
export const createClient = (
  endpoint: string,
  storagePath: string,
  options: { readonly cacheMaxBytes?: number; readonly flushStrategy?: FlushStrategy } = {}
): Promise<AmplifyKinesisClient> =>
  AmplifyKinesisClient.create({
    region: "us-east-1",
    storagePath,
    credentialsProvider: credentials,
    // The acknowledging server and kinesalite speak HTTP/1.1 only; no SDK retries.
    kinesisClientConfig: { endpoint, requestHandler: http1Handler(), maxAttempts: 1 },
    options: {
      cacheMaxBytes: options.cacheMaxBytes ?? 4 * 1024 * 1024 * 1024,
      flushStrategy: options.flushStrategy ?? FlushNone()
    }
  })

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
