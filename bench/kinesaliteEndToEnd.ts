/**
 * Benchmark `kinesalite`: end to end to kinesalite, with no target (kinesalite is the bottleneck
 * here, about 15,000 records/s on this kind of machine). The library records 1 KiB records (256
 * calls in flight) while a loop calls `flush()`, until every record is recorded and the cache is
 * empty; next to raw SDK `PutRecords` of 500-record batches. Kinesalite runs in a child process, a
 * fresh one for each measurement (it slows down as its LevelDB fills).
 */

import { startKinesalite } from "./kinesalite.js"
import { createClient, flushUntilEmpty, recordAll } from "./library.js"
import { rawPutRecords, rawSdk } from "./raw.js"
import { recordSource } from "./records.js"
import { type Line, type Measurement, median, printTable, rate, tempDir, timed } from "./report.js"

const library = async (endpoint: string, stream: string, count: number): Promise<Measurement> => {
  const temp = tempDir("effect-kinesis-bench-kinesalite-")
  const client = await createClient(endpoint, temp.dir)
  try {
    const source = recordSource(stream, count)
    return await timed("record (256 in flight) + flush until empty", count, async () => {
      let recording = true
      const recorder = recordAll(client, source, 256).finally(() => {
        recording = false
      })
      let flushed = 0
      while (recording || flushed < count) {
        const result = await client.flush()
        if (result._tag === "Error") throw result.error
        flushed += result.value.recordsFlushed
        // Nothing cached right now: let the recorders run
        if (result.value.recordsFlushed === 0) await new Promise((resolve) => setTimeout(resolve, 1))
      }
      await recorder
      flushed += await flushUntilEmpty(client)
      if (flushed !== count) throw new Error(`flushed ${flushed} of ${count} records`)
    })
  } finally {
    await client.close()
    temp.remove()
  }
}

const raw = async (endpoint: string, stream: string, count: number): Promise<Measurement> => {
  const sdk = rawSdk(endpoint)
  try {
    return await timed("raw SDK PutRecords, 500 per call", count, () => rawPutRecords(sdk, recordSource(stream, count)))
  } finally {
    sdk.destroy()
  }
}

/** Runs `measure` against a kinesalite of its own, warmed up first with 2,000 records, on a new stream `bench`. */
export const onFreshServer = async <A>(measure: (endpoint: string, stream: string) => Promise<A>): Promise<A> => {
  const server = await startKinesalite()
  try {
    await server.createStream("warm-up")
    await raw(server.endpoint, "warm-up", 2_000)
    await server.createStream("bench")
    return await measure(server.endpoint, "bench")
  } finally {
    await server.stop()
  }
}

/** Runs the benchmark (medians of `rounds`); it has no target and always counts as met. */
export const run = async (options: { readonly records: number; readonly rounds: number }): Promise<boolean> => {
  await onFreshServer((endpoint, stream) => library(endpoint, stream, 2_000))
  const raws: Array<Measurement> = []
  const libraries: Array<Measurement> = []
  for (let round = 0; round < options.rounds; round++) {
    raws.push(await onFreshServer((endpoint, stream) => raw(endpoint, stream, options.records)))
    libraries.push(await onFreshServer((endpoint, stream) => library(endpoint, stream, options.records)))
  }
  const lines: Array<Line> = [
    { kind: "baseline", run: median(raws) },
    {
      kind: "measured",
      run: median(libraries),
      baseline: median(raws),
      runs: libraries.map((r, i) => rate(r) / rate(raws[i]!))
    }
  ]
  printTable(`kinesalite. End to end to kinesalite, 1 KiB records (median of ${options.rounds}; no target)`, lines)
  return true
}
