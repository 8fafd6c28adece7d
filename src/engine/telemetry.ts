/**
 * What the engine reports besides its answers, gathered for the caller's thread: its log lines (a
 * logger that keeps them), its finished spans (a tracer that records them with their real times)
 * and its metric updates. The host sends what was gathered before each answer, and at the end of
 * each turn of its event loop otherwise; the caller's thread replays it into its own logger, tracer
 * and metric registry (`producer/Bridge.ts`), wherever the engine runs.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import { globalValue } from "effect/GlobalValue"
import * as HashMap from "effect/HashMap"
import * as HashSet from "effect/HashSet"
import * as Logger from "effect/Logger"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import type { FinishedSpan, LogLine, MetricUpdate, Telemetry } from "../protocol/Messages.js"
import { type EngineMetric, engineMetrics, isEngineMetric } from "./metrics.js"

/** Where metric updates go when the engine runs behind a port; unset, they go to the registry as usual. */
const metricSink = globalValue("effect-kinesis/engine/metricSink", () =>
  FiberRef.unsafeMake<((update: MetricUpdate) => void) | undefined>(undefined)
)

/**
 * Adds `value` to an engine metric (a counter's amount, a histogram's sample), tagged with `stream`
 * when given: gathered for the caller's thread behind a port, else applied here.
 */
export const update = (name: EngineMetric, stream: string | undefined, value: number): Effect.Effect<void> =>
  Effect.flatMap(FiberRef.get(metricSink), (sink) => {
    const tags: ReadonlyArray<readonly [string, string]> = stream === undefined ? [] : [["stream", stream]]
    if (sink !== undefined) return Effect.sync(() => sink([name, tags, value]))
    return Effect.sync(() => apply([name, tags, value]))
  })

/** Applies an update, gathered here or crossed from the engine, to this thread's metric registry. */
export const apply = ([name, tags, value]: MetricUpdate): void => {
  if (!isEngineMetric(name)) return
  // Every engine metric takes a number: a counter's amount or a histogram's sample.
  const metric = engineMetrics[name] as {
    unsafeUpdate: (input: number, tags: ReadonlyArray<MetricLabel.MetricLabel>) => void
  }
  metric.unsafeUpdate(
    value,
    tags.map(([key, tag]) => MetricLabel.make(key, tag))
  )
}

/** The caller's span an engine span runs under: an external span in this trace. */
const callerTrace = "effect-kinesis-caller"

/** The parent to give an operation that the caller's span `ref` asked for. */
export const callerSpan = (ref: number): Tracer.ExternalSpan =>
  Tracer.externalSpan({ traceId: callerTrace, spanId: String(ref) })

/** Log line parts as they can cross: strings, numbers and booleans as they are, anything else as text. */
const crossable = (value: unknown): unknown =>
  typeof value === "string" || typeof value === "number" || typeof value === "boolean" || value === undefined
    ? value
    : value instanceof Error
      ? `${value.name}: ${value.message}`
      : String(value)

/** What the engine has gathered since it was last taken. */
export interface Gatherer {
  /** Takes what was gathered, or undefined when there is nothing. */
  readonly take: () => Telemetry | undefined
  /** Runs `effect` with its log lines, spans and metric updates gathered here rather than reported. */
  readonly gather: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/** A gatherer; `onFirst` is called when something is gathered after the last `take`. */
export const makeGatherer = (onFirst: () => void): Gatherer => {
  let logs: Array<LogLine> = []
  let metrics: Array<MetricUpdate> = []
  let spans: Array<FinishedSpan> = []
  let empty = true
  const noted = () => {
    if (!empty) return
    empty = false
    onFirst()
  }

  const logger = Logger.make(({ annotations, logLevel, message }) => {
    const parts = Array.isArray(message) ? message : [message]
    logs.push({
      level: logLevel.label,
      message: parts.map(crossable),
      annotations: [...HashMap.toEntries(annotations)].map(([key, value]) => [key, crossable(value)] as const)
    })
    noted()
  })

  let nextSpan = 0
  const ids = new WeakMap<Tracer.AnySpan, number>()
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const id = nextSpan++
      const attributes = new Map<string, unknown>()
      let status: Tracer.SpanStatus = { _tag: "Started", startTime }
      const parentSpan = Option.getOrUndefined(parent)
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: `engine-${id}`,
        traceId: parentSpan?.traceId ?? "effect-kinesis-engine",
        parent,
        context,
        get status() {
          return status
        },
        attributes,
        links: [...links],
        sampled: true,
        kind,
        end: (endTime, exit) => {
          status = { _tag: "Ended", startTime, endTime, exit }
          spans.push({
            id,
            name,
            parent: parentSpan === undefined ? undefined : ids.get(parentSpan),
            callerParent:
              parentSpan?._tag === "ExternalSpan" && parentSpan.traceId === callerTrace
                ? Number(parentSpan.spanId)
                : undefined,
            startTime,
            endTime,
            attributes: [...attributes].map(([key, value]) => [key, crossable(value)] as const),
            failure: Exit.isFailure(exit) ? String(exit.cause) : undefined
          })
          noted()
        },
        attribute: (key, value) => {
          attributes.set(key, value)
        },
        event: () => {},
        addLinks: () => {}
      }
      ids.set(span, id)
      return span
    },
    context: (f) => f()
  })

  const sink = (metric: MetricUpdate) => {
    metrics.push(metric)
    noted()
  }

  return {
    take: () => {
      if (empty) return undefined
      const taken = { logs, metrics, spans }
      logs = []
      metrics = []
      spans = []
      empty = true
      return taken
    },
    gather: (effect) =>
      effect.pipe(
        Effect.locally(FiberRef.currentLoggers, HashSet.make(logger)),
        Effect.withTracer(tracer),
        Effect.locally(metricSink, sink)
      )
  }
}
