/**
 * The input of `put`: the files named, in order, or stdin when none is (or for `-`). Every file is
 * checked before anything is read, so a name that can't be read stops the command before it caches
 * a line; each is opened only when its turn comes, so any number of files can be named.
 *
 * @since 0.1.0
 */

import * as fs from "node:fs"
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { BadInput } from "./CliError.js"

/** One source of lines. */
export interface Input {
  /** The file name as given, or `stdin`. */
  readonly name: string
  /** Its bytes, chunk by chunk, read only as fast as they are taken. */
  readonly chunks: Stream.Stream<Uint8Array, BadInput>
}

const reason = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

const unreadable = (name: string) => (cause: unknown) =>
  new BadInput({ message: `Could not read ${name} (${reason(cause)})` })

/** The readable's chunks as it gives them; interrupting the stream stops waiting for the next one. */
const chunksOf = (name: string, readable: () => NodeJS.ReadableStream): Stream.Stream<Uint8Array, BadInput> =>
  NodeStream.fromReadable(readable, unreadable(name))

const stdin: Input = { name: "stdin", chunks: chunksOf("stdin", () => process.stdin) }

/** A file that can be read now, opened when its chunks are first pulled and closed after the last. */
const file = (name: string): Effect.Effect<Input, BadInput> =>
  Effect.tryPromise({
    try: async () => {
      if ((await fs.promises.stat(name)).isDirectory()) throw new Error("EISDIR: it is a directory")
      await fs.promises.access(name, fs.constants.R_OK)
    },
    catch: (cause) =>
      name.startsWith("-") && (cause as { code?: unknown }).code === "ENOENT"
        ? new BadInput({ message: `Unknown option ${name} (for a file of that name, write ./${name})` })
        : unreadable(name)(cause)
  }).pipe(
    Effect.as({
      name,
      chunks: Stream.unwrapScoped(
        Effect.acquireRelease(
          Effect.tryPromise({ try: () => fs.promises.open(name, "r"), catch: unreadable(name) }),
          (handle) => Effect.promise(() => handle.close().catch(() => undefined))
        ).pipe(Effect.map((handle) => chunksOf(name, () => handle.createReadStream({ autoClose: false }))))
      )
    })
  )

/** The inputs `names` ask for; fails with `BadInput` naming the first that can't be read. */
export const check = (names: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<Input>, BadInput> =>
  names.length === 0
    ? Effect.succeed([stdin])
    : Effect.forEach(names, (name) => (name === "-" ? Effect.succeed(stdin) : file(name)))
