/**
 * `npm run bench`: the performance benchmarks of effect-kinesis. Each prints its figures next to a
 * baseline measured in the same run. See docs/performance.md.
 */
import * as os from "node:os"
import * as endToEnd from "./endToEnd.js"
import * as flush from "./flush.js"
import * as storage from "./storage.js"

const main = async () => {
  console.log(`effect-kinesis benchmarks: Node ${process.version}, ${os.cpus().length} cores, ${os.platform()}`)
  const results: Array<boolean> = []
  const only = process.argv.slice(2)
  const wanted = (name: string) => only.length === 0 || only.includes(name)
  if (wanted("storage")) results.push(await storage.run({ records: 40_000, rounds: 2 }))
  if (wanted("flush")) results.push(await flush.run({ records: 50_000, rounds: 2 }))
  if (wanted("e2e")) results.push(await endToEnd.run({ records: 20_000, rounds: 5 }))
  console.log(results.every(Boolean) ? "\nAll targets met." : "\nSome targets were missed.")
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
