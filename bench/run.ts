/**
 * `npm run bench`: the performance benchmarks of effect-kinesis, through its public API. Each prints
 * its figures next to a baseline measured in the same run. `npm run bench -- e2e record` runs only
 * the groups named; `BENCH_QUICK=1` makes every run small, to check that the benchmarks work. See
 * docs/performance.md.
 */
import * as os from "node:os"
import * as cli from "./cli.js"
import * as endToEnd from "./endToEnd.js"
import * as eventLoop from "./eventLoop.js"
import * as kinesalite from "./kinesaliteEndToEnd.js"
import * as million from "./million.js"
import * as recording from "./recording.js"
import { quick } from "./report.js"
import * as slow from "./slowServer.js"

const groups: ReadonlyArray<readonly [string, () => Promise<boolean>]> = [
  ["e2e", () => endToEnd.run(quick ? { records: 20_000, rounds: 1 } : { records: 100_000, rounds: 3 })],
  ["slow", () => slow.run(quick ? { records: 10_000, rounds: 1 } : { records: 50_000, rounds: 3 })],
  [
    "record",
    () =>
      recording.run(
        quick
          ? { concurrent: 10_000, oneAtATime: 5_000, rounds: 1 }
          : { concurrent: 40_000, oneAtATime: 20_000, rounds: 3 }
      )
  ],
  ["eld", () => eventLoop.run(quick ? { seconds: 1, rounds: 1 } : { seconds: 3, rounds: 3 })],
  ["million", () => million.run({ records: quick ? 100_000 : 1_000_000 })],
  ["kinesalite", () => kinesalite.run(quick ? { records: 5_000, rounds: 1 } : { records: 20_000, rounds: 3 })],
  ["cli", () => cli.run(quick ? { lines: 5_000, rounds: 1 } : { lines: 50_000, rounds: 1 })]
]

const main = async () => {
  const only = process.argv.slice(2)
  const unknown = only.filter((name) => !groups.some(([group]) => group === name))
  if (unknown.length > 0)
    throw new Error(`No benchmark named ${unknown.join(", ")}: pick from ${groups.map(([g]) => g).join(", ")}`)
  console.log(
    `effect-kinesis benchmarks: Node ${process.version}, ${os.cpus().length} cores, ${os.platform()}, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}${quick ? " (BENCH_QUICK: small runs)" : ""}`
  )
  const start = performance.now()
  const results: Array<boolean> = []
  for (const [name, run] of groups) if (only.length === 0 || only.includes(name)) results.push(await run())
  console.log(
    `\n${results.every(Boolean) ? "All targets met." : "Some targets were missed."} (${((performance.now() - start) / 1000).toFixed(0)} s)`
  )
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
