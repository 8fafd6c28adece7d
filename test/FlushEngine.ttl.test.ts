/**
 * `recordTtl`: a flush first deletes, unsent, the records cached longer than that. Time is the
 * `TestClock`'s, which the cache also reads when it stores a record.
 */
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Metric, TestClock } from "effect"
import * as RecordStorage from "../src/engine/cache/RecordStorage.js"
import * as FlushEngine from "../src/engine/flush/FlushEngine.js"
import {
  captureLogs,
  flushData,
  keysOf,
  makeEngine,
  makeScriptedSender,
  memoryStorage,
  put
} from "./support/senders.js"
import { scopedTempDir } from "./support/tempDir.js"

const expiredCount = (stream: string) =>
  Metric.value(Metric.tagged(FlushEngine.recordsExpired, "stream", stream)).pipe(Effect.map((state) => state.count))

const withTtl = (recordTtl: Duration.DurationInput) => ({ recordTtl: Duration.decode(recordTtl) })

describe("FlushEngine: recordTtl", () => {
  it.scoped("deletes the records cached longer than recordTtl before sending, counts them, and sends the others", () =>
    Effect.gen(function* () {
      const logs = yield* captureLogs
      const storage = yield* memoryStorage()
      yield* put(storage, "ttl-a", "old-a1", "SECRET-1")
      yield* put(storage, "ttl-b", "old-b1", "SECRET-2")
      yield* put(storage, "ttl-a", "old-a2", "SECRET-3")
      yield* TestClock.adjust("60 seconds")
      yield* put(storage, "ttl-a", "fresh-a3", "fresh")
      yield* TestClock.adjust("31 seconds")
      const { sender, calls } = yield* makeScriptedSender()
      const engine = yield* makeEngine(storage, sender, 5, withTtl("90 seconds"))

      const result = yield* engine.flush.pipe(Effect.provide(logs.layer))

      expect(result).toEqual(flushData({ recordsFlushed: 1, recordsDropped: 3 }))
      // ttl-b had only expired records: it is not sent to at all.
      expect((yield* calls).map((batch) => [batch.stream, keysOf(batch)])).toEqual([["ttl-a", ["fresh-a3"]]])
      const warnings = (yield* logs.lines).filter((line) => line.level === "WARN")
      expect(warnings.map((line) => line.message)).toEqual([
        "Dropped 2 records of stream ttl-a cached longer than 1m 30s",
        "Dropped 1 record of stream ttl-b cached longer than 1m 30s"
      ])
      expect(JSON.stringify(warnings)).not.toContain("SECRET")
      expect(yield* expiredCount("ttl-a")).toBe(2)
      expect(yield* expiredCount("ttl-b")).toBe(1)
      expect(yield* Metric.value(Metric.tagged(FlushEngine.recordsDropped, "stream", "ttl-a"))).toMatchObject({
        count: 0
      })
    })
  )

  it.scoped("keeps and sends a record cached exactly recordTtl; one millisecond more and it is dropped", () =>
    Effect.gen(function* () {
      const storage = yield* memoryStorage()
      yield* put(storage, "ttl-edge", "first", "data")
      yield* TestClock.adjust("1 millis")
      yield* put(storage, "ttl-edge", "second", "data")
      yield* TestClock.adjust("90 seconds")
      const { sender, calls } = yield* makeScriptedSender()
      const engine = yield* makeEngine(storage, sender, 5, withTtl("90 seconds"))

      expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 1, recordsDropped: 1 }))
      expect((yield* calls).map(keysOf)).toEqual([["second"]])
    })
  )

  it.scoped("without recordTtl, records never expire", () =>
    Effect.gen(function* () {
      const storage = yield* memoryStorage()
      yield* put(storage, "ttl-none", "old", "data")
      yield* TestClock.adjust("3650 days")
      const { sender } = yield* makeScriptedSender()
      const engine = yield* makeEngine(storage, sender, 5)

      expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 1 }))
    })
  )

  it.scoped("expires records cached before a restart: their time of caching is in the file", () =>
    Effect.gen(function* () {
      const filename = path.join(yield* scopedTempDir("effect-kinesis-ttl-"), "cache.db")
      const open = RecordStorage.make({ filename, cacheMaxBytes: 1024 * 1024 })
      yield* Effect.scoped(
        Effect.flatMap(open, (storage) =>
          Effect.zipRight(
            put(storage, "ttl-restart", "before-1", "data"),
            put(storage, "ttl-restart", "before-2", "data")
          )
        )
      )
      yield* TestClock.adjust("2 hours")
      const storage = yield* open
      yield* put(storage, "ttl-restart", "after", "data")
      const { sender, calls } = yield* makeScriptedSender()
      const engine = yield* makeEngine(storage, sender, 5, withTtl("1 hour"))

      expect(yield* engine.flush).toEqual(flushData({ recordsFlushed: 1, recordsDropped: 2 }))
      expect((yield* calls).map(keysOf)).toEqual([["after"]])
    })
  )
})
