/**
 * Durations as the command line writes them: a number and a unit, `500ms`, `2s`, `1m`, `1h`.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"

const pattern = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/

const millisPerUnit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** The duration `text` writes, if it is a number followed by `ms`, `s`, `m` or `h` and is 1 ms or more. */
export const parse = (text: string): Option.Option<Duration.Duration> => {
  const match = pattern.exec(text.trim())
  if (!match) return Option.none()
  const millis = Number(match[1]) * millisPerUnit[match[2]!]!
  return millis >= 1 ? Option.some(Duration.millis(millis)) : Option.none()
}

/** A duration the way `parse` reads it: `1.5s`, `250ms`, `2m`. */
export const format = (duration: Duration.Duration): string => {
  const millis = Duration.toMillis(duration)
  if (millis < 1000) return `${Math.round(millis)}ms`
  if (millis < 60_000) return `${Number((millis / 1000).toFixed(1))}s`
  return `${Number((millis / 60_000).toFixed(1))}m`
}
