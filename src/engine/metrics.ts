/**
 * The engine's metrics, by name. The engine updates them through `telemetry.update`; behind a port
 * the updates cross to the caller's thread and are applied there, to the same metrics, so that
 * they reach the application's registry under these names wherever the engine runs.
 *
 * @internal
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

/** Every metric the engine updates. */
export const engineMetrics = {
  effect_kinesis_records_delivered: Metric.counter("effect_kinesis_records_delivered", {
    description: "Records Kinesis accepted",
    incremental: true
  }),
  effect_kinesis_failed_attempts: Metric.counter("effect_kinesis_failed_attempts", {
    description: "Failed attempts charged to cached records",
    incremental: true
  }),
  effect_kinesis_records_dropped: Metric.counter("effect_kinesis_records_dropped", {
    description: "Records dropped after their last allowed attempt",
    incremental: true
  }),
  effect_kinesis_records_expired: Metric.counter("effect_kinesis_records_expired", {
    description: "Records deleted unsent after recordTtl",
    incremental: true
  }),
  effect_kinesis_records_throttled: Metric.counter("effect_kinesis_records_throttled", {
    description: "Records refused by throttling or a passing service failure",
    incremental: true
  }),
  effect_kinesis_batches_split: Metric.counter("effect_kinesis_batches_split", {
    description: "Requests refused for their content and split in two halves",
    incremental: true
  }),
  effect_kinesis_backoff_wait_ms: Metric.histogram(
    "effect_kinesis_backoff_wait_ms",
    MetricBoundaries.exponential({ start: 1000, factor: 2, count: 12 }),
    "Waits before an automatic flush after troubled ones, in milliseconds"
  )
} as const

/** The name of an engine metric. */
export type EngineMetric = keyof typeof engineMetrics

/** Whether a name that crossed is one of the engine's metrics. */
export const isEngineMetric = (name: string): name is EngineMetric => Object.hasOwn(engineMetrics, name)
