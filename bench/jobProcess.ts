/**
 * Runs one job of jobs.ts, given as JSON in the first argument, in this process, and sends what it
 * measured to the parent over IPC.
 */
import { type Job, runJob } from "./jobs.js"

const job = JSON.parse(process.argv[2]!) as Job
const result = await runJob(job)
process.send?.(result, () => process.exit(0))
