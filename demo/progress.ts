/**
 * The live progress display: one line rewritten in place on a terminal, a plain line every second
 * otherwise (CI logs, pipes).
 */
import { cached, type Stats } from "./stats.js"

export const count = (n: number): string => n.toLocaleString("en-US")

/** "1 flush", "2 flushes". */
export const plural = (n: number, one: string, many: string): string => `${count(n)} ${n === 1 ? one : many}`

export const seconds = (millis: number): string => `${(millis / 1000).toFixed(1)} s`

const line = (stats: Stats, total: number, elapsedMillis: number): string =>
  [
    `${stats.phase.padEnd(12)}`,
    `recorded ${count(stats.recorded).padStart(6)}/${count(total)}`,
    `delivered ${count(stats.delivered).padStart(6)}`,
    `cached ${count(cached(stats)).padStart(6)}`,
    `flushes ${count(stats.flushes)}${stats.failedFlushes > 0 ? ` (${count(stats.failedFlushes)} failed)` : ""}`,
    seconds(elapsedMillis)
  ].join("  ")

export interface Progress {
  /** Prints a message on a line of its own, above the progress line. */
  readonly note: (message: string) => void
  /** Draws the progress line one last time and stops. */
  readonly finish: () => void
}

export const startProgress = (
  stats: Stats,
  total: number,
  startedAt: number,
  out: NodeJS.WriteStream = process.stdout
): Progress => {
  const tty = out.isTTY === true
  const render = () => line(stats, total, performance.now() - startedAt)
  const draw = tty ? () => out.write(`\r\x1b[2K${render()}`) : () => out.write(`${render()}\n`)
  const timer = setInterval(draw, tty ? 100 : 1000)
  timer.unref()
  return {
    note: (message) => out.write(tty ? `\r\x1b[2K${message}\n${render()}` : `${message}\n`),
    finish: () => {
      clearInterval(timer)
      out.write(tty ? `\r\x1b[2K${render()}\n` : `${render()}\n`)
    }
  }
}
