/**
 * Benchmark `cli`: the command line as a user runs it, with no target. Lines of 100 bytes are piped
 * from a file to the built bin, `node dist/cli.js put --partition-key bench` (the group runs `npm run
 * build` first when dist/cli.js is missing or older than a file of src/), and its wall time is
 * measured from the spawn to the exit, start-up included:
 * - to kinesalite in a process of its own (a fresh one per run, as in `kinesalite`), until every
 *   line is delivered (exit 0); next to raw SDK `PutRecords` of the same lines, 500 per call, to a
 *   kinesalite of the same kind;
 * - to a dead endpoint with `--flush-timeout 500ms`, so only the caching is done (exit 1, the 500 ms
 *   included); next to raw better-sqlite3 inserting the same lines, 256 per transaction.
 * Peak RSS and CPU time of the CLI process come from GNU `/usr/bin/time` (left out without it).
 * Start-up is `node dist/cli.js --version` next to a bare `node -e 0`, and a `put` of one line to the
 * dead endpoint with `--flush-timeout 1ms` shows the fixed cost of a run (medians of 5). (Not one line
 * to kinesalite: a `put` whose input ends during its first flush may exit 1 with the line undelivered.)
 */
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { onFreshServer } from "./kinesaliteEndToEnd.js"
import { openRaw, rawInsert, rawPutRecords, rawSdk } from "./raw.js"
import type { RecordSource } from "./records.js"
import {
  type Line,
  type Measurement,
  mebibytes,
  median,
  middle,
  printChecks,
  printTable,
  rate,
  tempDir,
  timed
} from "./report.js"
import { credentials } from "./sdk.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const bin = path.join(root, "dist", "cli.js")

/** Runs `npm run build` unless dist/cli.js is newer than every file of src/. */
const buildIfStale = () => {
  const built = fs.existsSync(bin) ? fs.statSync(bin).mtimeMs : 0
  const sources = fs.readdirSync(path.join(root, "src"), { recursive: true, encoding: "utf8" })
  if (sources.every((file) => fs.statSync(path.join(root, "src", file)).mtimeMs < built)) return
  console.log("\ncli: dist/cli.js is missing or older than src/: npm run build")
  execFileSync("npm", ["run", "build"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] })
}

const partitionKey = "bench"
const lineBytes = 100
const filler = "x".repeat(lineBytes)

/** Line `i`: a JSON object of 100 bytes, without its newline. */
const line = (i: number) => {
  const start = `{"i":${i},"user":"user-${i % 1000}","msg":"`
  return `${start}${filler.slice(0, lineBytes - start.length - 2)}"}`
}

/** The same lines as records, for the raw baselines. */
const lineSource = (streamName: string, count: number): RecordSource => ({
  count,
  at: (i) => ({ streamName, partitionKey, data: Buffer.from(line(i)) })
})

/** A run of the bin: wall time from spawn to exit; peak RSS and CPU (user + system) when measured. */
interface BinRun extends Measurement {
  readonly peakRssBytes?: number
  readonly cpuSeconds?: number
}

const gnuTime = "/usr/bin/time"
const hasGnuTime = fs.existsSync(gnuTime)

/**
 * Runs `node <args>` (under GNU time when there is one) with `input` piped to its stdin; throws
 * unless it exits with `expect.status` and, when asked, its stderr matches `expect.stderr`.
 */
const runNode = (
  name: string,
  records: number,
  args: ReadonlyArray<string>,
  expect: { readonly status: number; readonly stderr?: RegExp },
  input?: string
): Promise<BinRun> => {
  const command = [process.execPath, ...args]
  if (hasGnuTime) command.unshift(gnuTime, "-f", "time: %M KiB %U %S")
  const env = {
    ...process.env,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_REGION: "us-east-1"
  }
  const start = performance.now()
  const child = spawn(command[0]!, command.slice(1), { env, stdio: [input ? "pipe" : "ignore", "ignore", "pipe"] })
  if (input) fs.createReadStream(input).pipe(child.stdin!)
  let stderr = ""
  child.stderr!.setEncoding("utf8").on("data", (text: string) => {
    stderr += text
  })
  let seconds = 0
  child.once("exit", () => {
    seconds = (performance.now() - start) / 1000
  })
  return new Promise((resolve, reject) => {
    child.once("error", reject)
    child.once("close", (status) => {
      if (status !== expect.status || (expect.stderr && !expect.stderr.test(stderr))) {
        return reject(
          new Error(`${name}: expected exit ${expect.status} and ${expect.stderr}, got ${status}:\n${stderr}`)
        )
      }
      const time = /^time: (\d+) KiB ([\d.]+) ([\d.]+)$/m.exec(stderr)
      resolve({
        name,
        records,
        seconds,
        ...(time && { peakRssBytes: Number(time[1]) * 1024, cpuSeconds: Number(time[2]) + Number(time[3]) })
      })
    })
  })
}

/** `put` of the `count` lines of `file` to `endpoint`, expecting `summary` in its last line and `status`. */
const put = async (
  name: string,
  file: string,
  count: number,
  endpoint: string,
  expect: { readonly status: number; readonly summary: string },
  extra: ReadonlyArray<string> = []
): Promise<BinRun> => {
  const cache = tempDir("effect-kinesis-bench-cli-")
  try {
    const args = [bin, "put", "--stream", "bench", "--partition-key", partitionKey, "--endpoint", endpoint]
    const summary = new RegExp(`^put: read .*${expect.summary} ${count.toLocaleString("en-US")}\\b`, "m")
    return await runNode(name, count, [...args, "--cache", cache.dir, ...extra], { ...expect, stderr: summary }, file)
  } finally {
    cache.remove()
  }
}

const rawSqlite = async (count: number) => {
  const temp = tempDir("effect-kinesis-bench-cli-raw-")
  const db = openRaw(path.join(temp.dir, "cache.db"))
  try {
    return await timed("raw sqlite, 256 inserts per transaction", count, () =>
      rawInsert(db, lineSource("bench", count), 256)
    )
  } finally {
    db.close()
    temp.remove()
  }
}

/** Of 5 runs, the one of median wall time. */
const medianOf5 = async (run: () => Promise<BinRun>): Promise<BinRun> => {
  const runs: Array<BinRun> = []
  for (let i = 0; i < 5; i++) runs.push(await run())
  return runs.sort((a, b) => a.seconds - b.seconds)[2]!
}

const ms = (seconds: number) => `${(seconds * 1000).toFixed(0)} ms`
const rss = (runs: ReadonlyArray<BinRun>) =>
  hasGnuTime ? mebibytes(middle(runs.map((r) => r.peakRssBytes!))) : "n/a (no /usr/bin/time)"
const cpu = (runs: ReadonlyArray<BinRun>) =>
  hasGnuTime ? `${middle(runs.map((r) => r.cpuSeconds!)).toFixed(2)} s` : "n/a (no /usr/bin/time)"

/** Runs the benchmark (medians of `rounds`); it has no target and always counts as met. */
export const run = async (options: { readonly lines: number; readonly rounds: number }): Promise<boolean> => {
  buildIfStale()
  const input = tempDir("effect-kinesis-bench-cli-input-")
  try {
    const file = path.join(input.dir, "lines.txt")
    fs.writeFileSync(file, Array.from({ length: options.lines }, (_, i) => `${line(i)}\n`).join(""))
    const oneLine = path.join(input.dir, "one.txt")
    fs.writeFileSync(oneLine, `${line(0)}\n`)
    const node = await medianOf5(() => runNode("node -e 0", 0, ["-e", "0"], { status: 0 }))
    const version = await medianOf5(() => runNode("--version", 0, [bin, "--version"], { status: 0 }))
    const dead = "http://127.0.0.1:1"
    const delivered = { status: 0, summary: "delivered" }
    const cached = { status: 1, summary: "cached" }
    const timeout = (duration: string) => ["--flush-timeout", duration]
    const single = await medianOf5(() => put("cli put of one line", oneLine, 1, dead, cached, timeout("1ms")))
    const raws: Array<Measurement> = []
    const puts: Array<BinRun> = []
    const sqlites: Array<Measurement> = []
    const cacheOnly: Array<BinRun> = []
    for (let round = 0; round < options.rounds; round++) {
      raws.push(
        await onFreshServer(async (endpoint, stream) => {
          const sdk = rawSdk(endpoint)
          try {
            const source = lineSource(stream, options.lines)
            return await timed("raw SDK PutRecords, 500 per call", options.lines, () => rawPutRecords(sdk, source))
          } finally {
            sdk.destroy()
          }
        })
      )
      const putTo = (endpoint: string) =>
        put("cli put to kinesalite, until delivered", file, options.lines, endpoint, delivered)
      puts.push(await onFreshServer(putTo))
      sqlites.push(await rawSqlite(options.lines))
      const name = "cli put to a dead endpoint: cache only"
      cacheOnly.push(await put(name, file, options.lines, dead, cached, timeout("500ms")))
    }
    const shares = (runs: ReadonlyArray<Measurement>, baselines: ReadonlyArray<Measurement>) =>
      runs.map((r, i) => rate(r) / rate(baselines[i]!))
    const lines: Array<Line> = [
      { kind: "baseline", run: median(raws) },
      { kind: "measured", run: median(puts), baseline: median(raws), runs: shares(puts, raws) },
      { kind: "baseline", run: median(sqlites) },
      { kind: "measured", run: median(cacheOnly), baseline: median(sqlites), runs: shares(cacheOnly, sqlites) }
    ]
    const runs = options.rounds === 1 ? "one run" : `median of ${options.rounds}`
    printTable(
      `cli. node dist/cli.js put, ${options.lines.toLocaleString("en-US")} lines of 100 bytes piped in, start-up included (${runs}; no target)`,
      lines
    )
    printChecks([
      {
        figure: "start-up: node dist/cli.js --version (median of 5)",
        value: ms(version.seconds),
        baseline: `node -e 0: ${ms(node.seconds)}`,
        target: ""
      },
      {
        figure: "put of one line, dead endpoint, --flush-timeout 1ms (median of 5)",
        value: ms(single.seconds),
        baseline: `--version: ${ms(version.seconds)}`,
        target: ""
      },
      {
        figure: "peak RSS: put to kinesalite / cache only",
        value: `${rss(puts)} / ${rss(cacheOnly)}`,
        baseline: `--version: ${rss([version])}`,
        target: ""
      },
      {
        figure: "CPU, all threads: put to kinesalite / cache only",
        value: `${cpu(puts)} / ${cpu(cacheOnly)}`,
        baseline: `--version: ${cpu([version])}, one line: ${cpu([single])}`,
        target: ""
      }
    ])
    return true
  } finally {
    input.remove()
  }
}
