/**
 * Runs the `effect-kinesis` command line from its sources in a child process, as a shell would:
 * arguments, stdin, environment, and what it wrote to stdout and stderr with its exit status.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url))
const projectRoot = fileURLToPath(new URL("../..", import.meta.url))

/** Credentials and region for a local Kinesis, which checks that requests are signed, not by whom. */
export const localEnvironment = {
  AWS_ACCESS_KEY_ID: "local",
  AWS_SECRET_ACCESS_KEY: "local",
  AWS_REGION: "us-east-1"
}

/** A started command: its process, its output so far, and its end. */
export interface CliRun {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** Resolves once `stderr` contains a match of `pattern`, with the match; rejects if the process ends first. */
  readonly awaitStderr: (pattern: RegExp) => Promise<RegExpMatchArray>
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/** Starts `effect-kinesis ...args` with stdin as a pipe the caller writes to. */
export const startCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}): CliRun => {
  const child = spawn(process.execPath, ["--import", "tsx", main, ...args], {
    cwd: projectRoot,
    env: { ...process.env, ...localEnvironment, ...env },
    stdio: ["pipe", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  const watchers: Array<() => void> = []
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk
  })
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk
    for (const watcher of [...watchers]) watcher()
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("close", (code, signal) => {
      for (const watcher of [...watchers]) watcher()
      resolve({ code, signal })
    })
  })
  const awaitStderr = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const match = stderr.match(pattern)
        if (match) {
          watchers.splice(watchers.indexOf(check), 1)
          resolve(match)
        } else if (child.exitCode !== null || child.signalCode !== null) {
          watchers.splice(watchers.indexOf(check), 1)
          reject(new Error(`the command ended before stderr matched ${pattern}: ${stderr}`))
        }
      }
      watchers.push(check)
      check()
    })
  return { child, stdout: () => stdout, stderr: () => stderr, awaitStderr, exited }
}

/** What a finished command did. */
export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly millis: number
}

/** Runs `effect-kinesis ...args` to its end with `input` on stdin. */
export const runCli = async (
  args: ReadonlyArray<string>,
  input: string | Uint8Array = "",
  env: Record<string, string> = {}
): Promise<CliResult> => {
  const started = performance.now()
  const run = startCli(args, env)
  run.child.stdin!.on("error", () => {
    // The command may exit before reading all of its input (bad options): that is what is tested.
  })
  run.child.stdin!.end(input)
  const { code } = await run.exited
  return { code, stdout: run.stdout(), stderr: run.stderr(), millis: performance.now() - started }
}

/** `count` lines `prefix-<n>`, n from `from`, each ended by a newline. */
export const numberedLines = (prefix: string, from: number, count: number): string =>
  Array.from({ length: count }, (_, i) => `${prefix}-${from + i}\n`).join("")
