/**
 * Where each line's partition key comes from: one key for every line, a field of each JSON line,
 * or a random key per line.
 *
 * @since 0.1.0
 */
import { randomUUID } from "node:crypto"
import * as Either from "effect/Either"

/** How `put` keys its records. */
export type KeySource =
  | { readonly _tag: "Fixed"; readonly key: string }
  | { readonly _tag: "Field"; readonly path: string }
  | { readonly _tag: "Random" }

/** Every line gets `key`. */
export const fixed = (key: string): KeySource => ({ _tag: "Fixed", key })

/** Each line is a JSON object; its key is the value at `path` (dot-separated: `user.id`). */
export const field = (path: string): KeySource => ({ _tag: "Field", path })

/** Each line gets a random key (a UUID), spreading records evenly over the shards. */
export const random: KeySource = { _tag: "Random" }

const decoder = new TextDecoder("utf-8", { fatal: false })

const valueAt = (value: unknown, path: ReadonlyArray<string>): unknown => {
  let current = value
  for (const name of path) {
    if (typeof current !== "object" || current === null || Array.isArray(current)) return undefined
    current = (current as Record<string, unknown>)[name]
  }
  return current
}

/**
 * The key of one line, or why the line has none: it is not JSON, or the field is missing, empty, or
 * not a string, number or boolean. Numbers and booleans become their text.
 */
export const keyOf = (source: KeySource, line: Uint8Array): Either.Either<string, string> => {
  switch (source._tag) {
    case "Fixed":
      return Either.right(source.key)
    case "Random":
      return Either.right(randomUUID())
    case "Field": {
      let parsed: unknown
      try {
        parsed = JSON.parse(decoder.decode(line))
      } catch {
        return Either.left(`not JSON, so it has no field ${source.path}`)
      }
      const value = valueAt(parsed, source.path.split("."))
      if (typeof value === "string" && value !== "") return Either.right(value)
      if (typeof value === "number" || typeof value === "boolean") return Either.right(String(value))
      return Either.left(
        value === undefined || value === null || value === ""
          ? `no field ${source.path}`
          : `field ${source.path} is not a string, number or boolean`
      )
    }
  }
}
