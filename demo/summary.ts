/**
 * Compares what the client acknowledged with what the stream holds, and prints the result.
 */

import { count, plural, seconds } from "./progress.js"
import type { Stats } from "./stats.js"
import type { ReadRecord } from "./target.js"

export interface Summary {
  readonly recorded: number
  readonly refused: number
  /** Distinct acknowledged events found in the stream. */
  readonly delivered: number
  /** Extra copies of events found in the stream (at-least-once delivery). */
  readonly duplicates: number
  /** Acknowledged events missing from the stream. */
  readonly lost: number
  readonly elapsedMillis: number
}

/**
 * `acknowledged[id]` is true for every event whose `record()` returned Ok. Records of other runs
 * (a stream the demo does not own) are ignored.
 */
export const summarize = (
  runId: string,
  acknowledged: ReadonlyArray<boolean>,
  stream: ReadonlyArray<ReadRecord>,
  stats: Stats,
  elapsedMillis: number
): Summary => {
  const decoder = new TextDecoder()
  const copies = new Map<number, number>()
  for (const record of stream) {
    const event = JSON.parse(decoder.decode(record.data)) as { run?: string; id?: number }
    if (event.run === runId && typeof event.id === "number") copies.set(event.id, (copies.get(event.id) ?? 0) + 1)
  }
  let delivered = 0
  let duplicates = 0
  let lost = 0
  acknowledged.forEach((acked, id) => {
    const seen = copies.get(id) ?? 0
    if (acked && seen === 0) lost++
    if (seen > 0) delivered++
    duplicates += Math.max(0, seen - 1)
  })
  return { recorded: stats.recorded, refused: stats.refused, delivered, duplicates, lost, elapsedMillis }
}

export const printSummary = (summary: Summary, stats: Stats, out: NodeJS.WriteStream = process.stdout): void => {
  const offline =
    stats.offlineFrom !== undefined && stats.offlineTo !== undefined
      ? `${seconds(stats.offlineTo - stats.offlineFrom)}; ${plural(stats.failedFlushes, "flush", "flushes")} failed ` +
        `(${stats.lastError ?? "no error"}); the cache peaked at ${plural(stats.peakCached, "record", "records")}`
      : "no outage"
  const rows: ReadonlyArray<readonly [string, string]> = [
    ["recorded", `${count(summary.recorded)} events acknowledged by record(), ${count(summary.refused)} refused`],
    ["delivered", `${count(summary.delivered)} distinct events read back from the stream`],
    ["duplicates", `${count(summary.duplicates)} extra copies (at-least-once delivery; dedupe on the event id)`],
    ["lost", count(summary.lost)],
    ["offline", offline],
    ["time", seconds(summary.elapsedMillis)]
  ]
  out.write("\nSummary\n")
  for (const [name, value] of rows) out.write(`  ${name.padEnd(11)} ${value}\n`)
}
