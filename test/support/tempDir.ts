/**
 * Temporary directories for tests that need a real cache file: a scoped one for Effect tests, and
 * a make / remove-all pair for Promise-style tests that clean up in a hook.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, type Scope } from "effect"

const make = (prefix: string): string => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

const remove = (dir: string): void => fs.rmSync(dir, { recursive: true, force: true })

/**
 * A fresh temporary directory, removed with everything in it when the scope closes (after any
 * storage opened later in the same scope).
 */
export const scopedTempDir = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => make(prefix)),
    (dir) => Effect.sync(() => remove(dir))
  )

/**
 * For tests outside Effect: `make` creates a fresh temporary directory and keeps track of it;
 * `removeAll` deletes every directory made so far (call it from an `afterEach` / `afterAll` hook).
 */
export const tempDirs = (prefix: string) => {
  const made: Array<string> = []
  return {
    make: (): string => {
      const dir = make(prefix)
      made.push(dir)
      return dir
    },
    removeAll: (): void => {
      for (const dir of made.splice(0)) remove(dir)
    }
  }
}
