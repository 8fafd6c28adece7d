/**
 * Benchmark 1: inserting 1 KiB records through `RecordStorage` into a temporary file, one caller at a
 * time and 256 callers at once, next to raw better-sqlite3 on the same schema and pragmas.
 */
import * as path from "node:path"
import * as Effect from "effect/Effect"
import type { ValidRecord } from "../src/RecordInput.js"
import * as RecordStorage from "../src/RecordStorage.js"
import { openRaw, prepareInsert } from "./rawSqlite.js"
import { best, type Line, type Measurement, makeRecords, printTable, tempDir, timed } from "./report.js"

const rawInsert = async (filename: string, records: ReadonlyArray<ValidRecord>, perTransaction: number) => {
  const db = await openRaw(filename)
  try {
    const insert = prepareInsert(db)
    const insertMany = db.transaction((rows: ReadonlyArray<ValidRecord>) => {
      const now = Date.now()
      for (const r of rows) insert(r, now)
    })
    const name =
      perTransaction === 1 ? "raw sqlite, 1 insert per transaction" : "raw sqlite, 500 inserts per transaction"
    return await timed(name, records.length, async () => {
      if (perTransaction === 1) {
        for (const r of records) insert(r, Date.now())
      } else {
        for (let i = 0; i < records.length; i += perTransaction) insertMany(records.slice(i, i + perTransaction))
      }
    })
  } finally {
    db.close()
  }
}

const storageInsert = (filename: string, records: ReadonlyArray<ValidRecord>, concurrency: number) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const storage = yield* RecordStorage.make({ filename, cacheMaxBytes: Number.MAX_SAFE_INTEGER })
        const name =
          concurrency === 1
            ? "RecordStorage.insert, 1 caller at a time"
            : `RecordStorage.insert, ${concurrency} callers`
        const start = performance.now()
        if (concurrency === 1) {
          for (const record of records) yield* storage.insert(record)
        } else {
          yield* Effect.forEach(records, storage.insert, { concurrency, discard: true })
        }
        const run: Measurement = { name, records: records.length, seconds: (performance.now() - start) / 1000 }
        const stored = yield* storage.count
        if (stored !== records.length) throw new Error(`stored ${stored} of ${records.length} records`)
        return run
      })
    )
  )

/** Runs benchmark 1 (each figure the best of `rounds` runs on a fresh file); returns whether its targets were met. */
export const run = async (options: { readonly records: number; readonly rounds: number }): Promise<boolean> => {
  const records = makeRecords(options.records, "bench")
  const temp = tempDir("effect-kinesis-bench-storage-")
  let file = 0
  const fresh = () => path.join(temp.dir, `run-${file++}.db`)
  try {
    // Warm-up: JIT, prepared statements, the file system.
    const warm = records.slice(0, 2_000)
    await rawInsert(fresh(), warm, 1)
    await rawInsert(fresh(), warm, 500)
    await storageInsert(fresh(), warm, 1)
    await storageInsert(fresh(), warm, 256)

    const rawOne: Array<Measurement> = []
    const rawBatch: Array<Measurement> = []
    const oneAtATime: Array<Measurement> = []
    const concurrent: Array<Measurement> = []
    for (let round = 0; round < options.rounds; round++) {
      rawOne.push(await rawInsert(fresh(), records, 1))
      oneAtATime.push(await storageInsert(fresh(), records, 1))
      rawBatch.push(await rawInsert(fresh(), records, 500))
      concurrent.push(await storageInsert(fresh(), records, 256))
    }
    const lines: Array<Line> = [
      { kind: "baseline", run: best(rawOne) },
      { kind: "measured", run: best(oneAtATime), baseline: best(rawOne), target: 0.5 },
      { kind: "baseline", run: best(rawBatch) },
      { kind: "measured", run: best(concurrent), baseline: best(rawBatch), target: 0.5 }
    ]
    return printTable(`1. Storage insert, 1 KiB records (best of ${options.rounds} runs, fresh file each)`, lines)
  } finally {
    temp.remove()
  }
}
