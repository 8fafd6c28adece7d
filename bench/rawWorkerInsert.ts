/**
 * The least a cache on another thread costs per record when each caller waits for its own commit:
 * a worker with raw better-sqlite3 (the cache's layout and pragmas, one insert per transaction)
 * and one message there and back per record. No library code runs here; the `record` benchmark
 * prints it next to `record()` one at a time.
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

if (!isMainThread) {
  const db = openRaw(workerData as string)
  const insert = prepareInsert(db)
  const port = parentPort!
  port.on("message", (record: BenchRecord) => {
    insert(record, Date.now())
    port.postMessage(0)
  })
  port.postMessage("ready")
}
