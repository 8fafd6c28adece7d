/**
 * The shared part of the benchmarks: timing, run sizes, and the result tables.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/** One measured run: how many records in how many seconds. */
export interface Measurement {
  readonly name: string
  readonly records: number
  readonly seconds: number
}

/**
 * A line of the table: a baseline, or a measurement with its baseline and, unless it is there for
 * comparison only, its target (a fraction of the baseline). `runs` are the shares of every round,
 * shown as a range.
 */
export type Line =
  | { readonly kind: "baseline"; readonly run: Measurement }
  | {
      readonly kind: "measured"
      readonly run: Measurement
      readonly baseline: Measurement
      readonly target?: number
      readonly runs?: ReadonlyArray<number>
    }

/** `BENCH_QUICK=1`: smaller runs and one round each, to check that the benchmarks work. */
export const quick = process.env.BENCH_QUICK === "1"

/** Records per second of a run. */
export const rate = (run: Measurement): number => run.records / run.seconds

/** Times an async piece of work that handles `records` records. */
export const timed = async (name: string, records: number, work: () => Promise<void> | void): Promise<Measurement> => {
  const start = performance.now()
  await work()
  return { name, records, seconds: (performance.now() - start) / 1000 }
}

/** The run in the middle, by rate, of the runs of one measurement (the slower middle of an even number). */
export const median = <A extends Measurement>(runs: ReadonlyArray<A>): A =>
  [...runs].sort((a, b) => rate(a) - rate(b))[Math.floor((runs.length - 1) / 2)]!

/** The middle of some numbers (the lower middle of an even number). */
export const middle = (values: ReadonlyArray<number>): number =>
  [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!

/** The value at `fraction` (0.99 for p99) of sorted `values`. */
export const percentile = (sorted: ArrayLike<number>, fraction: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!

/** A temporary directory, deleted by the returned function. */
export const tempDir = (prefix: string): { readonly dir: string; readonly remove: () => void } => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

const formatRate = (value: number) => Math.round(value).toLocaleString("en-US")

/** A share as a percentage, e.g. 0.345 → "35%". */
export const percent = (share: number) => `${(share * 100).toFixed(0)}%`

/** The range of some shares, e.g. "31-36%", or the one share. */
export const shareRange = (shares: ReadonlyArray<number>) => {
  const low = Math.min(...shares)
  const high = Math.max(...shares)
  return shares.length < 2 || percent(low) === percent(high)
    ? percent(low)
    : `${(low * 100).toFixed(0)}-${percent(high)}`
}

/** Mebibytes, e.g. "97 MiB". */
export const mebibytes = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(0)} MiB`

/** Prints rows under a header, columns aligned (text left, numbers right). */
export const printRows = (title: string, header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)))
  const numeric = (cell: string) => /^[\d.,<>= x%+-]+( ms| µs| s| MiB| MB)?$/.test(cell) && cell.trim() !== ""
  const format = (row: ReadonlyArray<string>) =>
    row
      .map((cell, i) => (i > 0 && numeric(cell) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd()
  console.log(title === "" ? "" : `\n${title}`)
  console.log(format(header))
  console.log(widths.map((w) => "-".repeat(w)).join("  "))
  for (const row of rows) console.log(format(row))
}

/**
 * Prints a table: name, records, seconds, records/s, % of baseline (and its range over the rounds),
 * target, result. Returns whether every target was met.
 */
export const printTable = (title: string, lines: ReadonlyArray<Line>): boolean => {
  const rows = lines.map((line) => {
    const { run } = line
    const common = [run.name, run.records.toLocaleString("en-US"), run.seconds.toFixed(3), formatRate(rate(run))]
    if (line.kind === "baseline") return [...common, "baseline", "", "", ""]
    const share = rate(run) / rate(line.baseline)
    const range = line.runs && line.runs.length > 1 ? shareRange(line.runs) : ""
    if (line.target === undefined) return [...common, percent(share), range, "", ""]
    return [...common, percent(share), range, `>= ${percent(line.target)}`, share >= line.target ? "pass" : "MISS"]
  })
  printRows(title, ["name", "records", "seconds", "records/s", "% of baseline", "range", "target", "result"], rows)
  return lines.every(
    (line) =>
      line.kind === "baseline" || line.target === undefined || rate(line.run) / rate(line.baseline) >= line.target
  )
}

/** A figure, checked against its target when it has one (`pass` set). */
export interface Check {
  readonly figure: string
  readonly value: string
  readonly baseline: string
  readonly target: string
  readonly pass?: boolean
}

/** Prints figures: figure, value, baseline, target, result. Returns whether every checked one passed. */
export const printChecks = (checks: ReadonlyArray<Check>, title = ""): boolean => {
  const result = (check: Check) => (check.pass === undefined ? "" : check.pass ? "pass" : "MISS")
  printRows(
    title,
    ["figure", "value", "baseline", "target", "result"],
    checks.map((check) => [check.figure, check.value, check.baseline, check.target, result(check)])
  )
  return checks.every((check) => check.pass !== false)
}
