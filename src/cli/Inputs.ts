/**
 * The input of `put`: the files named, in order, or stdin when none is (or for `-`). Every file is
 * opened before anything is read, so a name that can't be read stops the command before it caches
 * a line.
 *
 * @since 0.1.0
 */

import * as fs from "node:fs"
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import { BadInput } from "./CliError.js"

/** One source of lines. */
export interface Input {
  /** The file name as given, or `stdin`. */
  readonly name: string
  /** Its bytes, chunk by chunk, read only as fast as they are taken. */
  readonly chunks: Stream.Stream<Uint8Array, BadInput>
}

const reason = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** The readable's chunks as it gives them; interrupting the stream stops waiting for the next one. */
const chunksOf = (name: string, readable: () => NodeJS.ReadableStream): Stream.Stream<Uint8Array, BadInput> =>
  NodeStream.fromReadable(readable, (cause) => new BadInput({ message: `Could not read ${name} (${reason(cause)})` }))

const stdin: Input = { name: "stdin", chunks: chunksOf("stdin", () => process.stdin) }

const openFile = (name: string): Effect.Effect<Input, BadInput, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const handle = await fs.promises.open(name, "r")
        if ((await handle.stat()).isDirectory()) {
          await handle.close()
          throw new Error("EISDIR: it is a directory")
        }
        return handle
      },
      catch: (cause) => new BadInput({ message: `Could not read ${name} (${reason(cause)})` })
    }),
    (handle) => Effect.promise(() => handle.close())
  ).pipe(
    Effect.map((handle) => ({
      name,
      chunks: chunksOf(name, () => handle.createReadStream({ autoClose: false }))
    }))
  )

/** Opens the inputs `names` ask for; fails with `BadInput` naming the first that can't be read. */
export const open = (names: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<Input>, BadInput, Scope.Scope> =>
  names.length === 0
    ? Effect.succeed([stdin])
    : Effect.forEach(names, (name) => (name === "-" ? Effect.succeed(stdin) : openFile(name)))
