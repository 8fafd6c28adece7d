/**
 * Numbers as the command line prints them: counts with thousands separators, sizes in KiB / MiB,
 * rates per second.
 *
 * @since 0.1.0
 */

/** `12,345`. */
export const count = (n: number): string => n.toLocaleString("en-US")

/** `"1 line"`, `"2 lines"`. */
export const plural = (n: number, one: string, many: string): string => `${count(n)} ${n === 1 ? one : many}`

/** `512 B`, `3.2 KiB`, `1.5 MiB`, `2.0 GiB`. */
export const bytes = (n: number): string => {
  if (n < 1024) return `${n} B`
  const units = ["KiB", "MiB", "GiB"]
  let value = n / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return `${value.toFixed(1)} ${units[unit]}`
}

/** Records per second over `millis`, rounded: `3,125/s`. */
export const rate = (records: number, millis: number): string =>
  `${count(millis > 0 ? Math.round((records * 1000) / millis) : 0)}/s`

/** `4.2s`. */
export const seconds = (millis: number): string => `${(millis / 1000).toFixed(1)}s`

/** A time span the way people say it: `12.3s`, `4m 5s`, `3h 20m`, `2d 5h`. */
export const age = (millis: number): string => {
  const seconds = Math.floor(millis / 1000)
  if (seconds < 60) return `${(millis / 1000).toFixed(1)}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`
  return `${Math.floor(seconds / 86_400)}d ${Math.floor((seconds % 86_400) / 3600)}h`
}
