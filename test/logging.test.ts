/**
 * The client's own log lines pass `logLevel` (default "Warning"), in the caller's operations and in
 * the automatic flush's fiber alike; `logLevel` overrides the application's minimum level for them.
 * The client here is the one of `effect-kinesis/testing`: a real client over SQLite in memory and an
 * in-memory Kinesis told to refuse or throttle.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel, TestClock } from "effect"
import { FlushInterval, FlushNone } from "../src/FlushStrategy.js"
import * as KinesisClient from "../src/KinesisClient.js"
import type { ClientLogLevel } from "../src/KinesisClientConfig.js"
import { MemoryKinesis } from "../src/testing.js"
import { bytes, captureLogs } from "./support/senders.js"

const record = (streamName: string) => ({ data: bytes("x"), partitionKey: "p", streamName })

/** One manual flush that logs a warning (a refused request) and a debug line (throttled records). */
const flushLogging = (logLevel: ClientLogLevel | undefined) =>
  Effect.gen(function* () {
    const logs = yield* captureLogs
    yield* Effect.gen(function* () {
      const client = yield* KinesisClient.KinesisClient
      const kinesis = yield* MemoryKinesis.MemoryKinesis
      yield* client.record(record("refused"))
      yield* client.record(record("throttled"))
      yield* kinesis.respondWith((stream, entries, call) =>
        stream === "refused"
          ? Effect.fail(MemoryKinesis.resourceNotFound(stream))
          : MemoryKinesis.rejectWhere(() => true)(stream, entries, call)
      )
      yield* client.flush()
    }).pipe(
      Effect.provide(MemoryKinesis.layerClient({ flushStrategy: FlushNone(), ...(logLevel ? { logLevel } : {}) })),
      Effect.provide(logs.layer)
    )
    return (yield* logs.lines).map((line) => `${line.level} ${line.message}`)
  })

describe("logLevel", () => {
  it.scoped("default Warning: the refused request is logged, the throttled records' debug line is not", () =>
    Effect.gen(function* () {
      const lines = yield* flushLogging(undefined)
      expect(lines.some((line) => line.startsWith("WARN PutRecords failed: ResourceNotFoundException"))).toBe(true)
      expect(lines.filter((line) => line.startsWith("DEBUG"))).toEqual([])
    })
  )

  it.scoped("Debug shows the debug lines too", () =>
    Effect.gen(function* () {
      const lines = yield* flushLogging("Debug")
      expect(lines).toContain("DEBUG Kinesis rejected 1 of 1 records")
      expect(lines.some((line) => line.startsWith("WARN PutRecords failed"))).toBe(true)
    })
  )

  for (const level of ["Error", "None"] as const) {
    it.scoped(`${level} silences the warnings`, () =>
      Effect.gen(function* () {
        expect(yield* flushLogging(level)).toEqual([])
      })
    )
  }

  it.scoped("overrides the application's minimum level for the client's lines, not for the app's", () =>
    Effect.gen(function* () {
      const lines = yield* flushLogging("Debug").pipe(Logger.withMinimumLogLevel(LogLevel.Error))
      expect(lines).toContain("DEBUG Kinesis rejected 1 of 1 records")
    })
  )

  it.scoped("applies to the automatic flush's fiber", () =>
    Effect.gen(function* () {
      const failures = (logLevel: ClientLogLevel) =>
        Effect.gen(function* () {
          const logs = yield* captureLogs
          yield* Effect.gen(function* () {
            const client = yield* KinesisClient.KinesisClient
            const kinesis = yield* MemoryKinesis.MemoryKinesis
            yield* kinesis.noResponse
            yield* client.record(record("events"))
            yield* TestClock.adjust("1 second")
            expect((yield* kinesis.requests).length).toBe(1)
          }).pipe(
            Effect.provide(
              MemoryKinesis.layerClient({ flushStrategy: FlushInterval({ interval: "1 second" }), logLevel })
            ),
            Effect.provide(logs.layer)
          )
          return (yield* logs.lines).filter((line) => line.message.startsWith("Automatic flush failed"))
        })
      expect((yield* failures("Warning")).map((line) => line.level)).toEqual(["WARN"])
      expect(yield* failures("Error")).toEqual([])
    })
  )
})
