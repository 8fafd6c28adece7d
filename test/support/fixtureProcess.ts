/**
 * Runs a fixture script (TypeScript, through tsx) in a child process, as an app would run, and
 * collects how it ended and what it printed.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

/** How a child process ended, and what it wrote. */
export interface FixtureRun {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

const projectRoot = fileURLToPath(new URL("../..", import.meta.url))

/** Runs `fixture` with `args` to its end; a child still running after `limitMs` is killed (and the test fails on it). */
export const runFixture = (fixture: string, args: ReadonlyArray<string>, limitMs: number) =>
  new Promise<FixtureRun>((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", fixture, ...args], {
      cwd: projectRoot,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
    })
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk
    })
    const limit = setTimeout(() => child.kill("SIGKILL"), limitMs)
    child.on("close", (code, signal) => {
      clearTimeout(limit)
      resolve({ code, signal, stdout, stderr })
    })
  })
