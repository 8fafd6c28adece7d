/**
 * When the client flushes its cache on its own.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"

/**
 * Flush every `interval` while the client is enabled and open; the first flush comes one interval
 * after start. After `k` troubled flushes in a row (throttling, 5xx, no response), the next one waits
 * a random time between half and all of `min(maxBackoff, interval * 2^k)`, never less than
 * `interval`. A `maxBackoff` not longer than `interval` turns backoff off.
 */
export interface FlushInterval {
  readonly _tag: "FlushInterval"
  readonly interval: Duration.DurationInput
  /** The longest wait after trouble. Default 5 minutes. */
  readonly maxBackoff?: Duration.DurationInput
}

/** Never flush on a timer: only `flush()` sends records. */
export interface FlushNone {
  readonly _tag: "FlushNone"
}

/** How the client schedules its automatic flushes. */
export type FlushStrategy = FlushInterval | FlushNone

/**
 * Flush on a fixed interval, backing off after trouble.
 *
 * @example
 * FlushInterval({ interval: "30 seconds" })
 * FlushInterval({ interval: "30 seconds", maxBackoff: "10 minutes" })
 */
export const FlushInterval = Data.tagged<FlushInterval>("FlushInterval")

/** Manual flushes only. */
export const FlushNone = (): FlushStrategy => Data.tagged<FlushNone>("FlushNone")()

/** The default flush interval: 30 seconds. */
export const defaultInterval: Duration.DurationInput = "30 seconds"

/** The default strategy: a flush every 30 seconds. */
export const defaultStrategy: FlushStrategy = FlushInterval({ interval: defaultInterval })

/** The default longest wait after trouble: 5 minutes. */
export const defaultMaxBackoff: Duration.DurationInput = "5 minutes"
