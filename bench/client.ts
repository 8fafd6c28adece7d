/**
 * The pieces shared by the flush and end-to-end benchmarks: a client of the library over a temp
 * cache, one measured run of it, and the raw SDK baseline that sends the same 500-record batches.
 */
import { PutRecordsCommand, KinesisClient as SdkClient } from "@aws-sdk/client-kinesis"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { FlushNone } from "../src/FlushStrategy.js"
import * as KinesisClient from "../src/KinesisClient.js"
import type { ValidRecord } from "../src/RecordInput.js"
import { sdkConfig } from "./kinesalite.js"
import { batches, type Measurement, timed } from "./report.js"

/** A client of the library on `endpoint`, caching in `storagePath`, with manual flushes only. */
export const makeClient = (
  endpoint: string,
  storagePath: string
): Effect.Effect<KinesisClient.KinesisClient, unknown, Scope.Scope> => {
  const { region: _region, credentials, ...rest } = sdkConfig(endpoint)
  return KinesisClient.make({
    region: "us-east-1",
    storagePath,
    credentialsProvider: credentials,
    kinesisClientConfig: rest,
    options: { cacheMaxBytes: 1024 * 1024 * 1024, flushStrategy: FlushNone() }
  })
}

/** Records every record with `concurrency` callers at once. */
export const recordAll = (
  client: KinesisClient.KinesisClient,
  records: ReadonlyArray<ValidRecord>,
  concurrency: number
) =>
  Effect.forEach(
    Array.from({ length: concurrency }, (_, worker) => worker),
    (worker) =>
      Effect.gen(function* () {
        for (let i = worker; i < records.length; i += concurrency) {
          const { streamName, partitionKey, data } = records[i]!
          yield* client.record({ streamName, partitionKey, data })
        }
      }),
    { concurrency: "unbounded", discard: true }
  )

/** Flushes until the cache is empty; returns how many records the service accepted. */
export const flushUntilEmpty = (client: KinesisClient.KinesisClient) =>
  Effect.gen(function* () {
    let total = 0
    for (;;) {
      const { recordsFlushed } = yield* client.flush()
      if (recordsFlushed === 0) return total
      total += recordsFlushed
    }
  })

/**
 * One measured run of the library: a fresh client over `storagePath`, then `prepare` (not timed),
 * then `measure` (timed), which returns how many records it flushed. Fails unless that is every
 * record.
 */
export const measureClient = (
  name: string,
  endpoint: string,
  storagePath: string,
  records: ReadonlyArray<ValidRecord>,
  steps: {
    readonly prepare?: (client: KinesisClient.KinesisClient) => Effect.Effect<void, unknown>
    readonly measure: (client: KinesisClient.KinesisClient) => Effect.Effect<number, unknown>
  }
): Promise<Measurement> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const client = yield* makeClient(endpoint, storagePath)
        if (steps.prepare) yield* steps.prepare(client)
        const start = performance.now()
        const flushed = yield* steps.measure(client)
        const seconds = (performance.now() - start) / 1000
        if (flushed !== records.length) throw new Error(`flushed ${flushed} of ${records.length} records`)
        return { name, records: flushed, seconds } satisfies Measurement
      })
    )
  )

/** The baseline: the same records in 500-record `PutRecords` calls, one at a time, straight through the SDK. */
export const rawPutRecords = async (
  name: string,
  endpoint: string,
  records: ReadonlyArray<ValidRecord>
): Promise<Measurement> => {
  const sdk = new SdkClient(sdkConfig(endpoint))
  try {
    return await timed(name, records.length, async () => {
      for (const batch of batches(records)) {
        const response = await sdk.send(
          new PutRecordsCommand({
            StreamName: batch[0]!.streamName,
            Records: batch.map((record) => ({ PartitionKey: record.partitionKey, Data: record.data }))
          })
        )
        if ((response.FailedRecordCount ?? 0) > 0 || response.Records?.length !== batch.length) {
          throw new Error("PutRecords did not take every record")
        }
      }
    })
  } finally {
    sdk.destroy()
  }
}
