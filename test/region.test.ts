/**
 * The region at create: the one given, else AWS_REGION, else AWS_DEFAULT_REGION; none, or one that
 * is not a lowercase DNS label, fails `make` / `create` with KinesisValidationException (never a
 * defect, never a TypeError), before anything is opened.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, Exit, Option } from "effect"
import { KinesisValidationException } from "../src/Errors.js"
import { FlushNone } from "../src/FlushStrategy.js"
import * as KinesisClient from "../src/KinesisClient.js"
import { AmplifyKinesisClient } from "../src/Promise.js"
import { scopedTempDir, tempDirs } from "./support/tempDir.js"

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("KinesisClient.make: region", () => {
  it.scoped("left out, it comes from AWS_REGION and names the cache file", () =>
    Effect.gen(function* () {
      const dir = yield* scopedTempDir("effect-kinesis-region-")
      const client = yield* KinesisClient.make({ storagePath: dir, options: { flushStrategy: FlushNone() } }).pipe(
        withEnv({ AWS_REGION: "eu-central-1" })
      )
      expect(yield* client.clearCache()).toEqual({ recordsCleared: 0 })
      expect(fs.readdirSync(dir)).toContain("kinesis-records-eu-central-1.db")
      expect(yield* Effect.promise(() => client.kinesisClient.config.region())).toBe("eu-central-1")
    })
  )

  const refused: ReadonlyArray<readonly [string, unknown]> = [
    ["left out, with no region in the environment", undefined],
    ["empty, with no region in the environment", ""],
    ["not a DNS label", "not a region!"],
    ["upper case", "US-EAST-1"]
  ]
  for (const [name, region] of refused) {
    it.scoped(`${name}: KinesisValidationException, a failure and not a defect, and no cache file`, () =>
      Effect.gen(function* () {
        const dir = yield* scopedTempDir("effect-kinesis-region-")
        const exit = yield* Effect.exit(
          Effect.scoped(KinesisClient.make({ region: region as string, storagePath: dir })).pipe(withEnv({}))
        )
        expect(Exit.isFailure(exit) && Cause.isFailType(exit.cause)).toBe(true)
        const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        expect(Option.getOrUndefined(failure)).toBeInstanceOf(KinesisValidationException)
        expect(fs.readdirSync(dir)).toEqual([])
      })
    )
  }
})

describe("AmplifyKinesisClient.create: region", () => {
  const dirs = tempDirs("effect-kinesis-region-")
  const saved = { AWS_REGION: process.env.AWS_REGION, AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION }
  afterEach(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
    dirs.removeAll()
  })

  it("left out, it comes from AWS_DEFAULT_REGION when AWS_REGION is not set", async () => {
    delete process.env.AWS_REGION
    process.env.AWS_DEFAULT_REGION = "ap-northeast-2"
    const dir = dirs.make()
    const client = await AmplifyKinesisClient.create({ storagePath: dir, options: { flushStrategy: FlushNone() } })
    await client.close()
    expect(fs.existsSync(path.join(dir, "kinesis-records-ap-northeast-2.db"))).toBe(true)
  })

  for (const region of [undefined, "", "not a region!"]) {
    it(`rejects with KinesisValidationException for region ${JSON.stringify(region)} and no region in the environment`, async () => {
      delete process.env.AWS_REGION
      delete process.env.AWS_DEFAULT_REGION
      const dir = dirs.make()
      const outcome = await AmplifyKinesisClient.create({
        ...(region === undefined ? {} : { region }),
        storagePath: dir
      }).then(
        async (client) => {
          await client.close()
          return "opened"
        },
        (error: unknown) => error
      )
      expect(outcome).toBeInstanceOf(KinesisValidationException)
      expect(fs.readdirSync(dir)).toEqual([])
    })
  }
})
