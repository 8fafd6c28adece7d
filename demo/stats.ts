/**
 * What the demo has seen so far, shared by the recorder, the flusher and the progress line.
 */

export type Phase = "online" | "offline" | "draining" | "reading back"

export interface Stats {
  phase: Phase
  /** `record()` calls that returned Ok: the records the client now owns. */
  recorded: number
  /** `record()` calls that returned an error (none are expected in this demo). */
  refused: number
  /** Records the service accepted, summed over the flushes' `recordsFlushed`. */
  delivered: number
  flushes: number
  failedFlushes: number
  /** The `_tag` of the last flush error. */
  lastError: string | undefined
  /** The most records the cache held at once. */
  peakCached: number
  /** When the outage began and ended (ms since start). */
  offlineFrom: number | undefined
  offlineTo: number | undefined
}

export const makeStats = (): Stats => ({
  phase: "online",
  recorded: 0,
  refused: 0,
  delivered: 0,
  flushes: 0,
  failedFlushes: 0,
  lastError: undefined,
  peakCached: 0,
  offlineFrom: undefined,
  offlineTo: undefined
})

/** Records in the client's cache: owned but not yet delivered (the service never rejects records here). */
export const cached = (stats: Stats): number => stats.recorded - stats.delivered

export const notePeak = (stats: Stats): void => {
  stats.peakCached = Math.max(stats.peakCached, cached(stats))
}
