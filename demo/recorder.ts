/**
 * Records the demo's events through the Promise facade at a steady rate, and runs hooks when the
 * recording reaches given points (the outage starts and ends there).
 */
import type { AmplifyKinesisClient, RecordInput } from "../src/Promise.js"
import { notePeak, type Stats } from "./stats.js"

const encoder = new TextEncoder()

/** A small JSON event. Its `id` is what a consumer deduplicates on. */
export const makeEvent = (runId: string, id: number, streamName: string): RecordInput => ({
  streamName,
  partitionKey: `user-${id % 100}`,
  data: encoder.encode(
    JSON.stringify({ run: runId, id, type: "page_view", page: `/articles/${id % 37}`, at: Date.now() })
  )
})

export interface RecordingPlan {
  readonly runId: string
  readonly streamName: string
  readonly total: number
  readonly perSecond: number
  /** Called once when this many events have been recorded. */
  readonly milestones: ReadonlyArray<{ readonly at: number; readonly run: () => Promise<void> }>
}

const tickMillis = 20

/**
 * Records `total` events, `perSecond` of them a second, each tick's events concurrently (the cache
 * commits concurrent records together). Returns, per event id, whether `record()` acknowledged it.
 */
export const recordEvents = async (
  client: AmplifyKinesisClient,
  plan: RecordingPlan,
  stats: Stats
): Promise<ReadonlyArray<boolean>> => {
  const acknowledged = new Array<boolean>(plan.total).fill(false)
  const perTick = Math.max(1, Math.round((plan.perSecond * tickMillis) / 1000))
  const pending = [...plan.milestones].sort((a, b) => a.at - b.at)
  const startedAt = performance.now()
  for (let next = 0; next < plan.total; ) {
    const ids = Array.from({ length: Math.min(perTick, plan.total - next) }, (_, i) => next + i)
    const results = await Promise.all(ids.map((id) => client.record(makeEvent(plan.runId, id, plan.streamName))))
    results.forEach((result, i) => {
      if (result._tag === "Ok") {
        acknowledged[ids[i]!] = true
        stats.recorded++
      } else {
        stats.refused++
        stats.lastError = result.error._tag
      }
    })
    notePeak(stats)
    next += ids.length
    while (pending.length > 0 && pending[0]!.at <= next) await pending.shift()!.run()
    const due = startedAt + (next / plan.perSecond) * 1000
    const wait = due - performance.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
  }
  return acknowledged
}
