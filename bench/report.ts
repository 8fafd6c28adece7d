/**
 * The shared part of the benchmarks: timing, the records they send, and the result table.
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { ValidRecord } from "../src/RecordInput.js"

/** One measured run: how many records in how many seconds. */
export interface Measurement {
  readonly name: string
  readonly records: number
  readonly seconds: number
}

/**
 * A line of the table: a baseline, or a measurement with its baseline and, unless it is there for
 * comparison only, its target (a fraction of the baseline).
 */
export type Line =
  | { readonly kind: "baseline"; readonly run: Measurement }
  | { readonly kind: "measured"; readonly run: Measurement; readonly baseline: Measurement; readonly target?: number }

/** Records per second of a run. */
export const rate = (run: Measurement): number => run.records / run.seconds

/** Times an async piece of work that handles `records` records. */
export const timed = async (name: string, records: number, work: () => Promise<void>): Promise<Measurement> => {
  const start = performance.now()
  await work()
  return { name, records, seconds: (performance.now() - start) / 1000 }
}

/** The run in the middle, by rate, of an odd number of runs of the same measurement. */
export const median = (runs: ReadonlyArray<Measurement>): Measurement =>
  [...runs].sort((a, b) => rate(a) - rate(b))[Math.floor(runs.length / 2)]!

/** The faster of several runs of the same measurement. */
export const best = (runs: ReadonlyArray<Measurement>): Measurement =>
  runs.reduce((a, b) => (rate(b) > rate(a) ? b : a))

/** The size of every benchmark record's data: 1 KiB. */
export const dataBytes = 1024

/** `count` records of 1 KiB of data for one stream, with a few distinct payloads and 1,000 partition keys. */
export const makeRecords = (count: number, streamName: string): ReadonlyArray<ValidRecord> => {
  const payloads = Array.from({ length: 16 }, () => new Uint8Array(randomBytes(dataBytes)))
  return Array.from({ length: count }, (_, i) => {
    const partitionKey = `key-${i % 1000}`
    return { streamName, partitionKey, data: payloads[i % payloads.length]!, size: dataBytes + partitionKey.length }
  })
}

/** Splits records into `PutRecords`-sized batches of at most 500. */
export const batches = <A>(items: ReadonlyArray<A>, size = 500): ReadonlyArray<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size))

/** A temporary directory, deleted by the returned function. */
export const tempDir = (prefix: string): { readonly dir: string; readonly remove: () => void } => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

const pad = (text: string, width: number, right = false) => (right ? text.padStart(width) : text.padEnd(width))

const formatRate = (value: number) => Math.round(value).toLocaleString("en-US")

/** Prints a table: name, records, seconds, records/s, % of baseline, target, pass/fail. Returns whether every target was met. */
export const printTable = (title: string, lines: ReadonlyArray<Line>): boolean => {
  const rows = lines.map((line) => {
    const { run } = line
    const common = [run.name, run.records.toLocaleString("en-US"), run.seconds.toFixed(3), formatRate(rate(run))]
    if (line.kind === "baseline") return [...common, "baseline", "", ""]
    const share = rate(run) / rate(line.baseline)
    const percent = `${(share * 100).toFixed(0)}%`
    if (line.target === undefined) return [...common, percent, "", ""]
    return [...common, percent, `>= ${(line.target * 100).toFixed(0)}%`, share >= line.target ? "pass" : "FAIL"]
  })
  const header = ["name", "records", "seconds", "records/s", "% of baseline", "target", "result"]
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const format = (row: ReadonlyArray<string>) => row.map((cell, i) => pad(cell, widths[i]!, i > 0 && i < 6)).join("  ")
  console.log(`\n${title}`)
  console.log(format(header))
  console.log(widths.map((w) => "-".repeat(w)).join("  "))
  for (const row of rows) console.log(format(row))
  return lines.every(
    (line) =>
      line.kind === "baseline" || line.target === undefined || rate(line.run) / rate(line.baseline) >= line.target
  )
}
