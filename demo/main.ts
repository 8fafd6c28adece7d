/**
 * The effect-kinesis demo (`npm start`): records events through the Promise facade while Kinesis
 * goes away and comes back, then reads the stream back and checks that every acknowledged event
 * arrived.
 *
 * Runs against kinesalite in this process unless KINESIS_ENDPOINT or KINESIS_STREAM is set (see
 * demo/target.ts). DEMO_EVENTS (default 20000) and DEMO_RATE (events a second, default 2500) size it.
 * Exits with 1 when an acknowledged event is missing from the stream.
 */
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { AmplifyKinesisClient, FlushNone } from "../src/Promise.js"
import { drain, startFlushing } from "./flusher.js"
import { count, type Progress, startProgress } from "./progress.js"
import { type RecordingPlan, recordEvents } from "./recorder.js"
import { makeStats, type Stats } from "./stats.js"
import { printSummary, summarize } from "./summary.js"
import { openTarget, type Target } from "./target.js"

// The AWS SDK warns on Node < 22 that its releases after January 2027 will need Node 22; this
// environment variable is the SDK's own switch for that one warning.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true"

const positiveInt = (value: string | undefined, fallback: number): number => {
  const n = Number(value)
  return Number.isSafeInteger(n) && n > 0 ? n : fallback
}

const createClient = (target: Target, storagePath: string) =>
  AmplifyKinesisClient.create({
    region: target.region,
    credentialsProvider: target.credentials,
    storagePath,
    options: {
      cacheMaxBytes: 64 * 1024 * 1024, // 20,000 events of ~110 bytes need about 2.2 MB
      flushStrategy: FlushNone() // the demo flushes by hand so it can count every outcome
    },
    kinesisClientConfig: target.clientConfig,
    ...(target.http ? { http: target.http } : {})
  })

/** Flushes in the background while recording; the outage goes from 35% to 65% of the events. */
const recordThroughOutage = async (
  client: AmplifyKinesisClient,
  target: Target,
  plan: Omit<RecordingPlan, "milestones">,
  stats: Stats,
  progress: Progress,
  elapsed: () => number
) => {
  const flusher = startFlushing(client, stats, target.flushEveryMillis)
  const goOffline = async () => {
    await target.goOffline(client)
    stats.phase = "offline"
    stats.offlineFrom = elapsed()
    progress.note("Kinesis is unreachable: flushes fail, record() goes on, the cache grows")
  }
  const goOnline = async () => {
    await target.goOnline(client)
    stats.phase = "online"
    stats.offlineTo = elapsed()
    progress.note("Kinesis is back: the backlog drains")
  }
  const acknowledged = await recordEvents(
    client,
    {
      ...plan,
      milestones: [
        { at: Math.round(plan.total * 0.35), run: goOffline },
        { at: Math.round(plan.total * 0.65), run: goOnline }
      ]
    },
    stats
  )
  await flusher.stop()
  return acknowledged
}

const main = async (): Promise<number> => {
  const total = positiveInt(process.env.DEMO_EVENTS, 20_000)
  const perSecond = positiveInt(process.env.DEMO_RATE, 2_500)
  const runId = randomUUID().slice(0, 8)
  const target = await openTarget()
  const storagePath = fs.mkdtempSync(path.join(os.tmpdir(), "effect-kinesis-demo-"))
  console.log(`Sending to ${target.description}`)
  console.log(`Cache in ${storagePath}; recording ${count(total)} events at ${count(perSecond)}/s (run ${runId})\n`)
  const client = await createClient(target, storagePath)
  const stats = makeStats()
  const startedAt = performance.now()
  const since = new Date(Date.now() - 60_000)
  const elapsed = () => performance.now() - startedAt
  const progress = startProgress(stats, total, startedAt)
  try {
    const plan = { runId, streamName: target.streamName, total, perSecond }
    const acknowledged = await recordThroughOutage(client, target, plan, stats, progress, elapsed)
    stats.phase = "draining"
    if (!(await drain(client, stats, 60_000))) progress.note("The cache did not drain within 60 s")
    stats.phase = "reading back"
    const stream = await target.readStream(since)
    progress.finish()
    const summary = summarize(runId, acknowledged, stream, stats, elapsed())
    printSummary(summary, stats)
    return summary.lost > 0 || summary.refused > 0 ? 1 : 0
  } finally {
    await client.close()
    await target.dispose()
    fs.rmSync(storagePath, { recursive: true, force: true })
  }
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    console.error(error)
    process.exitCode = 1
  }
)
