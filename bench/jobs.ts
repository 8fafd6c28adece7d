/**
 * Measured runs that each get a process of their own (jobProcess.ts), so that the peak RSS, the CPU
 * time and the event-loop delay they report are theirs alone. That process runs plain `node` on
 * JavaScript compiled from the sources once per benchmark run (a TypeScript loader would add its
 * own memory and threads to every figure). CPU time is `process.cpuUsage()`: user plus system time
 * of every thread of the process. Event-loop delay is `monitorEventLoopDelay` at a resolution of
 * 1 ms, sampled over the whole measured part, on the thread that calls the client. That thread's
 * busy time is the active time of `performance.eventLoopUtilization()` over the same part.
 */
import { execFileSync, fork } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { monitorEventLoopDelay, performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { waitDelivered } from "./ackServer.js"
import { openRaw, putRecords, rawDurableFlush, rawInsert, rawPutRecords, rawSdk } from "./raw.js"
import { kib, recordSource } from "./records.js"
import { tempDir } from "./report.js"

/** What one isolated run measured. */
export interface RunResult {
  readonly name: string
  /** Records delivered (or recorded, for a run that only records). */
  readonly records: number
  readonly seconds: number
  /** Seconds until the last record was recorded, when the run records and flushes. */
  readonly recordSeconds: number
  /** User + system CPU time of the whole process during the measured part, µs. */
  readonly cpuMicros: number
  /** The process's peak resident set size, bytes. */
  readonly peakRssBytes: number
  /** The resident set size when the measured part began, bytes. */
  readonly startRssBytes: number
  /** The resident set size when the measured part ended, bytes. */
  readonly endRssBytes: number
  readonly eventLoopMaxMs: number
  readonly eventLoopP99Ms: number
  /** How long the thread that calls the client was busy (event-loop utilisation, active time), ms. */
  readonly eluActiveMs: number
  /** The size of the files in the cache directory at the end, before closing, bytes. */
  readonly cacheBytes: number
}

/** A run to make in a process of its own. */
export type Job =
  /** Raw SDK `PutRecords`, 500 per call, one call at a time. */
  | { readonly kind: "rawSdk"; readonly endpoint: string; readonly stream: string; readonly count: number }
  /** By hand on one thread: better-sqlite3 500 per transaction, then the durable flush. */
  | { readonly kind: "rawDurable"; readonly endpoint: string; readonly stream: string; readonly count: number }
  /** The library: record with `inFlight` calls waiting, then `flush()` until empty. */
  | {
      readonly kind: "library"
      readonly endpoint: string
      readonly stream: string
      readonly count: number
      readonly inFlight: number
    }
  /**
   * Records `count` records of `dataBytes` at `perSecond`, each call on its own, while the records
   * are flushed every `intervalMs` (raw: one batch per tick by the SDK from memory; library: its
   * automatic flush), until every record is delivered.
   */
  | {
      readonly kind: "paced"
      readonly client: "rawSdk" | "library"
      readonly endpoint: string
      readonly stream: string
      readonly count: number
      readonly dataBytes: number
      readonly perSecond: number
      readonly intervalMs: number
    }
  /**
   * The library with its automatic flush (every `intervalMs`, `drain: true`): records with
   * `inFlight` calls waiting, until the server has acknowledged every record.
   */
  | {
      readonly kind: "autoFlush"
      readonly endpoint: string
      readonly stream: string
      readonly count: number
      readonly inFlight: number
      readonly intervalMs: number
      readonly requestsPerStream?: number
    }
  /**
   * A client at rest: it sends one record (the library: records it, then flushes), waits until it
   * is delivered, then `settleMs`; the RSS at the end is the figure.
   */
  | {
      readonly kind: "rest"
      readonly client: "rawSdk" | "library"
      readonly endpoint: string
      readonly stream: string
      readonly settleMs: number
    }

/** The part of a run that is measured, with its probes. */
const measure = async (
  name: string,
  cacheDir: string | undefined,
  work: (marks: { recorded: () => void }) => Promise<number>
): Promise<RunResult> => {
  const delay = monitorEventLoopDelay({ resolution: 1 })
  const startRssBytes = process.memoryUsage.rss()
  const cpu = process.cpuUsage()
  const elu = performance.eventLoopUtilization()
  const start = performance.now()
  let recordSeconds = 0
  delay.enable()
  const records = await work({ recorded: () => (recordSeconds = (performance.now() - start) / 1000) })
  const seconds = (performance.now() - start) / 1000
  delay.disable()
  const eluActiveMs = performance.eventLoopUtilization(elu).active
  const used = process.cpuUsage(cpu)
  const endRssBytes = process.memoryUsage.rss()
  const cacheBytes =
    cacheDir === undefined
      ? 0
      : fs
          .readdirSync(cacheDir, { recursive: true, withFileTypes: true })
          .reduce(
            (sum, entry) => (entry.isFile() ? sum + fs.statSync(path.join(entry.parentPath, entry.name)).size : sum),
            0
          )
  return {
    name,
    records,
    seconds,
    recordSeconds: recordSeconds || seconds,
    cpuMicros: used.user + used.system,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    startRssBytes,
    endRssBytes,
    eventLoopMaxMs: delay.max / 1e6,
    eventLoopP99Ms: delay.percentile(99) / 1e6,
    eluActiveMs,
    cacheBytes
  }
}

/** Warm-up records: another stream, so that they are not counted with the measured ones. */
const warmUp = (stream: string, dataBytes = kib) => recordSource(`${stream}-warm-up`, 2_000, dataBytes)

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Calls `issue(i)` for i = 0 … count-1 at `perSecond`, on a 1 ms timer, without waiting for one
 * call to finish before the next; resolves once every call has.
 */
const paced = async (count: number, perSecond: number, issue: (i: number) => Promise<void>) => {
  const start = performance.now()
  const calls: Array<Promise<void>> = []
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(count, Math.floor(((performance.now() - start) / 1000) * perSecond) + 1)
      while (calls.length < due) calls.push(issue(calls.length))
      if (calls.length >= count) {
        clearInterval(tick)
        resolve()
      }
    }, 1)
  })
  await Promise.all(calls)
}

/** Runs a job in this process. */
export const runJob = async (job: Job): Promise<RunResult> => {
  const temp = tempDir("effect-kinesis-bench-run-")
  try {
    switch (job.kind) {
      case "rawSdk": {
        const sdk = rawSdk(job.endpoint)
        try {
          await rawPutRecords(sdk, warmUp(job.stream))
          const source = recordSource(job.stream, job.count)
          return await measure("raw SDK PutRecords, 500 per call", undefined, async () => {
            await rawPutRecords(sdk, source)
            return source.count
          })
        } finally {
          sdk.destroy()
        }
      }
      case "rawDurable": {
        const sdk = rawSdk(job.endpoint)
        const db = openRaw(path.join(temp.dir, "cache.db"))
        try {
          const warm = warmUp(job.stream)
          rawInsert(db, warm, 500)
          await rawDurableFlush(db, sdk, warm.at(0).streamName)
          const source = recordSource(job.stream, job.count)
          return await measure("raw durable, one thread: better-sqlite3 + SDK", temp.dir, async (marks) => {
            rawInsert(db, source, 500)
            marks.recorded()
            return rawDurableFlush(db, sdk, job.stream)
          })
        } finally {
          db.close()
          sdk.destroy()
        }
      }
      case "library": {
        // The library is loaded by the runs that use it only: a baseline's process holds none of it.
        const { createClient, flushUntilEmpty, recordAll } = await import("./library.js")
        const client = await createClient(job.endpoint, temp.dir)
        try {
          await recordAll(client, warmUp(job.stream), job.inFlight)
          await flushUntilEmpty(client)
          const source = recordSource(job.stream, job.count)
          return await measure(
            `record (${job.inFlight} in flight), then flush until empty`,
            temp.dir,
            async (marks) => {
              await recordAll(client, source, job.inFlight)
              marks.recorded()
              return flushUntilEmpty(client)
            }
          )
        } finally {
          await client.close()
        }
      }
      case "paced":
        return job.client === "rawSdk" ? await pacedRaw(job) : await pacedLibrary(job, temp.dir)
      case "autoFlush":
        return await autoFlush(job, temp.dir)
      case "rest":
        return job.client === "rawSdk" ? await restRaw(job) : await restLibrary(job, temp.dir)
    }
  } finally {
    temp.remove()
  }
}

type PacedJob = Extract<Job, { kind: "paced" }>

const pacedName = (job: PacedJob, who: string) =>
  `${who}, ${job.perSecond.toLocaleString("en-US")}/s, flush every ${job.intervalMs} ms`

/** The baseline of a paced run: records kept in memory, one batch sent by the SDK per interval. */
const pacedRaw = async (job: PacedJob): Promise<RunResult> => {
  const sdk = rawSdk(job.endpoint)
  try {
    await rawPutRecords(sdk, warmUp(job.stream, job.dataBytes), 0, job.dataBytes > kib ? 20 : undefined)
    const source = recordSource(job.stream, job.count, job.dataBytes)
    return await measure(pacedName(job, "raw SDK from memory"), undefined, async (marks) => {
      const queue: Array<{ PartitionKey: string; Data: Uint8Array }> = []
      let sent = 0
      let sending = true
      const sender = (async () => {
        while (sending || queue.length > 0) {
          await sleep(job.intervalMs)
          let bytes = 0
          let taken = 0
          while (
            taken < Math.min(500, queue.length) &&
            (taken === 0 || bytes + queue[taken]!.Data.byteLength <= 10 * 1024 * 1024)
          ) {
            bytes += queue[taken]!.Data.byteLength
            taken++
          }
          if (taken === 0) continue
          await putRecords(sdk, job.stream, queue.splice(0, taken))
          sent += taken
        }
      })()
      await paced(job.count, job.perSecond, async (i) => {
        const record = source.at(i)
        queue.push({ PartitionKey: record.partitionKey, Data: record.data })
      })
      marks.recorded()
      sending = false
      await sender
      return sent
    })
  } finally {
    sdk.destroy()
  }
}

/** The library with its automatic flush, fed at a steady rate. */
const pacedLibrary = async (job: PacedJob, cacheDir: string): Promise<RunResult> => {
  const { createClient, flushUntilEmpty, recordAll, recordOne } = await import("./library.js")
  const { FlushInterval } = await import("../src/Promise.js")
  const client = await createClient(job.endpoint, cacheDir, {
    flushStrategy: FlushInterval({ interval: `${job.intervalMs} millis` })
  })
  try {
    const warm = warmUp(job.stream, job.dataBytes)
    await recordAll(client, warm, 64, 0, job.dataBytes > kib ? 20 : warm.count)
    await flushUntilEmpty(client)
    const source = recordSource(job.stream, job.count, job.dataBytes)
    return await measure(pacedName(job, "record() + automatic flush"), cacheDir, async (marks) => {
      await paced(job.count, job.perSecond, (i) => recordOne(client, source.at(i)))
      marks.recorded()
      // What the automatic flush has not sent yet
      await flushUntilEmpty(client)
      return job.count
    })
  } finally {
    await client.close()
  }
}

/** The library with its automatic flush and `drain: true`, until the server has every record. */
const autoFlush = async (job: Extract<Job, { kind: "autoFlush" }>, cacheDir: string): Promise<RunResult> => {
  const { createClient, recordAll } = await import("./library.js")
  const { FlushInterval } = await import("../src/Promise.js")
  const client = await createClient(job.endpoint, cacheDir, {
    flushStrategy: FlushInterval({ interval: `${job.intervalMs} millis` }),
    drain: true,
    ...(job.requestsPerStream === undefined ? {} : { requestsPerStream: job.requestsPerStream })
  })
  try {
    const warm = warmUp(job.stream)
    await recordAll(client, warm, job.inFlight)
    await waitDelivered(job.endpoint, warm.at(0).streamName, warm.count)
    const source = recordSource(job.stream, job.count)
    const options =
      job.requestsPerStream === undefined ? "default options" : `requestsPerStream ${job.requestsPerStream}`
    const name = `record (${job.inFlight} in flight), flush every ${job.intervalMs} ms, drain; ${options}`
    return await measure(name, cacheDir, async (marks) => {
      const delivered = waitDelivered(job.endpoint, job.stream, job.count)
      await recordAll(client, source, job.inFlight)
      marks.recorded()
      await delivered
      return job.count
    })
  } finally {
    await client.close()
  }
}

type RestJob = Extract<Job, { kind: "rest" }>

/** The baseline at rest: an SDK client that sent one record. */
const restRaw = async (job: RestJob): Promise<RunResult> => {
  const sdk = rawSdk(job.endpoint)
  try {
    return await measure("raw SDK client, one record sent", undefined, async () => {
      const record = recordSource(job.stream, 1).at(0)
      await putRecords(sdk, job.stream, [{ PartitionKey: record.partitionKey, Data: record.data }])
      await sleep(job.settleMs)
      return 1
    })
  } finally {
    sdk.destroy()
  }
}

/** An open client of the library that recorded one record and delivered it. */
const restLibrary = async (job: RestJob, cacheDir: string): Promise<RunResult> => {
  const { createClient, flushUntilEmpty, recordOne } = await import("./library.js")
  const client = await createClient(job.endpoint, cacheDir)
  try {
    return await measure("open client, one record recorded and delivered", cacheDir, async () => {
      await recordOne(client, recordSource(job.stream, 1).at(0))
      await flushUntilEmpty(client)
      await waitDelivered(job.endpoint, job.stream, 1)
      await sleep(job.settleMs)
      return 1
    })
  } finally {
    await client.close()
  }
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
let compiled: string | undefined

/**
 * Compiles the library's sources and the benchmarks to JavaScript (no type check) under
 * `node_modules/.cache/`, once; returns the compiled jobProcess.js.
 */
const compileJobProcess = (): string => {
  if (compiled !== undefined) return compiled
  const outDir = path.join(root, "node_modules", ".cache", "effect-kinesis-bench")
  fs.rmSync(outDir, { recursive: true, force: true })
  const files = ["src", "bench"].flatMap((dir) =>
    fs
      .readdirSync(path.join(root, dir), { recursive: true, encoding: "utf8" })
      .filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))
      .map((file) => path.join(root, dir, file))
  )
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
  execFileSync(
    process.execPath,
    [
      tsc,
      ...["--noCheck", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022"],
      ...["--esModuleInterop", "--skipLibCheck", "--types", "node", "--rootDir", root, "--outDir", outDir],
      ...files
    ],
    { stdio: "inherit" }
  )
  // Under node_modules/ the package.json of the project no longer applies: these are ES modules.
  fs.writeFileSync(path.join(outDir, "package.json"), '{ "type": "module" }\n')
  compiled = path.join(outDir, "bench", "jobProcess.js")
  return compiled
}

/** A run to a server that counts what it received: what it measured, and the records lost or sent twice. */
export type CountedRun = RunResult & { readonly lost: number; readonly duplicates: number }

/**
 * Runs `job` isolated (see `runIsolated`) and asks the server how many of its `job.count` records
 * arrived: `lost` the records never received, `duplicates` the extra copies.
 */
export const runCounted = async (
  job: Extract<Job, { readonly stream: string; readonly count: number }>,
  count: (stream: string) => Promise<{ readonly distinct: number; readonly acknowledged: number }>
): Promise<CountedRun> => {
  const result = await runIsolated(job)
  const received = await count(job.stream)
  return { ...result, lost: job.count - received.distinct, duplicates: received.acknowledged - received.distinct }
}

/** Runs a job in a child process of its own (plain `node`, compiled sources) and returns what it measured. */
export const runIsolated = (job: Job): Promise<RunResult> => {
  const child = fork(compileJobProcess(), [JSON.stringify(job)], {
    execArgv: [],
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  return new Promise((resolve, reject) => {
    let result: RunResult | undefined
    child.on("message", (message: RunResult) => {
      result = message
    })
    child.once("error", reject)
    child.once("exit", (code) =>
      result !== undefined && code === 0
        ? resolve(result)
        : reject(new Error(`${job.kind} run exited with code ${code}`))
    )
  })
}
