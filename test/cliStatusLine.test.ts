/**
 * The command line's progress display on its own, on TestClock: a terminal gets one line redrawn in
 * place and erased at the end; anything else gets plain lines at the interval asked for.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Ref, TestClock } from "effect"
import * as StatusLine from "../src/cli/StatusLine.js"

const output = (isTTY: boolean, columns?: number) => {
  const writes: Array<string> = []
  return { writes, output: { isTTY, columns, write: (text: string) => writes.push(text) } }
}

describe("StatusLine", () => {
  it.scoped("redraws one terminal line in place four times a second, cut to the width, and erases it on stop", () =>
    Effect.gen(function* () {
      const { writes, output: terminal } = output(true, 12)
      const count = yield* Ref.make(0)
      const line = yield* StatusLine.start(
        terminal,
        Effect.map(
          Ref.updateAndGet(count, (n) => n + 1),
          (n) => `drawn ${n} times so far`
        ),
        Duration.seconds(10)
      )
      for (let step = 0; step < 4; step++) yield* TestClock.adjust("250 millis")
      expect(writes).toEqual([
        "\r\x1b[2Kdrawn 1 tim",
        "\r\x1b[2Kdrawn 2 tim",
        "\r\x1b[2Kdrawn 3 tim",
        "\r\x1b[2Kdrawn 4 tim"
      ])
      yield* line.note("a note")
      expect(writes.at(-1)).toBe("\r\x1b[2Ka note\n")
      yield* line.stop
      yield* line.stop
      yield* TestClock.adjust("1 second")
      expect(writes.slice(5)).toEqual(["\r\x1b[2K"])
    })
  )

  it.scoped("prints plain lines at the interval when the output is not a terminal", () =>
    Effect.gen(function* () {
      const { writes, output: log } = output(false)
      const line = yield* StatusLine.start(log, Effect.succeed("progress"), Duration.seconds(10))
      yield* TestClock.adjust("9 seconds")
      expect(writes).toEqual([])
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("10 seconds")
      yield* TestClock.adjust("10 seconds")
      expect(writes).toEqual(["progress\n", "progress\n", "progress\n"])
      yield* line.note("a note")
      yield* line.stop
      expect(writes.slice(3)).toEqual(["a note\n"])
    })
  )

  it("gives the rate over the last five seconds, not since the start", () => {
    const rate = StatusLine.recentRate()
    // Redrawn every second: 1,000 records in the first second, 2,000 in the next, then none for six.
    expect(rate(1000, 1000)).toBe("1,000/s")
    expect(rate(2000, 3000)).toBe("2,000/s")
    for (const millis of [3000, 4000, 5000, 6000, 7000]) rate(millis, 3000)
    expect(rate(8000, 3000)).toBe("0/s")
    // 2,000 more in the ninth second: over the last five seconds, 400 a second.
    expect(rate(9000, 5000)).toBe("400/s")
  })
})
