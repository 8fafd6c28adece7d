/**
 * Progress on stderr: on a terminal, one status line redrawn in place a few times a second; anywhere
 * else (a log file, a pipe), the same line printed now and then. Notes go on lines of their own above
 * it. Nothing is ever written to stdout.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Format from "./Format.js"

/** How often a terminal's status line is redrawn. */
const terminalRefresh = Duration.millis(250)

/** Where the status line goes: stderr, or a stand-in with the same shape. */
export interface Output {
  readonly isTTY?: boolean | undefined
  readonly columns?: number | undefined
  readonly write: (text: string) => unknown
}

/** A running status line. */
export interface StatusLine {
  /** Prints `message` on a line of its own; on a terminal the status line comes back below it. */
  readonly note: (message: string) => Effect.Effect<void>
  /** Stops showing the line (a terminal's is erased), so a summary can follow. Closing the scope does the same. */
  readonly stop: Effect.Effect<void>
}

const clearLine = "\r\x1b[2K"

/** How far back `recentRate` looks. */
const rateWindowMillis = 5000

/**
 * A rate over the last five seconds: give it the time and a running count at each redraw, and it
 * gives the count's growth per second since the oldest sample within the window (`1,234/s`).
 */
export const recentRate = (): ((millis: number, total: number) => string) => {
  const samples: Array<{ readonly millis: number; readonly total: number }> = []
  return (millis, total) => {
    samples.push({ millis, total })
    while (samples.length > 2 && samples[1]!.millis <= millis - rateWindowMillis) samples.shift()
    const oldest = samples[0]!
    return samples.length < 2 ? Format.rate(total, millis) : Format.rate(total - oldest.total, millis - oldest.millis)
  }
}

/** Prints `message` on a line of its own above a terminal's status line, or as a plain line. */
export const note = (output: Output, message: string): void => {
  output.write(output.isTTY ? `${clearLine}${message}\n` : `${message}\n`)
}

/**
 * Shows `render`'s line until the scope closes: redrawn every `terminalRefresh` on a terminal,
 * printed every `every` otherwise, until `stop` or the end of the scope.
 */
export const start = (
  output: Output,
  render: Effect.Effect<string>,
  every: Duration.Duration
): Effect.Effect<StatusLine, never, Scope.Scope> =>
  Effect.gen(function* () {
    const tty = output.isTTY === true
    const draw = Effect.flatMap(render, (line) =>
      Effect.sync(() => {
        if (!tty) return output.write(`${line}\n`)
        const width = output.columns ?? 0
        return output.write(`${clearLine}${width > 1 && line.length >= width ? line.slice(0, width - 1) : line}`)
      })
    )
    const fiber = yield* draw.pipe(Effect.schedule(Schedule.spaced(tty ? terminalRefresh : every)), Effect.forkScoped)
    const stop = yield* Effect.once(
      Effect.zipRight(Fiber.interrupt(fiber), tty ? Effect.sync(() => output.write(clearLine)) : Effect.void)
    )
    yield* Effect.addFinalizer(() => stop)
    return { note: (message) => Effect.sync(() => note(output, message)), stop }
  })
