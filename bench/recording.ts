/**
 * Benchmark `record`: `record()` through the Promise facade into a fresh cache file, 256 calls in
 * flight and one call at a time, and `recordAll()` of 500 records per call, one call at a time; next
 * to raw better-sqlite3 on the cache's layout and pragmas (500 inserts per transaction, and one per
 * transaction). Nothing is flushed.
 */
import * as path from "node:path"
import { createClient, recordAll, recordInGroups, recordOne } from "./library.js"
import { openRaw, rawInsert } from "./raw.js"
import { insertConcurrently, insertOneAtATime } from "./rawWorkerInsert.js"
import { recordSource } from "./records.js"
import {
  type Line,
  type Measurement,
  median,
  percentile,
  printChecks,
  printTable,
  rate,
  tempDir,
  timed
} from "./report.js"

/** No server is called: the client never flushes. */
const endpoint = "http://127.0.0.1:9"

const rawRun = (file: string, count: number, perTransaction: number) => {
  const db = openRaw(file)
  try {
    const source = recordSource("bench", count)
    const name =
      perTransaction === 1 ? "raw sqlite, 1 insert per transaction" : "raw sqlite, 500 inserts per transaction"
    return timed(name, count, () => rawInsert(db, source, perTransaction))
  } finally {
    db.close()
  }
}

/** The floor of any cache on another thread with many callers at once: groups handed to raw SQLite in a worker. */
const rawWorkerGroupsRun = (file: string, count: number, inFlight: number) =>
  timed(`floor: raw sqlite in a worker, ${inFlight} in flight`, count, () =>
    insertConcurrently(file, recordSource("bench", count), count, inFlight)
  )

/** The floor of any cache on another thread, one record at a time: a round trip to raw SQLite in a worker. */
const rawWorkerRun = async (file: string, count: number) => {
  let latencies = new Float64Array(0)
  const run = await timed("floor: raw sqlite in a worker, 1 round trip each", count, async () => {
    latencies = await insertOneAtATime(file, recordSource("bench", count), count)
  })
  latencies.sort()
  return { ...run, p99Ms: percentile(latencies, 0.99) }
}

/** `recordAll()` of `perCall` records per call, one call at a time, into a fresh cache. */
const groupsRun = async (dir: string, count: number, perCall: number) => {
  const client = await createClient(endpoint, dir)
  try {
    const source = recordSource("bench", count)
    return await timed(`recordAll() of ${perCall}, one call at a time`, count, () =>
      recordInGroups(client, source, perCall)
    )
  } finally {
    await client.close()
  }
}

const libraryRun = async (dir: string, count: number, inFlight: number) => {
  const client = await createClient(endpoint, dir)
  try {
    const source = recordSource("bench", count)
    const latencies = new Float64Array(inFlight === 1 ? count : 0)
    const name = inFlight === 1 ? "record(), one at a time (awaited)" : `record(), ${inFlight} in flight`
    const run = await timed(name, count, async () => {
      if (inFlight > 1) return recordAll(client, source, inFlight)
      for (let i = 0; i < count; i++) {
        const start = performance.now()
        await recordOne(client, source.at(i))
        latencies[i] = performance.now() - start
      }
    })
    latencies.sort()
    return { ...run, p99Ms: percentile(latencies, 0.99) }
  } finally {
    await client.close()
  }
}

/** Runs the benchmark (medians of `rounds` runs, fresh files); returns whether its targets were met. */
export const run = async (options: {
  readonly concurrent: number
  readonly oneAtATime: number
  readonly rounds: number
}): Promise<boolean> => {
  const temp = tempDir("effect-kinesis-bench-record-")
  let file = 0
  const fresh = () => path.join(temp.dir, `run-${file++}`)
  try {
    // Warm-up: JIT, prepared statements, the file system.
    await rawRun(`${fresh()}.db`, 2_000, 1)
    await rawRun(`${fresh()}.db`, 2_000, 500)
    await rawWorkerRun(`${fresh()}.db`, 2_000)
    await rawWorkerGroupsRun(`${fresh()}.db`, 2_000, 256)
    await libraryRun(fresh(), 2_000, 1)
    await libraryRun(fresh(), 2_000, 256)
    await groupsRun(fresh(), 2_000, 500)
    const rawBatch: Array<Measurement> = []
    const concurrent: Array<Measurement> = []
    const groups: Array<Measurement> = []
    const rawWorkerGroups: Array<Measurement> = []
    const rawOne: Array<Measurement> = []
    const oneAtATime: Array<Measurement & { readonly p99Ms: number }> = []
    const rawWorkerOne: Array<Measurement & { readonly p99Ms: number }> = []
    for (let round = 0; round < options.rounds; round++) {
      rawBatch.push(await rawRun(`${fresh()}.db`, options.concurrent, 500))
      rawWorkerGroups.push(await rawWorkerGroupsRun(`${fresh()}.db`, options.concurrent, 256))
      concurrent.push(await libraryRun(fresh(), options.concurrent, 256))
      groups.push(await groupsRun(fresh(), options.concurrent, 500))
      rawOne.push(await rawRun(`${fresh()}.db`, options.oneAtATime, 1))
      rawWorkerOne.push(await rawWorkerRun(`${fresh()}.db`, options.oneAtATime))
      oneAtATime.push(await libraryRun(fresh(), options.oneAtATime, 1))
    }
    const shares = (runs: ReadonlyArray<Measurement>, baselines: ReadonlyArray<Measurement>) =>
      runs.map((r, i) => rate(r) / rate(baselines[i]!))
    const lines: Array<Line> = [
      { kind: "baseline", run: median(rawBatch) },
      {
        kind: "measured",
        run: median(rawWorkerGroups),
        baseline: median(rawBatch),
        runs: shares(rawWorkerGroups, rawBatch)
      },
      {
        kind: "measured",
        run: median(concurrent),
        baseline: median(rawBatch),
        target: 0.5,
        runs: shares(concurrent, rawBatch)
      },
      {
        kind: "measured",
        run: median(groups),
        baseline: median(rawBatch),
        target: 0.7,
        runs: shares(groups, rawBatch)
      },
      { kind: "baseline", run: median(rawOne) },
      { kind: "measured", run: median(rawWorkerOne), baseline: median(rawOne), runs: shares(rawWorkerOne, rawOne) },
      {
        kind: "measured",
        run: median(oneAtATime),
        baseline: median(rawOne),
        target: 0.2,
        runs: shares(oneAtATime, rawOne)
      }
    ]
    const ratesMet = printTable(
      `record. record() into the cache, 1 KiB records (median of ${options.rounds}, fresh file each)`,
      lines
    )
    const p99 = Math.max(...oneAtATime.map((r) => r.p99Ms))
    const latencyMet = printChecks([
      {
        figure: "record() one at a time: p99 latency (worst round)",
        value: `${p99.toFixed(3)} ms`,
        baseline: "",
        target: "<= 1 ms",
        pass: p99 <= 1
      },
      {
        figure: "floor (raw sqlite in a worker): p99 latency (worst round)",
        value: `${Math.max(...rawWorkerOne.map((r) => r.p99Ms)).toFixed(3)} ms`,
        baseline: "",
        target: ""
      }
    ])
    return ratesMet && latencyMet
  } finally {
    temp.remove()
  }
}
