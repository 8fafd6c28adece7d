/**
 * The least a cache on another thread costs when each caller waits for its own commit: a worker with
 * raw better-sqlite3 (the cache's layout and pragmas) and messages there and back, with no library
 * code. One record at a time, a round trip and a transaction per record; many callers at once,
 * their records handed over in groups (up to 500, two groups in flight), one transaction per group.
 * The `record` benchmark prints both next to `record()`.
 */
import { fileURLToPath } from "node:url"
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads"
import { openRaw, prepareInsert } from "./raw.js"
import type { BenchRecord, RecordSource } from "./records.js"

/** Starts this module as a worker on `filename` (from TypeScript through tsx's require hook, as the library does). */
const start = (filename: string): Worker => {
  if (!import.meta.url.endsWith(".ts")) return new Worker(new URL(import.meta.url), { workerData: filename })
  const script = JSON.stringify(fileURLToPath(import.meta.url))
  return new Worker(`require("tsx/cjs/api").register(); require(${script})`, { eval: true, workerData: filename })
}

/**
 * Inserts `count` records of `source` one at a time, each through a round trip to a worker that
 * commits it; returns each record's latency in milliseconds.
 */
export const insertOneAtATime = async (filename: string, source: RecordSource, count: number) => {
  const worker = start(filename)
  let answer: () => void = () => undefined
  worker.on("message", () => answer())
  const committed = () => new Promise<void>((resolve) => (answer = resolve))
  await committed()
  const latencies = new Float64Array(count)
  try {
    for (let i = 0; i < count; i++) {
      const started = performance.now()
      const record = source.at(i)
      const done = committed()
      worker.postMessage(record, [record.data.buffer as ArrayBuffer])
      await done
      latencies[i] = performance.now() - started
    }
    return latencies
  } finally {
    await worker.terminate()
  }
}

/** The most records in one group, and the most groups waiting in the worker at once. */
const maxGroup = 500
const maxGroupsInFlight = 2

/**
 * Inserts `count` records of `source` with `inFlight` callers at once, each waiting for its own
 * record's commit; records queued meanwhile go to the worker as one group (cloned).
 */
export const insertConcurrently = async (filename: string, source: RecordSource, count: number, inFlight: number) => {
  const worker = start(filename)
  await new Promise((ready) => worker.once("message", ready))
  let queued: Array<{ readonly record: BenchRecord; readonly committed: () => void }> = []
  let scheduled = false
  let groupsInFlight = 0
  const answers: Array<ReadonlyArray<() => void>> = []
  const send = () => {
    scheduled = false
    while (queued.length > 0 && groupsInFlight < maxGroupsInFlight) {
      const group = queued.slice(0, maxGroup)
      queued = queued.slice(group.length)
      answers.push(group.map((insert) => insert.committed))
      groupsInFlight++
      worker.postMessage(group.map((insert) => insert.record))
    }
  }
  worker.on("message", () => {
    groupsInFlight--
    for (const committed of answers.shift()!) committed()
    send()
  })
  const insert = (record: BenchRecord) =>
    new Promise<void>((committed) => {
      queued.push({ record, committed })
      if (!scheduled) {
        scheduled = true
        queueMicrotask(send)
      }
    })
  let next = 0
  try {
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < count) await insert(source.at(next++))
      })
    )
  } finally {
    await worker.terminate()
  }
}

if (!isMainThread) {
  const db = openRaw(workerData as string)
  const insert = prepareInsert(db)
  const insertGroup = db.transaction((records: ReadonlyArray<BenchRecord>) => {
    const now = Date.now()
    for (const record of records) insert(record, now)
  })
  const port = parentPort!
  port.on("message", (message: BenchRecord | ReadonlyArray<BenchRecord>) => {
    if (Array.isArray(message)) insertGroup(message)
    else insert(message as BenchRecord, Date.now())
    port.postMessage(0)
  })
  port.postMessage("ready")
}
