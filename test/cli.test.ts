/**
 * The `effect-kinesis` command line, run as a user runs it: a child process with arguments and stdin,
 * against kinesalite started here, with its exit status, stdout and stderr checked.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { DeleteStreamCommand } from "@aws-sdk/client-kinesis"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type LocalKinesisServer, startLocalKinesis } from "../src/testing.js"
import { numberedLines, runCli, startCli } from "./support/cli.js"
import { tempDirs } from "./support/tempDir.js"

let local: LocalKinesisServer
const dirs = tempDirs("effect-kinesis-cli-")
let streams = 0

beforeAll(async () => {
  local = await startLocalKinesis()
})

afterAll(async () => {
  await local.dispose()
  dirs.removeAll()
})

/** A fresh stream of one shard, so that the stream's order is the order of delivery. */
const freshStream = async () => {
  const name = `cli-${process.pid}-${++streams}`
  await local.createStream(name, 1)
  return name
}

const textsOf = async (stream: string) => (await local.readStream(stream)).map((r) => new TextDecoder().decode(r.data))

/** A port nothing listens on: bound, then released. */
const closedPort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

const cacheFileIn = (dir: string) => path.join(dir, "kinesis-records-us-east-1.db")

describe("effect-kinesis --help", () => {
  it("describes every command and its options", async () => {
    const expected: Record<string, ReadonlyArray<string>> = {
      "": ["put", "status", "flush", "clear", "local"],
      put: [
        "--stream NAME",
        "--partition-key KEY",
        "--partition-key-field PATH",
        "--strict",
        "--flush-timeout DURATION",
        "--flush-interval DURATION",
        "--progress-interval DURATION",
        "--cache DIR",
        "--region REGION",
        "--endpoint URL",
        "FILE",
        "Written 500ms, 2s, 1m, 1h. Default 30s."
      ],
      status: ["--cache DIR", "--region REGION", "on stdout"],
      flush: ["--cache DIR", "--region REGION", "--endpoint URL", "--flush-timeout DURATION"],
      clear: ["--cache DIR", "--region REGION", "without sending it"],
      local: ["--stream NAME", "--port", "1 to 65535"]
    }
    const results = await Promise.all(
      Object.keys(expected).map((command) => runCli(command === "" ? ["--help"] : [command, "--help"]))
    )
    for (const [index, [command, needles]] of Object.entries(expected).entries()) {
      const result = results[index]!
      expect(result.code, `${command} --help`).toBe(0)
      for (const needle of needles) expect(result.stdout, `${command} --help`).toContain(needle)
    }
  })
})

describe("effect-kinesis put", () => {
  it("delivers 10,000 lines from stdin in order, and writes nothing to stdout", async () => {
    const stream = await freshStream()
    const cache = dirs.make()
    const input = numberedLines("line", 1, 10_000)
    const result = await runCli(
      ["put", "--stream", stream, "--partition-key", "one", "--endpoint", local.endpoint, "--cache", cache],
      input
    )
    expect(result.stderr).toMatch(/read 10,000 lines, cached 10,000; delivered 10,000/)
    expect(result.code).toBe(0)
    expect(result.stdout).toBe("")
    expect(await textsOf(stream)).toEqual(input.trimEnd().split("\n"))
    const status = await runCli(["status", "--cache", cache])
    expect(status.stdout).toContain("records: 0")
  })

  it("delivers a single line: echo hello | put", async () => {
    const stream = await freshStream()
    const result = await runCli(
      ["put", "--stream", stream, "--endpoint", local.endpoint, "--cache", dirs.make()],
      "hello\n"
    )
    expect(result.stderr).toContain("delivered 1 ")
    expect(result.code).toBe(0)
    expect(await textsOf(stream)).toEqual(["hello"])
  })

  it("sends while input still arrives; after kill -9 the next run delivers the rest, the old records first", async () => {
    const stream = await freshStream()
    const cache = dirs.make()
    const args = ["put", "--stream", stream, "--partition-key", "one", "--endpoint", local.endpoint, "--cache", cache]
    const first = startCli([...args, "--flush-interval", "200ms", "--progress-interval", "100ms"])
    first.child.stdin!.write(numberedLines("line", 1, 3000))
    // Delivered before the input has ended: batches go out while lines arrive.
    await first.awaitStderr(/cached 3,000 {2}delivered [1-9]/)
    first.child.stdin!.write(numberedLines("line", 3001, 3000))
    await first.awaitStderr(/cached 6,000/)
    first.child.kill("SIGKILL")
    expect((await first.exited).signal).toBe("SIGKILL")
    expect(first.stderr()).not.toContain("put: read")

    const second = await runCli(args, numberedLines("line", 6001, 4000))
    expect(second.code).toBe(0)
    const texts = await textsOf(stream)
    const expected = numberedLines("line", 1, 10_000).trimEnd().split("\n")
    // Nothing lost; a batch in flight at the kill may arrive twice (at least once).
    expect(new Set(texts)).toEqual(new Set(expected))
    const firstOfSecondRun = texts.indexOf("line-6001")
    expect(texts.slice(firstOfSecondRun)).toEqual(expected.slice(6000))
  })

  it("with a dead endpoint, exits 1 within the flush timeout and leaves every record cached", async () => {
    const cache = dirs.make()
    const endpoint = `http://127.0.0.1:${await closedPort()}`
    const result = await runCli(
      ["put", "--stream", "logs", "--endpoint", endpoint, "--cache", cache, "--flush-timeout", "1s"],
      numberedLines("line", 1, 100)
    )
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`100 records left in ${cacheFileIn(cache)}`)
    expect(result.stderr).toContain("ECONNREFUSED")
    // Start-up (the TypeScript loader) plus the one second of flushing, with room for a slow machine.
    expect(result.millis).toBeLessThan(15_000)
    expect((await runCli(["status", "--cache", cache])).stdout).toContain("records: 100")
  })

  it("refuses a stream that does not exist before reading a line (exit 2)", async () => {
    const cache = dirs.make()
    const result = await runCli(
      ["put", "--stream", `missing-${process.pid}`, "--endpoint", local.endpoint, "--cache", cache],
      numberedLines("line", 1, 20)
    )
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(`effect-kinesis: There is no stream missing-${process.pid} in us-east-1`)
    expect((await runCli(["status", "--cache", cache])).stdout).toContain("records: 0")
  })

  it("exits 1 when Kinesis refused records until their retries ran out, and says why on stderr", async () => {
    const stream = await freshStream()
    const run = startCli(
      ["put", "--stream", stream, "--endpoint", local.endpoint, "--cache", dirs.make(), "--progress-interval", "100ms"],
      { EFFECT_KINESIS_MAX_RETRIES: "0" }
    )
    // The stream existed when put started; it is deleted before the lines arrive.
    await run.awaitStderr(/read 0/)
    await local.sdk.send(new DeleteStreamCommand({ StreamName: stream }))
    run.child.stdin!.end(numberedLines("line", 1, 20))
    expect((await run.exited).code).toBe(1)
    expect(run.stderr()).toContain("ResourceNotFoundException")
    expect(run.stderr()).toContain("effect-kinesis: 20 records were dropped after their last retry")
    expect(run.stdout()).toBe("")
  })

  it("keeps the input order when the cache is full and waits for room", async () => {
    const stream = await freshStream()
    const input = Array.from({ length: 3000 }, (_, i) => (i % 7 === 0 ? `${i}:${"x".repeat(300)}` : `${i}`))
    const result = await runCli(
      ["put", "--stream", stream, "--partition-key", "one", "--endpoint", local.endpoint, "--cache", dirs.make()],
      `${input.join("\n")}\n`,
      { EFFECT_KINESIS_CACHE_MAX_BYTES: "20000" }
    )
    expect(result.code).toBe(0)
    expect(await textsOf(stream)).toEqual(input)
  })

  it("Ctrl-C while it flushes after the input: exit 130, and how many records wait in the cache", async () => {
    const cache = dirs.make()
    const endpoint = `http://127.0.0.1:${await closedPort()}`
    const run = startCli([
      "put",
      "--stream",
      "logs",
      "--endpoint",
      endpoint,
      "--cache",
      cache,
      "--progress-interval",
      "100ms"
    ])
    run.child.stdin!.end(numberedLines("line", 1, 5))
    await run.awaitStderr(/flushing: {2}read 5 {2}cached 5 .*last failure: No response/)
    run.child.kill("SIGINT")
    expect((await run.exited).code).toBe(130)
    expect(run.stderr()).toContain(`put: interrupted after 5 lines cached; 5 records wait in ${cacheFileIn(cache)}`)
  })

  it("flush sends what a dead-endpoint run left; clear deletes it unsent", async () => {
    const stream = await freshStream()
    const endpoint = `http://127.0.0.1:${await closedPort()}`
    const cache = dirs.make()
    const put = (lines: string) =>
      runCli(["put", "--stream", stream, "--endpoint", endpoint, "--cache", cache, "--flush-timeout", "500ms"], lines)
    expect((await put(numberedLines("kept", 1, 50))).code).toBe(1)

    const flushed = await runCli(["flush", "--endpoint", local.endpoint, "--cache", cache])
    expect(flushed.code).toBe(0)
    expect(flushed.stderr).toContain("delivered 50")
    expect((await textsOf(stream)).sort()).toEqual(numberedLines("kept", 1, 50).trimEnd().split("\n").sort())

    expect((await put(numberedLines("dropped", 1, 20))).code).toBe(1)
    const cleared = await runCli(["clear", "--cache", cache])
    expect(cleared.code).toBe(0)
    expect(cleared.stderr).toContain("deleted 20 records")
    expect((await runCli(["status", "--cache", cache])).stdout).toContain("records: 0")
  })

  it("keys each record with the field of its JSON line; a line without it is skipped, reported and fails the run", async () => {
    const stream = await freshStream()
    const cache = dirs.make()
    const input = ['{"user":{"id":"u1"},"n":1}', '{"n":2}', '{"user":{"id":7},"n":3}', "not json", ""].join("\n")
    const result = await runCli(
      ["put", "--stream", stream, "--partition-key-field", "user.id", "--endpoint", local.endpoint, "--cache", cache],
      input
    )
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("skipped stdin:2: no field user.id")
    expect(result.stderr).toContain("skipped stdin:4: not JSON")
    expect(result.stderr).toContain("2 lines were skipped")
    const records = await local.readStream(stream)
    expect(records.map((r) => [r.partitionKey, new TextDecoder().decode(r.data)])).toEqual([
      ["u1", '{"user":{"id":"u1"},"n":1}'],
      ["7", '{"user":{"id":7},"n":3}']
    ])
  })

  it("skips and counts a line over the record limit; --strict stops there, after sending the lines before it", async () => {
    const oversized = `${"x".repeat(10 * 1024 * 1024 + 1)}\n`
    const input = `before\n${oversized}after\n`
    const lenient = await freshStream()
    const skipped = await runCli(
      ["put", "--stream", lenient, "--endpoint", local.endpoint, "--cache", dirs.make()],
      input
    )
    expect(skipped.code).toBe(2)
    expect(skipped.stderr).toContain("skipped stdin:2: 10,485,761 bytes, over the record limit of 10.0 MiB")
    expect((await textsOf(lenient)).sort()).toEqual(["after", "before"])
    // Without --partition-key or --partition-key-field, each line gets a random key of its own.
    const keys = (await local.readStream(lenient)).map((record) => record.partitionKey)
    expect(new Set(keys).size).toBe(2)
    for (const key of keys) expect(key).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)

    const strict = await freshStream()
    const stopped = await runCli(
      ["put", "--stream", strict, "--strict", "--endpoint", local.endpoint, "--cache", dirs.make()],
      input
    )
    expect(stopped.code).toBe(2)
    expect(stopped.stderr).toContain(
      "stdin:2: 10,485,761 bytes, over the record limit of 10.0 MiB (--strict stops here)"
    )
    expect(await textsOf(strict)).toEqual(["before"])
  })

  it("waits with a full cache while Kinesis is away, and goes on when it is back: nothing lost, order kept", async () => {
    const stream = await freshStream()
    const input = Array.from({ length: 2000 }, (_, i) => `${i}:${"z".repeat(40)}`)
    await local.stop()
    try {
      const run = startCli(
        [
          "put",
          "--stream",
          stream,
          "--partition-key",
          "one",
          "--endpoint",
          local.endpoint,
          "--cache",
          dirs.make(),
          // A line waits at most this long for room: past the 7 s outage, short of the backoff after it.
          "--flush-timeout",
          "12s"
        ],
        { EFFECT_KINESIS_CACHE_MAX_BYTES: "20000" }
      )
      run.child.stdin!.end(`${input.join("\n")}\n`)
      // Kinesis is away long enough for the cache to fill and for flushes to back off.
      await run.awaitStderr(/Kinesis did not answer/)
      await new Promise((resolve) => setTimeout(resolve, 7000))
      await local.start()
      expect((await run.exited).code).toBe(0)
      expect(await textsOf(stream)).toEqual(input)
    } finally {
      await local.start()
    }
  })

  it("skips a line larger than the whole cache instead of waiting for room it can never have", async () => {
    const stream = await freshStream()
    const result = await runCli(
      ["put", "--stream", stream, "--partition-key", "k", "--endpoint", local.endpoint, "--cache", dirs.make()],
      `small\n${"y".repeat(2000)}\nlast\n`,
      { EFFECT_KINESIS_CACHE_MAX_BYTES: "1000" }
    )
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("skipped stdin:2: 2,001 bytes with its key, more than the whole cache holds")
    expect(await textsOf(stream)).toEqual(["small", "last"])
  })

  it("reads the files named, in order; an unreadable one stops it before anything is cached", async () => {
    const stream = await freshStream()
    const dir = dirs.make()
    const cache = path.join(dir, "cache")
    const first = path.join(dir, "a.log")
    const second = path.join(dir, "b.log")
    fs.writeFileSync(first, "a1\na2\n")
    fs.writeFileSync(second, "b1\r\nb2")

    const missing = await runCli(["put", "--stream", stream, "--cache", cache, first, path.join(dir, "missing.log")])
    expect(missing.code).toBe(2)
    expect(missing.stderr.trim().split("\n")).toHaveLength(1)
    expect(missing.stderr).toContain(`Could not read ${path.join(dir, "missing.log")} (ENOENT`)
    expect(fs.existsSync(cache)).toBe(false)

    const result = await runCli([
      "put",
      "--stream",
      stream,
      "--partition-key",
      "k",
      "--endpoint",
      local.endpoint,
      "--cache",
      cache,
      first,
      second
    ])
    expect(result.code).toBe(0)
    expect(await textsOf(stream)).toEqual(["a1", "a2", "b1", "b2"])
  })

  it("refuses malformed options with one line and exit 2, before reading anything", async () => {
    const cache = dirs.make()
    const cases: ReadonlyArray<[ReadonlyArray<string>, string]> = [
      [["--flush-timeout", "5x"], "--flush-timeout takes a duration"],
      [["--partition-key", "a", "--partition-key-field", "b"], "not both"],
      [["--region", "Not A Region"], "region must be a lowercase DNS label"]
    ]
    for (const [options, message] of cases) {
      const result = await runCli(["put", "--stream", "logs", "--cache", cache, ...options], "line\n")
      expect(result.code, options.join(" ")).toBe(2)
      expect(result.stderr, options.join(" ")).toContain(message)
    }
    const badEnvironment = await runCli(["put", "--stream", "logs", "--cache", cache], "line\n", {
      AWS_ENDPOINT_URL_KINESIS: "127.0.0.1:4567"
    })
    expect(badEnvironment.code).toBe(2)
    expect(badEnvironment.stderr).toContain("The endpoint of AWS_ENDPOINT_URL_KINESIS or AWS_ENDPOINT_URL takes a URL")
    const badStream = await runCli(["put", "--stream", "no/slashes", "--cache", cache], "line\n")
    expect(badStream.code).toBe(2)
    expect(badStream.stderr).toContain("streamName must be")
    expect(fs.readdirSync(cache)).toEqual([])
  })
})

describe("effect-kinesis local", () => {
  it("prints its endpoint on stdout; put delivers there; Ctrl-C stops put (exit 130, cache kept) and local", async () => {
    const server = startCli(["local", "--stream", "first", "--stream", "second"])
    const endpoint = await new Promise<string>((resolve, reject) => {
      server.child.stdout!.on("data", () => {
        const line = server.stdout().split("\n")[0]
        if (server.stdout().includes("\n")) resolve(line!)
      })
      server.exited.then(() => reject(new Error(`local ended: ${server.stderr()}`)))
    })
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)

    const cache = dirs.make()
    const delivered = await runCli(
      ["put", "--stream", "second", "--endpoint", endpoint, "--cache", cache],
      "to second\n"
    )
    expect(delivered.code).toBe(0)

    const interrupted = startCli([
      "put",
      "--stream",
      "first",
      "--endpoint",
      endpoint,
      "--cache",
      cache,
      "--flush-interval",
      "1h",
      "--progress-interval",
      "100ms"
    ])
    interrupted.child.stdin!.write(numberedLines("line", 1, 10))
    await interrupted.awaitStderr(/cached 10 /)
    // The running put holds the cache: status says so and fails.
    const busy = await runCli(["status", "--cache", cache])
    expect(busy.code).toBe(3)
    expect(busy.stderr).toContain(`effect-kinesis: The cache ${cacheFileIn(cache)} is in use by another process`)
    interrupted.child.kill("SIGINT")
    expect((await interrupted.exited).code).toBe(130)
    expect(interrupted.stderr()).toContain(
      `put: interrupted after 10 lines cached; 10 records wait in ${cacheFileIn(cache)}`
    )
    expect((await runCli(["status", "--cache", cache])).stdout).toContain("records: 10")

    server.child.kill("SIGINT")
    expect((await server.exited).code).toBe(130)
  })
})
