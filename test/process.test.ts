/**
 * The client as a Node process sees it, in child processes: an open client never keeps the process
 * alive by itself (what it cached is there for the next client), and the Promise facade logs to
 * stderr, at or above `logLevel`, never to stdout.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { AmplifyKinesisClient, FlushNone } from "../src/Promise.js"
import { type LocalKinesisServer, startLocalKinesis } from "../src/testing.js"
import { tempDirs } from "./support/tempDir.js"

const fixture = fileURLToPath(new URL("./fixtures/facade-client.ts", import.meta.url))
const projectRoot = fileURLToPath(new URL("..", import.meta.url))

let local: LocalKinesisServer
const dirs = tempDirs("effect-kinesis-process-")

beforeAll(async () => {
  local = await startLocalKinesis({ streams: ["idle"] })
})

afterAll(async () => {
  await local.dispose()
  dirs.removeAll()
})

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the fixture to its end; a child still running after `limitMs` is killed (and the test fails on it). */
const run = (args: ReadonlyArray<string>, limitMs: number) =>
  new Promise<Run>((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", fixture, ...args], {
      cwd: projectRoot,
      stdio: ["ignore", "pipe", "pipe"]
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

describe("process lifetime", () => {
  it("a process whose only work left is an open client exits by itself, and the record waits in the cache", async () => {
    const storagePath = dirs.make()
    // The automatic flush is due in 30 seconds; the process must not wait for it.
    const exit = await run(["idle", storagePath, local.endpoint], 20_000)
    expect(exit.signal).toBeNull()
    expect(exit.code).toBe(0)
    expect(exit.stdout).toBe("recorded\n")

    const next = await AmplifyKinesisClient.create({
      ...local.config,
      storagePath,
      options: { flushStrategy: FlushNone() }
    })
    try {
      const flushed = await next.flush()
      expect(flushed).toMatchObject({ _tag: "Ok", value: { recordsFlushed: 1 } })
      const records = await local.readStream("idle")
      expect(records.map((record) => new TextDecoder().decode(record.data))).toEqual(["idle-record"])
    } finally {
      await next.close()
    }
  })
})

describe("Promise facade logging", () => {
  it("writes the client's warnings to stderr and nothing to stdout", async () => {
    const exit = await run(["log", dirs.make(), local.endpoint], 20_000)
    expect(exit.code).toBe(0)
    expect(exit.stdout).toBe("flushed\n")
    expect(exit.stderr).toMatch(/level=WARN .*PutRecords failed: ResourceNotFoundException/)
  })

  it('logLevel "None" silences it', async () => {
    const exit = await run(["log", dirs.make(), local.endpoint, "None"], 20_000)
    expect(exit.code).toBe(0)
    expect(exit.stdout).toBe("flushed\n")
    expect(exit.stderr).not.toMatch(/PutRecords failed/)
  })
})
