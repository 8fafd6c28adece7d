/**
 * The client as a Node process sees it, in child processes: an open client never keeps the process
 * alive by itself (what it cached is there for the next client), and the Promise facade logs to
 * stderr, at or above `logLevel`, never to stdout.
 */
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { AmplifyKinesisClient, FlushNone } from "../src/Promise.js"
import { type LocalKinesisServer, startLocalKinesis } from "../src/testing.js"
import { runFixture as run } from "./support/fixtureProcess.js"
import { tempDirs } from "./support/tempDir.js"

const fixture = fileURLToPath(new URL("./fixtures/facade-client.ts", import.meta.url))

let local: LocalKinesisServer
const dirs = tempDirs("effect-kinesis-process-")

beforeAll(async () => {
  local = await startLocalKinesis({ streams: ["idle"] })
})

afterAll(async () => {
  await local.dispose()
  dirs.removeAll()
})

describe("process lifetime", () => {
  it("a process whose only work left is an open client exits by itself, and the record waits in the cache", async () => {
    const storagePath = dirs.make()
    // The automatic flush is due in 30 seconds; the process must not wait for it.
    const exit = await run(fixture, ["idle", storagePath, local.endpoint], 20_000)
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
    const exit = await run(fixture, ["log", dirs.make(), local.endpoint], 20_000)
    expect(exit.code).toBe(0)
    expect(exit.stdout).toBe("flushed\n")
    expect(exit.stderr).toMatch(/level=WARN .*PutRecords failed: ResourceNotFoundException/)
  })

  it('logLevel "None" silences it', async () => {
    const exit = await run(fixture, ["log", dirs.make(), local.endpoint, "None"], 20_000)
    expect(exit.code).toBe(0)
    expect(exit.stdout).toBe("flushed\n")
    expect(exit.stderr).not.toMatch(/PutRecords failed/)
  })
})
