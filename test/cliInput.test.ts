/**
 * The command line's input handling on its own: lines cut from chunks at any boundary, the record
 * limit on both sides of the edge, partition keys from JSON fields, and durations as written on the
 * command line.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Either, Option } from "effect"
import * as Durations from "../src/cli/Durations.js"
import * as LineSplitter from "../src/cli/LineSplitter.js"
import * as PartitionKeys from "../src/cli/PartitionKeys.js"

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (line: LineSplitter.Line) =>
  line._tag === "Line"
    ? [line.number, new TextDecoder().decode(line.bytes)]
    : [line.number, `oversized ${line.byteLength}`]

/** Every line of `input` fed in chunks of `size` bytes. */
const split = (input: string, size: number, maxBytes = 100) => {
  const splitter = LineSplitter.make(maxBytes)
  const all = bytes(input)
  const lines: Array<LineSplitter.Line> = []
  for (let start = 0; start < all.length; start += size) lines.push(...splitter.push(all.subarray(start, start + size)))
  lines.push(...splitter.end())
  return lines.map(text)
}

describe("LineSplitter", () => {
  it("gives the same lines whatever the chunk boundaries; CRLF and a last line without newline included", () => {
    const input = "one\r\ntwo\n\nthree\nfour"
    const expected = [
      [1, "one"],
      [2, "two"],
      [4, "three"],
      [5, "four"]
    ]
    for (const size of [1, 2, 3, 5, 7, 64]) expect(split(input, size), `chunks of ${size}`).toEqual(expected)
  })

  it("takes a line of exactly the limit and counts one byte over as oversized, without keeping it", () => {
    const atLimit = "a".repeat(100)
    const over = "b".repeat(101)
    for (const size of [1, 10, 1000]) {
      expect(split(`${atLimit}\n${over}\nnext\n`, size), `chunks of ${size}`).toEqual([
        [1, atLimit],
        [2, "oversized 101"],
        [3, "next"]
      ])
    }
    expect(split(`${atLimit}\r\n`, 7)).toEqual([[1, atLimit]])
    expect(split(`${"c".repeat(10_000)}\nend`, 64)).toEqual([
      [1, "oversized 10000"],
      [2, "end"]
    ])
  })

  it("gives a line held in one chunk as a view of that chunk, not a copy", () => {
    const chunk = bytes("first\nsecond\n")
    const [first] = LineSplitter.make(100).push(chunk)
    expect(first?._tag === "Line" && first.bytes.buffer).toBe(chunk.buffer)
  })
})

describe("PartitionKeys", () => {
  const field = PartitionKeys.field("user.id")
  it("takes a string, number or boolean field at a dotted path", () => {
    expect(PartitionKeys.keyOf(field, bytes('{"user":{"id":"u-1"}}'))).toEqual(Either.right("u-1"))
    expect(PartitionKeys.keyOf(field, bytes('{"user":{"id":42}}'))).toEqual(Either.right("42"))
    expect(PartitionKeys.keyOf(field, bytes('{"user":{"id":true}}'))).toEqual(Either.right("true"))
  })

  it("says why a line has no key", () => {
    expect(PartitionKeys.keyOf(field, bytes("plain text"))).toEqual(Either.left("not JSON, so it has no field user.id"))
    expect(PartitionKeys.keyOf(field, bytes('{"user":{}}'))).toEqual(Either.left("no field user.id"))
    expect(PartitionKeys.keyOf(field, bytes('{"user":{"id":""}}'))).toEqual(Either.left("no field user.id"))
    expect(PartitionKeys.keyOf(field, bytes('{"user":[1]}'))).toEqual(Either.left("no field user.id"))
    expect(PartitionKeys.keyOf(field, bytes('{"user":{"id":{"a":1}}}'))).toEqual(
      Either.left("field user.id is not a string, number or boolean")
    )
  })

  it("gives a fixed key to every line and a different random key to each", () => {
    expect(PartitionKeys.keyOf(PartitionKeys.fixed("k"), bytes("x"))).toEqual(Either.right("k"))
    const a = PartitionKeys.keyOf(PartitionKeys.random, bytes("x"))
    const b = PartitionKeys.keyOf(PartitionKeys.random, bytes("x"))
    expect(Either.isRight(a) && Either.isRight(b) && a.right !== b.right).toBe(true)
  })
})

describe("Durations", () => {
  it("reads 500ms, 2s, 1m, 1h and 1.5s", () => {
    const millis = (textValue: string) => Option.map(Durations.parse(textValue), Duration.toMillis)
    expect(millis("500ms")).toEqual(Option.some(500))
    expect(millis("2s")).toEqual(Option.some(2000))
    expect(millis("1m")).toEqual(Option.some(60_000))
    expect(millis("1h")).toEqual(Option.some(3_600_000))
    expect(millis("1.5s")).toEqual(Option.some(1500))
  })

  it("refuses no unit, other units, zero and negatives", () => {
    for (const bad of ["5", "5x", "2 s", "0s", "-1s", "", "s", "1d"])
      expect(Durations.parse(bad), bad).toEqual(Option.none())
  })

  it("writes durations back the way it reads them", () => {
    expect(Durations.format(Duration.millis(500))).toBe("500ms")
    expect(Durations.format(Duration.seconds(30))).toBe("30s")
    expect(Durations.format(Duration.minutes(2))).toBe("2m")
  })
})
