import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { KinesisValidationException } from "../src/Errors.js"
import { maxRecordBytes, recordSize, validate } from "../src/RecordInput.js"

const MiB = 1024 * 1024
const bytes = (n: number) => new Uint8Array(n)
const input = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  data: bytes(3),
  partitionKey: "key",
  streamName: "stream",
  ...overrides
})

/** Validates and returns the failure, failing the test if validation passed. */
const refused = (value: unknown) =>
  Effect.gen(function* () {
    const error = yield* Effect.flip(validate(value))
    expect(error).toBeInstanceOf(KinesisValidationException)
    expect(error).toBeInstanceOf(Error)
    expect(error._tag).toBe("KinesisValidationException")
    expect(error.message.length).toBeGreaterThan(0)
    return error
  })

describe("RecordInput.validate", () => {
  it.effect("accepts a well-formed record and counts its size", () =>
    Effect.gen(function* () {
      const data = new Uint8Array([1, 2, 3, 4, 5])
      const valid = yield* validate({ data, partitionKey: "pk", streamName: "orders" })
      expect(valid).toEqual({ streamName: "orders", partitionKey: "pk", data, size: 7 })
    })
  )

  it.effect("keeps a copy of the bytes: changing the caller's buffer afterwards changes nothing", () =>
    Effect.gen(function* () {
      const data = new Uint8Array([1, 2, 3, 4, 5])
      const valid = yield* validate({ data, partitionKey: "pk", streamName: "orders" })
      data.fill(9)
      expect([...valid.data]).toEqual([1, 2, 3, 4, 5])
    })
  )

  it.effect("keeps each record's copy apart from the others', small and large, empty included", () =>
    Effect.gen(function* () {
      // Sizes on both sides of the 4 KiB up to which copies share a slab, enough to fill several slabs
      const sizes = Array.from({ length: 300 }, (_, i) => [0, 1, 1000, 4 * 1024, 4 * 1024 + 1][i % 5]!)
      const originals = sizes.map((size, i) => new Uint8Array(size).fill(i % 251))
      const copies = yield* Effect.forEach(originals, (data) => validate({ data, partitionKey: "pk", streamName: "s" }))
      for (const original of originals) original.fill(255)
      copies.forEach((valid, i) => {
        expect(valid.data.byteLength).toBe(sizes[i])
        expect(valid.data.every((byte) => byte === i % 251)).toBe(true)
      })
    })
  )

  it.effect("refuses bytes whose buffer was detached (transferred away)", () =>
    Effect.gen(function* () {
      const data = new Uint8Array([1, 2, 3])
      structuredClone(data.buffer, { transfer: [data.buffer] })
      const error = yield* Effect.flip(validate({ data, partitionKey: "pk", streamName: "orders" }))
      expect(error).toBeInstanceOf(KinesisValidationException)
      expect(error.message).toContain("detached")
    })
  )

  describe("partitionKey", () => {
    it.effect("refuses an empty key", () =>
      Effect.gen(function* () {
        const error = yield* refused(input({ partitionKey: "" }))
        expect(error.message).toMatch(/partitionKey/)
      })
    )

    it.effect("accepts a key of one code point", () =>
      Effect.gen(function* () {
        expect((yield* validate(input({ partitionKey: "k" }))).size).toBe(3 + 1)
        // One emoji is one code point (two UTF-16 units, four UTF-8 bytes)
        expect((yield* validate(input({ partitionKey: "😀" }))).size).toBe(3 + 4)
      })
    )

    it.effect("accepts 256 ASCII code points and refuses 257", () =>
      Effect.gen(function* () {
        const ok = yield* validate(input({ partitionKey: "a".repeat(256) }))
        expect(ok.size).toBe(3 + 256)
        yield* refused(input({ partitionKey: "a".repeat(257) }))
      })
    )

    it.effect("counts code points, not UTF-16 units: 256 emoji accepted, 257 refused", () =>
      Effect.gen(function* () {
        const key = "😀".repeat(256)
        expect(key.length).toBe(512)
        const ok = yield* validate(input({ partitionKey: key }))
        expect(ok.partitionKey).toBe(key)
        expect(ok.size).toBe(3 + 256 * 4)
        yield* refused(input({ partitionKey: "😀".repeat(257) }))
      })
    )

    it.effect("counts a mixed key by code points", () =>
      Effect.gen(function* () {
        const key = `${"é".repeat(128)}${"😀".repeat(128)}`
        const ok = yield* validate(input({ partitionKey: key }))
        expect(ok.size).toBe(3 + 128 * 2 + 128 * 4)
        yield* refused(input({ partitionKey: `${key}x` }))
      })
    )

    it.effect("refuses a key with a lone surrogate (it would be stored as U+FFFD, another key)", () =>
      Effect.gen(function* () {
        const emoji = "😀"
        for (const key of [emoji.slice(0, 1), `a${emoji.slice(1)}`, `${emoji}${emoji.slice(0, 1)}b`]) {
          const error = yield* refused(input({ partitionKey: key }))
          expect(error.message).toMatch(/partitionKey/)
        }
        expect((yield* validate(input({ partitionKey: `${emoji}b${emoji}` }))).size).toBe(3 + 9)
      })
    )

    it.effect("refuses a key that is not a string", () =>
      Effect.gen(function* () {
        yield* refused(input({ partitionKey: 42 }))
        yield* refused(input({ partitionKey: null }))
        yield* refused(input({ partitionKey: ["a"] }))
      })
    )
  })

  describe("streamName", () => {
    it.effect("refuses 0 characters, accepts 1 and 128, refuses 129", () =>
      Effect.gen(function* () {
        const error = yield* refused(input({ streamName: "" }))
        expect(error.message).toMatch(/streamName/)
        expect((yield* validate(input({ streamName: "s" }))).streamName).toBe("s")
        const long = "s".repeat(128)
        expect((yield* validate(input({ streamName: long }))).streamName).toBe(long)
        yield* refused(input({ streamName: "s".repeat(129) }))
      })
    )

    it.effect("refuses a space, a slash and other characters outside [a-zA-Z0-9_.-]", () =>
      Effect.gen(function* () {
        for (const name of ["a b", "a/b", "a:b", "a\nb", "stream\n", "é", "a+b", " a"]) {
          yield* refused(input({ streamName: name }))
        }
      })
    )

    it.effect("accepts letters, digits and the punctuation _ . -", () =>
      Effect.gen(function* () {
        for (const name of ["a_b.c-d", "A-Z.a_z-0.9", "-", "0", "..."]) {
          expect((yield* validate(input({ streamName: name }))).streamName).toBe(name)
        }
      })
    )

    it.effect("refuses a stream name that is not a string", () =>
      Effect.gen(function* () {
        yield* refused(input({ streamName: 1 }))
        yield* refused(input({ streamName: undefined }))
      })
    )
  })

  describe("data", () => {
    it.effect("refuses data that is not a Uint8Array", () =>
      Effect.gen(function* () {
        const notBytes: ReadonlyArray<unknown> = [
          "text",
          42,
          null,
          undefined,
          [1, 2, 3],
          { 0: 1, length: 1 },
          new ArrayBuffer(4),
          new Uint16Array(2)
        ]
        for (const data of notBytes) {
          const error = yield* refused(input({ data }))
          expect(error.message).toMatch(/data/)
        }
      })
    )

    it.effect("accepts a Buffer and counts its bytes", () =>
      Effect.gen(function* () {
        const data = Buffer.from("héllo", "utf8")
        const ok = yield* validate(input({ data }))
        expect(Buffer.from(ok.data).equals(data)).toBe(true)
        expect(ok.size).toBe(6 + 3)
      })
    )

    it.effect("counts a view by its own bytes, not its whole buffer", () =>
      Effect.gen(function* () {
        const view = new Uint8Array(100).subarray(10, 15)
        expect((yield* validate(input({ data: view }))).size).toBe(5 + 3)
      })
    )

    it.effect("accepts empty data; the size is then the key's bytes", () =>
      Effect.gen(function* () {
        const ok = yield* validate(input({ data: new Uint8Array(0), partitionKey: "é" }))
        expect(ok.size).toBe(2)
        expect(ok.data.byteLength).toBe(0)
      })
    )
  })

  describe("record size", () => {
    it.effect("accepts exactly 10 MiB counting the key's UTF-8 bytes, refuses one byte more", () =>
      Effect.gen(function* () {
        expect(maxRecordBytes).toBe(10 * MiB)
        const ok = yield* validate(input({ partitionKey: "é", data: bytes(10 * MiB - 2) }))
        expect(ok.size).toBe(10 * MiB)
        const error = yield* refused(input({ partitionKey: "é", data: bytes(10 * MiB - 1) }))
        expect(error.message).toMatch(/10485761/)
      })
    )

    it.effect("applies the limit with an ASCII key too", () =>
      Effect.gen(function* () {
        const key = "a".repeat(256)
        expect((yield* validate(input({ partitionKey: key, data: bytes(10 * MiB - 256) }))).size).toBe(10 * MiB)
        yield* refused(input({ partitionKey: key, data: bytes(10 * MiB - 255) }))
        yield* refused(input({ partitionKey: "k", data: bytes(10 * MiB) }))
      })
    )

    it("recordSize adds data bytes and UTF-8 key bytes", () => {
      expect(recordSize("", bytes(0))).toBe(0)
      expect(recordSize("abc", bytes(10))).toBe(13)
      expect(recordSize("é😀", bytes(1))).toBe(1 + 2 + 4)
    })
  })

  describe("malformed input", () => {
    const malformed: ReadonlyArray<readonly [string, unknown]> = [
      ["null", null],
      ["undefined", undefined],
      ["a number", 42],
      ["a string", "record"],
      ["a boolean", true],
      ["an empty object", {}],
      ["an array", [new Uint8Array(1), "key", "stream"]],
      ["missing data", { partitionKey: "key", streamName: "stream" }],
      ["missing partitionKey", { data: bytes(1), streamName: "stream" }],
      ["missing streamName", { data: bytes(1), partitionKey: "key" }],
      ["an object without a prototype", Object.assign(Object.create(null), { streamName: "stream" })]
    ]
    for (const [label, value] of malformed) {
      it.effect(`${label} is a KinesisValidationException, never a throw`, () =>
        Effect.gen(function* () {
          let effect: ReturnType<typeof validate> | undefined
          expect(() => {
            effect = validate(value)
          }).not.toThrow()
          const exit = yield* Effect.exit(effect!)
          expect(Exit.isFailure(exit)).toBe(true)
          yield* refused(value)
        })
      )
    }
  })
})
