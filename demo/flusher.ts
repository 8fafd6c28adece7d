/**
 * Manual flushes, spaced like `FlushInterval` does it (each one an interval after the previous one
 * ended). The demo flushes by hand, with `FlushNone`, so that it sees every outcome: automatic flushes
 * report failures only to the log.
 */
import type { AmplifyKinesisClient, FlushData, Result } from "../src/Promise.js"
import { notePeak, type Stats } from "./stats.js"

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/** One flush, counted. */
export const flushOnce = async (client: AmplifyKinesisClient, stats: Stats): Promise<Result<FlushData>> => {
  const result = await client.flush()
  stats.flushes++
  if (result._tag === "Ok") {
    stats.delivered += result.value.recordsFlushed
  } else {
    stats.failedFlushes++
    stats.lastError = result.error._tag
  }
  notePeak(stats)
  return result
}

/** Flushes every `intervalMillis` until stopped; `stop` waits for the flush in progress. */
export const startFlushing = (client: AmplifyKinesisClient, stats: Stats, intervalMillis: number) => {
  let running = true
  const loop = (async () => {
    while (running) {
      await flushOnce(client, stats)
      await sleep(intervalMillis)
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
    }
  }
}

/**
 * Flushes until a flush leaves the cache empty. Each flush sends at most one batch (500 records) per
 * stream, so a large backlog takes several. Gives up after `timeoutMillis`.
 */
export const drain = async (client: AmplifyKinesisClient, stats: Stats, timeoutMillis: number): Promise<boolean> => {
  const deadline = Date.now() + timeoutMillis
  while (Date.now() < deadline) {
    const result = await flushOnce(client, stats)
    if (result._tag === "Ok" && !result.value.flushInProgress && result.value.recordsRemaining === 0) return true
    if (result._tag === "Error") await sleep(200)
  }
  return false
}
