/**
 * When the client flushes its cache on its own.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"

/** Flush every `interval` while the client is enabled and open; the first flush comes one interval after start. */
export interface FlushInterval {
  readonly _tag: "FlushInterval"
  readonly interval: Duration.DurationInput
}

/** Never flush on a timer: only `flush()` sends records. */
export interface FlushNone {
  readonly _tag: "FlushNone"
}

/** How the client schedules its automatic flushes. */
export type FlushStrategy = FlushInterval | FlushNone

/**
 * Flush on a fixed interval.
 *
 * @example
 * FlushInterval({ interval: "30 seconds" })
 */
export const FlushInterval = Data.tagged<FlushInterval>("FlushInterval")

/** Manual flushes only. */
export const FlushNone = (): FlushStrategy => Data.tagged<FlushNone>("FlushNone")()

/** The default strategy: a flush every 30 seconds. */
export const defaultStrategy: FlushStrategy = FlushInterval({ interval: "30 seconds" })
