/**
 * What the service's answer to one batch comes to: what the cache is to do, what the flush counts,
 * and whether the answer is trouble (a reason for the automatic flush to back off).
 *
 * With `countThrottling: false` the transient outcomes (throttling, `InternalFailure`, 5xx) charge
 * nothing: such records are spared in an `Answered` batch, and a request refused that way leaves the
 * cache as it is, as no response does.
 *
 * @internal
 */

import type { BatchAnswer, StoredRecord } from "../cache/RecordStorage.js"
import { type EntryResult, isTransientError, isTransientResult, type ServiceError } from "../send/RecordSender.js"

/** What one answered request comes to. */
export interface BatchOutcome {
  /** What the cache is told; undefined when nothing in it changes. */
  readonly answer: BatchAnswer | undefined
  /** Records the service accepted. */
  readonly accepted: number
  /** Records it did not accept, charged or not. */
  readonly failed: number
  /** Records charged a failed attempt. */
  readonly charged: number
  /** Records refused with a transient outcome, charged or not. */
  readonly throttled: number
  /** Whether the answer was a transient one: a throttling or 5xx answer, or a transient record refusal. */
  readonly troubled: boolean
}

const rangeOf = (records: ReadonlyArray<StoredRecord>) => ({
  streamName: records[0]!.streamName,
  firstId: records[0]!.id,
  lastId: records[records.length - 1]!.id
})

/** The outcome of a batch the service answered record by record (`results` in request order). */
export const fromResults = (
  records: ReadonlyArray<StoredRecord>,
  results: ReadonlyArray<EntryResult>,
  countThrottling: boolean
): BatchOutcome => {
  const rejected: Array<number> = []
  const spared: Array<number> = []
  let throttled = 0
  results.forEach((result, i) => {
    if (result._tag === "Accepted") return
    const transient = isTransientResult(result)
    if (transient) throttled++
    ;(transient && !countThrottling ? spared : rejected).push(records[i]!.id)
  })
  const failed = rejected.length + spared.length
  return {
    answer: { _tag: "Answered", ...rangeOf(records), rejected, spared },
    accepted: records.length - failed,
    failed,
    charged: rejected.length,
    throttled,
    troubled: throttled > 0
  }
}

/** The outcome of a batch the service refused as a whole. */
export const fromError = (
  records: ReadonlyArray<StoredRecord>,
  error: ServiceError,
  countThrottling: boolean
): BatchOutcome => {
  const transient = isTransientError(error)
  const charged = !transient || countThrottling
  return {
    answer: charged ? { _tag: "Refused", ...rangeOf(records) } : undefined,
    accepted: 0,
    failed: records.length,
    charged: charged ? records.length : 0,
    throttled: transient ? records.length : 0,
    troubled: transient
  }
}
