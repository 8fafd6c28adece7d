/**
 * Crash safety across processes: a child process records into a cache file and acknowledges each
 * record on stdout once `record()` returned Ok; the parent kills it with SIGKILL while it is still
 * recording. A new client on the same cache then opens at once (the dead owner's lock is gone) and
 * flushes to kinesalite until the cache is empty: every acknowledged record is in the stream.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { AmplifyKinesisClient, FlushNone, type KinesisClientConfig } from "../src/Promise.js"
import { type LocalKinesisServer, startLocalKinesis } from "../src/testing.js"
import { expectCreateRefused } from "./support/promiseClient.js"
import { tempDirs } from "./support/tempDir.js"

const fixture = fileURLToPath(new URL("./fixtures/crash-writer.ts", import.meta.url))
const projectRoot = fileURLToPath(new URL("..", import.meta.url))

let local: LocalKinesisServer
const dirs = tempDirs("effect-kinesis-crash-")
const children: Array<ChildProcess> = []

beforeAll(async () => {
  local = await startLocalKinesis()
})

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  await local.dispose()
  dirs.removeAll()
})

const configFor = (storagePath: string): KinesisClientConfig => ({
  region: "us-east-1",
  storagePath,
  credentialsProvider: local.clientConfig.credentials!,
  options: { flushStrategy: FlushNone() },
  kinesisClientConfig: local.clientConfig
})

interface Writer {
  readonly child: ChildProcess
  /** Every acknowledgement line, including those still in the pipe when the child died. */
  readonly acknowledged: Array<number>
  /** Resolves when `count` acknowledgements have arrived. */
  readonly awaitAcknowledged: (count: number) => Promise<void>
  /** Resolves when the child has exited and its output is fully read. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly stderr: () => string
  readonly sawDone: () => boolean
}

const startWriter = (storagePath: string, stream: string, maxRecords: number, writers: number): Writer => {
  const args = [fixture, storagePath, stream, String(maxRecords), String(writers)]
  const child = spawn(process.execPath, ["--import", "tsx", ...args], {
    cwd: projectRoot,
    stdio: ["ignore", "pipe", "pipe"]
  })
  children.push(child)
  const acknowledged: Array<number> = []
  const waiters: Array<{ readonly count: number; readonly resolve: () => void; readonly reject: (e: Error) => void }> =
    []
  let done = false
  let stderr = ""
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk
  })
  const lines = readline.createInterface({ input: child.stdout! })
  lines.on("line", (line) => {
    if (line === "done") {
      done = true
      return
    }
    acknowledged.push(Number(line))
    for (const waiter of waiters.filter((w) => acknowledged.length >= w.count)) {
      waiters.splice(waiters.indexOf(waiter), 1)
      waiter.resolve()
    }
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("close", (code, signal) => {
      for (const waiter of waiters.splice(0)) {
        waiter.reject(
          new Error(`the writer exited (${code ?? signal}) after ${acknowledged.length} records: ${stderr}`)
        )
      }
      resolve({ code, signal })
    })
  })
  return {
    child,
    acknowledged,
    awaitAcknowledged: (count) =>
      acknowledged.length >= count
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            waiters.push({ count, resolve, reject })
          }),
    exited,
    stderr: () => stderr,
    sawDone: () => done
  }
}

const idOf = (data: Uint8Array) => {
  const text = new TextDecoder().decode(data)
  const match = /^record-(\d+)$/.exec(text)
  if (!match) throw new Error(`unexpected record in the stream: ${text}`)
  return Number(match[1])
}

describe("crash safety", () => {
  it.each([1, 64])(
    "every record acknowledged before kill -9 reaches Kinesis through the next client (%i writers)",
    async (writers) => {
      const storagePath = dirs.make()
      const stream = `crash-${process.pid}-${writers}`
      await local.createStream(stream, 2)

      const writer = startWriter(storagePath, stream, 1_000_000, writers)
      await writer.awaitAcknowledged(100)

      // While the writer lives, it owns the cache: another client is refused, quickly.
      await expectCreateRefused(configFor(storagePath))

      await writer.awaitAcknowledged(600)
      writer.child.kill("SIGKILL")
      const { signal } = await writer.exited
      // It died of the kill, in the middle of recording.
      expect(signal).toBe("SIGKILL")
      expect(writer.sawDone()).toBe(false)
      const acknowledged = writer.acknowledged
      expect(acknowledged.length).toBeGreaterThanOrEqual(600)
      // Each record was acknowledged once; with one writer, in order.
      expect(new Set(acknowledged).size).toBe(acknowledged.length)
      if (writers === 1) expect(acknowledged).toEqual(acknowledged.map((_, i) => i))

      // The dead owner does not block the next client: the file lock went with the process, and a
      // held lock would refuse this create at once (the cache never waits for a lock).
      const successor = await AmplifyKinesisClient.create(configFor(storagePath))
      try {
        let flushes = 0
        let delivered = 0
        for (;;) {
          const result = await successor.flush()
          if (result._tag === "Error") throw result.error
          if (result.value.recordsFlushed === 0) break
          delivered += result.value.recordsFlushed
          flushes++
          expect(flushes).toBeLessThan(1000)
        }
        expect(await successor.clearCache()).toEqual({ _tag: "Ok", value: { recordsCleared: 0 } })

        const ids = (await local.readStream(stream)).map((record) => idOf(record.data))
        expect(ids).toHaveLength(delivered)
        const inStream = new Set(ids)
        const missing = acknowledged.filter((id) => !inStream.has(id))
        expect(missing).toEqual([])
        // Nothing was invented or sent twice: besides the acknowledged records, the stream holds at most
        // the ones whose commit the kill came after but whose acknowledgement it came before (at most
        // one per writer), and only records that were started (ids below the highest started).
        expect(ids.length).toBe(inStream.size)
        const unacknowledged = [...inStream].filter((id) => !acknowledged.includes(id))
        expect(unacknowledged.length).toBeLessThanOrEqual(writers)
        const started = Math.max(...acknowledged) + writers
        expect(unacknowledged.every((id) => id <= started)).toBe(true)
      } finally {
        await successor.close()
      }
    }
  )
})
