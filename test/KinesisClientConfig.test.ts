import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, LogLevel, Option } from "effect"
import { KinesisValidationException } from "../src/Errors.js"
import { defaultStoragePath } from "../src/engine/cache/RecordStorage.js"
import { FlushInterval, FlushNone, type FlushStrategy } from "../src/FlushStrategy.js"
import {
  defaultCacheMaxBytes,
  defaultMaxRetries,
  defaultStreamConcurrency,
  fromEnv,
  type KinesisClientConfig,
  type KinesisClientOptions,
  maxRequestsPerStream,
  resolveCacheFile,
  resolveCloseOptions,
  resolveConfig,
  resolveOptions,
  resolveRegion
} from "../src/KinesisClientConfig.js"

const refused = (options: KinesisClientOptions) =>
  Effect.gen(function* () {
    const error = yield* Effect.flip(resolveOptions(options))
    expect(error).toBeInstanceOf(KinesisValidationException)
    expect(error._tag).toBe("KinesisValidationException")
    expect(error.message.length).toBeGreaterThan(0)
    return error
  })

const intervalMillis = (strategy: FlushStrategy): number => {
  if (strategy._tag !== "FlushInterval") throw new Error(`expected FlushInterval, got ${strategy._tag}`)
  return Duration.toMillis(Duration.decode(strategy.interval))
}

describe("KinesisClientConfig.resolveOptions", () => {
  it.effect("fills in the defaults: 5 MiB, 5 retries, a flush every 30 seconds", () =>
    Effect.gen(function* () {
      for (const options of [undefined, {}]) {
        const resolved = yield* resolveOptions(options)
        expect(resolved.cacheMaxBytes).toBe(5 * 1024 * 1024)
        expect(resolved.maxRetries).toBe(5)
        expect(resolved.flushStrategy._tag).toBe("FlushInterval")
        expect(intervalMillis(resolved.flushStrategy)).toBe(30_000)
        expect(Duration.toMillis(resolved.requestTimeout)).toBe(30_000)
        expect(resolved.logLevel).toBe(LogLevel.Warning)
      }
      expect(defaultCacheMaxBytes).toBe(5 * 1024 * 1024)
      expect(defaultMaxRetries).toBe(5)
    })
  )

  it.effect("keeps the values it is given", () =>
    Effect.gen(function* () {
      const resolved = yield* resolveOptions({
        cacheMaxBytes: 1,
        maxRetries: 12,
        flushStrategy: FlushInterval({ interval: "2 minutes" }),
        requestTimeout: "5 seconds"
      })
      expect(resolved.cacheMaxBytes).toBe(1)
      expect(resolved.maxRetries).toBe(12)
      expect(intervalMillis(resolved.flushStrategy)).toBe(120_000)
      expect(Duration.toMillis(resolved.requestTimeout)).toBe(5_000)
    })
  )

  it.effect("accepts maxRetries 0 (one attempt, no retry)", () =>
    Effect.gen(function* () {
      expect((yield* resolveOptions({ maxRetries: 0 })).maxRetries).toBe(0)
    })
  )

  it.effect("accepts FlushNone and intervals given as a number or a Duration", () =>
    Effect.gen(function* () {
      expect((yield* resolveOptions({ flushStrategy: FlushNone() })).flushStrategy._tag).toBe("FlushNone")
      const millis = yield* resolveOptions({ flushStrategy: FlushInterval({ interval: 1 }) })
      expect(intervalMillis(millis.flushStrategy)).toBe(1)
      const duration = yield* resolveOptions({ flushStrategy: FlushInterval({ interval: Duration.seconds(3) }) })
      expect(intervalMillis(duration.flushStrategy)).toBe(3_000)
    })
  )

  for (const cacheMaxBytes of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
    it.effect(`refuses cacheMaxBytes ${cacheMaxBytes}`, () =>
      Effect.gen(function* () {
        const error = yield* refused({ cacheMaxBytes })
        expect(error.message).toMatch(/cacheMaxBytes/)
      })
    )
  }

  it.effect("refuses a cacheMaxBytes that is not a number", () =>
    Effect.gen(function* () {
      yield* refused({ cacheMaxBytes: "5242880" as unknown as number })
    })
  )

  for (const maxRetries of [-1, 1.5, Number.NaN]) {
    it.effect(`refuses maxRetries ${maxRetries}`, () =>
      Effect.gen(function* () {
        const error = yield* refused({ maxRetries })
        expect(error.message).toMatch(/maxRetries/)
      })
    )
  }

  const badIntervals: ReadonlyArray<Duration.DurationInput> = [
    0,
    -1,
    "0 seconds",
    Duration.zero,
    "soon" as Duration.DurationInput,
    undefined as unknown as Duration.DurationInput
  ]
  for (const interval of badIntervals) {
    it.effect(`refuses FlushInterval with interval ${String(interval)}`, () =>
      Effect.gen(function* () {
        const error = yield* refused({ flushStrategy: FlushInterval({ interval }) })
        expect(error.message).toMatch(/interval/)
      })
    )
  }

  it.effect("refuses a flush strategy that is neither FlushInterval nor FlushNone", () =>
    Effect.gen(function* () {
      yield* refused({ flushStrategy: { _tag: "FlushSometimes" } as unknown as FlushStrategy })
      yield* refused({ flushStrategy: {} as unknown as FlushStrategy })
    })
  )

  it.effect("takes any maxBackoff longer than zero, shorter than the interval too (no backoff then)", () =>
    Effect.gen(function* () {
      const maxBackoffs: ReadonlyArray<Duration.DurationInput | undefined> = [
        undefined,
        "1 millis",
        1,
        "10 minutes",
        Duration.infinity
      ]
      for (const maxBackoff of maxBackoffs) {
        const resolved = yield* resolveOptions({ flushStrategy: FlushInterval({ interval: "1 second", maxBackoff }) })
        expect(resolved.flushStrategy).toEqual(FlushInterval({ interval: "1 second", maxBackoff }))
      }
    })
  )

  const badBackoffs: ReadonlyArray<Duration.DurationInput> = [
    0,
    "0 seconds",
    Duration.zero,
    -1,
    "soon" as Duration.DurationInput
  ]
  for (const maxBackoff of badBackoffs) {
    it.effect(`refuses FlushInterval with maxBackoff ${String(maxBackoff)}`, () =>
      Effect.gen(function* () {
        const error = yield* refused({ flushStrategy: FlushInterval({ interval: "1 second", maxBackoff }) })
        expect(error.message).toMatch(/maxBackoff/)
      })
    )
  }

  it.effect("countThrottling defaults to true and keeps true or false", () =>
    Effect.gen(function* () {
      expect((yield* resolveOptions({})).countThrottling).toBe(true)
      expect((yield* resolveOptions({ countThrottling: true })).countThrottling).toBe(true)
      expect((yield* resolveOptions({ countThrottling: false })).countThrottling).toBe(false)
    })
  )

  for (const countThrottling of ["false", 0, 1, null]) {
    it.effect(`refuses countThrottling ${JSON.stringify(countThrottling)}`, () =>
      Effect.gen(function* () {
        const error = yield* refused({ countThrottling: countThrottling as unknown as boolean })
        expect(error.message).toMatch(/countThrottling/)
      })
    )
  }

  it.effect("drain defaults to false and keeps true or false", () =>
    Effect.gen(function* () {
      expect((yield* resolveOptions({})).drain).toBe(false)
      expect((yield* resolveOptions({ drain: true })).drain).toBe(true)
      expect((yield* resolveOptions({ drain: false })).drain).toBe(false)
    })
  )

  for (const drain of ["true", 1, 0, null]) {
    it.effect(`refuses drain ${JSON.stringify(drain)}`, () =>
      Effect.gen(function* () {
        const error = yield* refused({ drain: drain as unknown as boolean })
        expect(error.message).toMatch(/drain/)
      })
    )
  }

  it.effect("streamConcurrency defaults to 4 and keeps any positive integer, 1 included", () =>
    Effect.gen(function* () {
      expect((yield* resolveOptions({})).streamConcurrency).toBe(4)
      expect(defaultStreamConcurrency).toBe(4)
      expect((yield* resolveOptions({ streamConcurrency: 1 })).streamConcurrency).toBe(1)
      expect((yield* resolveOptions({ streamConcurrency: 64 })).streamConcurrency).toBe(64)
    })
  )

  for (const streamConcurrency of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "2", null]) {
    it.effect(`refuses streamConcurrency ${String(streamConcurrency)}`, () =>
      Effect.gen(function* () {
        const error = yield* refused({ streamConcurrency: streamConcurrency as unknown as number })
        expect(error.message).toMatch(/streamConcurrency/)
      })
    )
  }

  it.effect("recordTtl: none by default; any duration longer than zero is kept", () =>
    Effect.gen(function* () {
      expect((yield* resolveOptions({})).recordTtl).toBeUndefined()
      expect((yield* resolveOptions({ recordTtl: 1 })).recordTtl).toEqual(Duration.millis(1))
      expect((yield* resolveOptions({ recordTtl: "7 days" })).recordTtl).toEqual(Duration.days(7))
    })
  )

  for (const recordTtl of [0, "0 seconds", -1, "never", null]) {
    it.effect(`refuses recordTtl ${String(recordTtl)}`, () =>
      Effect.gen(function* () {
        const error = yield* refused({ recordTtl: recordTtl as Duration.DurationInput })
        expect(error).toBeInstanceOf(KinesisValidationException)
        expect(error.message).toMatch(/recordTtl/)
      })
    )
  }

  const badTimeouts: ReadonlyArray<Duration.DurationInput> = [0, "0 seconds", -5, "never" as Duration.DurationInput]
  for (const requestTimeout of badTimeouts) {
    it.effect(`refuses requestTimeout ${String(requestTimeout)}`, () =>
      Effect.gen(function* () {
        const error = yield* refused({ requestTimeout })
        expect(error.message).toMatch(/requestTimeout/)
      })
    )
  }
})

describe("KinesisClientConfig.resolveCloseOptions", () => {
  it.effect("no options or no flushTimeout: no final flush", () =>
    Effect.gen(function* () {
      expect(yield* resolveCloseOptions(undefined)).toEqual(Option.none())
      expect(yield* resolveCloseOptions({})).toEqual(Option.none())
    })
  )

  it.effect("takes any duration longer than zero, 1 millisecond and infinity included", () =>
    Effect.gen(function* () {
      expect(yield* resolveCloseOptions({ flushTimeout: 1 })).toEqual(Option.some(Duration.millis(1)))
      expect(yield* resolveCloseOptions({ flushTimeout: "10 seconds" })).toEqual(Option.some(Duration.seconds(10)))
      expect(yield* resolveCloseOptions({ flushTimeout: Duration.infinity })).toEqual(Option.some(Duration.infinity))
    })
  )

  const badFlushTimeouts: ReadonlyArray<unknown> = [0, "0 seconds", -1, "soon", null, true]
  for (const flushTimeout of badFlushTimeouts) {
    it.effect(`refuses flushTimeout ${String(flushTimeout)}`, () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(resolveCloseOptions({ flushTimeout: flushTimeout as Duration.DurationInput }))
        expect(error).toBeInstanceOf(KinesisValidationException)
        expect(error.message).toMatch(/flushTimeout/)
      })
    )
  }
})

describe("KinesisClientConfig.resolveCacheFile", () => {
  it("puts the cache in storagePath under a name that includes the region", () => {
    const file = resolveCacheFile({ region: "eu-west-3", storagePath: "/var/cache/app" })
    expect(path.dirname(file)).toBe("/var/cache/app")
    expect(path.basename(file)).toContain("eu-west-3")
    expect(resolveCacheFile({ region: "us-east-1", storagePath: "/var/cache/app" })).not.toBe(file)
  })

  it("defaults to a per-user data directory", () => {
    const file = resolveCacheFile({ region: "us-east-1" })
    expect(path.isAbsolute(file)).toBe(true)
    expect(file).toContain("effect-kinesis")
    expect(path.basename(file)).toContain("us-east-1")
  })

  it.runIf(process.platform === "linux")(
    "defaults to $XDG_DATA_HOME/effect-kinesis, else ~/.local/share/effect-kinesis",
    () => {
      const saved = process.env.XDG_DATA_HOME
      try {
        process.env.XDG_DATA_HOME = "/srv/data"
        expect(defaultStoragePath()).toBe("/srv/data/effect-kinesis")
        delete process.env.XDG_DATA_HOME
        expect(defaultStoragePath()).toBe(path.join(os.homedir(), ".local", "share", "effect-kinesis"))
      } finally {
        if (saved === undefined) delete process.env.XDG_DATA_HOME
        else process.env.XDG_DATA_HOME = saved
      }
    }
  )

  it("keeps a hostile region inside storagePath", () => {
    const file = resolveCacheFile({ region: "../../etc/passwd", storagePath: "/data" })
    expect(path.dirname(file)).toBe("/data")
  })
})

describe("KinesisClientConfig: logLevel", () => {
  it.effect("takes None, Error, Warning, Info and Debug", () =>
    Effect.gen(function* () {
      const levels = {
        None: LogLevel.None,
        Error: LogLevel.Error,
        Warning: LogLevel.Warning,
        Info: LogLevel.Info,
        Debug: LogLevel.Debug
      }
      for (const [name, level] of Object.entries(levels)) {
        expect((yield* resolveOptions({ logLevel: name as keyof typeof levels })).logLevel).toBe(level)
      }
    })
  )

  for (const logLevel of ["warning", "Trace", "All", "Verbose", "", 3]) {
    it.effect(`refuses logLevel ${JSON.stringify(logLevel)}`, () =>
      Effect.gen(function* () {
        const error = yield* refused({ logLevel: logLevel as unknown as KinesisClientOptions["logLevel"] })
        expect(error.message).toMatch(/logLevel/)
      })
    )
  }
})

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("KinesisClientConfig.resolveRegion", () => {
  it.effect("the region given wins over the environment", () =>
    Effect.gen(function* () {
      expect(yield* resolveRegion("eu-west-1").pipe(withEnv({ AWS_REGION: "us-east-1" }))).toBe("eu-west-1")
    })
  )

  it.effect("left out or empty: AWS_REGION, then AWS_DEFAULT_REGION", () =>
    Effect.gen(function* () {
      for (const region of [undefined, ""]) {
        const both = { AWS_REGION: "ap-south-1", AWS_DEFAULT_REGION: "sa-east-1" }
        expect(yield* resolveRegion(region).pipe(withEnv(both))).toBe("ap-south-1")
        expect(yield* resolveRegion(region).pipe(withEnv({ AWS_DEFAULT_REGION: "sa-east-1" }))).toBe("sa-east-1")
        const emptyRegion = { AWS_REGION: "", AWS_DEFAULT_REGION: "sa-east-1" }
        expect(yield* resolveRegion(region).pipe(withEnv(emptyRegion))).toBe("sa-east-1")
      }
    })
  )

  it.effect("no region anywhere is a KinesisValidationException that says where it looked", () =>
    Effect.gen(function* () {
      for (const region of [undefined, ""]) {
        const error = yield* Effect.flip(
          resolveRegion(region).pipe(withEnv({ AWS_REGION: "", AWS_DEFAULT_REGION: "" }))
        )
        expect(error).toBeInstanceOf(KinesisValidationException)
        expect(error.message).toMatch(/AWS_REGION/)
        expect(error.message).toMatch(/AWS_DEFAULT_REGION/)
      }
    })
  )

  for (const region of [
    "not a region!",
    "US-EAST-1",
    "-us-east-1",
    "us-east-1-",
    "us_east_1",
    "eu/west",
    "a".repeat(64),
    42,
    null
  ]) {
    it.effect(`refuses region ${JSON.stringify(region)}`, () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(resolveRegion(region).pipe(withEnv({ AWS_REGION: "us-east-1" })))
        expect(error).toBeInstanceOf(KinesisValidationException)
        expect(error.message).toMatch(/region/)
      })
    )
  }

  it.effect("a malformed AWS_REGION is refused too, not skipped", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(resolveRegion(undefined).pipe(withEnv({ AWS_REGION: "Not A Region" })))
      expect(error).toBeInstanceOf(KinesisValidationException)
    })
  )

  it.effect("takes any lowercase DNS label, such as a local or future region", () =>
    Effect.gen(function* () {
      for (const region of ["us-gov-west-1", "cn-north-1", "local", "a", "x".repeat(63)]) {
        expect(yield* resolveRegion(region)).toBe(region)
      }
    })
  )
})

describe("KinesisClientConfig: requestsPerStream", () => {
  it.effect("defaults to 1 and keeps any integer from 1 to 10", () =>
    Effect.gen(function* () {
      expect(maxRequestsPerStream).toBe(10)
      expect((yield* resolveOptions({})).requestsPerStream).toBe(1)
      for (const requestsPerStream of [1, 4, 10]) {
        expect((yield* resolveOptions({ requestsPerStream })).requestsPerStream).toBe(requestsPerStream)
      }
      expect((yield* resolveOptions({ drain: true, requestsPerStream: 10 })).requestsPerStream).toBe(10)
    })
  )

  for (const requestsPerStream of [0, 11, 1.5, -1, Number.NaN, Number.POSITIVE_INFINITY, "2", null]) {
    it.effect(`refuses requestsPerStream ${JSON.stringify(requestsPerStream) ?? String(requestsPerStream)}`, () =>
      Effect.gen(function* () {
        const error = yield* refused({ requestsPerStream: requestsPerStream as unknown as number })
        expect(error.message).toMatch(/requestsPerStream/)
      })
    )
  }

  it.effect("fromEnv reads EFFECT_KINESIS_REQUESTS_PER_STREAM; a value out of range is refused by resolveOptions", () =>
    Effect.gen(function* () {
      const config = yield* fromEnv.pipe(withEnv({ EFFECT_KINESIS_REQUESTS_PER_STREAM: "3" }))
      expect(config.options?.requestsPerStream).toBe(3)
      expect((yield* resolveOptions(config.options)).requestsPerStream).toBe(3)

      const unset = yield* fromEnv.pipe(withEnv({}))
      expect(unset.options?.requestsPerStream).toBeUndefined()
      expect((yield* resolveOptions(unset.options)).requestsPerStream).toBe(1)

      const tooMany = yield* fromEnv.pipe(withEnv({ EFFECT_KINESIS_REQUESTS_PER_STREAM: "11" }))
      const error = yield* refused(tooMany.options ?? {})
      expect(error.message).toMatch(/requestsPerStream/)
    })
  )

  it.effect("fromEnv fails on an EFFECT_KINESIS_REQUESTS_PER_STREAM that is not an integer", () =>
    Effect.gen(function* () {
      for (const value of ["two", "1.5"]) {
        const error = yield* Effect.flip(fromEnv.pipe(withEnv({ EFFECT_KINESIS_REQUESTS_PER_STREAM: value })))
        expect(error).not.toBeInstanceOf(KinesisValidationException)
        expect(String(error)).toMatch(/EFFECT_KINESIS_REQUESTS_PER_STREAM/)
      }
    })
  )
})

describe("mistakes refused at create", () => {
  const base = { region: "us-east-1", storagePath: "/tmp/effect-kinesis-unused" }
  const configRefused = (config: unknown) =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(resolveConfig(config as KinesisClientConfig))
      expect(error).toBeInstanceOf(KinesisValidationException)
      return error.message
    })

  it.effect.each([
    ["endpoint", "kinesisClientConfig.endpoint"],
    ["requestHandler", "kinesisClientConfig.requestHandler"],
    ["maxAttempts", "kinesisClientConfig.maxAttempts"],
    ["credentials", "credentialsProvider at the top level"],
    ["cacheMaxBytes", "options.cacheMaxBytes"],
    ["flushStrategy", "options.flushStrategy"]
  ] as const)("a top-level %s is refused, naming where it belongs (%s)", ([key, home]) =>
    Effect.gen(function* () {
      const message = yield* configRefused({ ...base, [key]: 1 })
      expect(message).toContain(`"${key}" does not belong in the client configuration`)
      expect(message).toContain(home)
    })
  )

  it.effect("an unknown top-level key is refused, listing the keys", () =>
    Effect.gen(function* () {
      const message = yield* configRefused({ ...base, regoin: "eu-west-1" })
      expect(message).toContain('Unknown key "regoin" in the client configuration')
      expect(message).toContain("region, credentialsProvider, storagePath")
    })
  )

  it.effect("every known top-level key is accepted", () =>
    Effect.gen(function* () {
      const resolved = yield* resolveConfig({
        ...base,
        credentialsProvider: { accessKeyId: "a", secretAccessKey: "b" },
        options: {},
        kinesisClientConfig: { endpoint: "http://127.0.0.1:4567" },
        http: { version: "1.1", maxSockets: 4 },
        engine: "caller"
      })
      expect(resolved.region).toBe("us-east-1")
    })
  )

  it.effect("in options: an unknown key, a top-level key and an SDK key are refused, naming where they belong", () =>
    Effect.gen(function* () {
      const unknown = yield* refused({ flushInterval: "10 seconds" } as unknown as KinesisClientOptions)
      expect(unknown.message).toContain('Unknown key "flushInterval" in options')
      expect(unknown.message).toContain("cacheMaxBytes, maxRetries, flushStrategy")
      const topLevel = yield* refused({ region: "us-east-1" } as unknown as KinesisClientOptions)
      expect(topLevel.message).toContain('"region" does not belong in options: it belongs in region at the top level')
      const sdk = yield* refused({ endpoint: "http://127.0.0.1:1" } as unknown as KinesisClientOptions)
      expect(sdk.message).toContain("it belongs in kinesisClientConfig.endpoint")
    })
  )

  it.effect.each([
    "127.0.0.1:4567",
    "localhost:4567/",
    "kinesis.us-east-1.amazonaws.com",
    "ftp://127.0.0.1:21",
    "/kinesis",
    ""
  ])("an endpoint %j that is not an absolute http(s) URL is refused", (endpoint) =>
    Effect.gen(function* () {
      const message = yield* configRefused({ ...base, kinesisClientConfig: { endpoint } })
      expect(message).toContain("kinesisClientConfig.endpoint must be an absolute http(s) URL")
      expect(message).toContain(JSON.stringify(endpoint))
    })
  )

  it.effect("http and https endpoints, as text or URL, are accepted", () =>
    Effect.gen(function* () {
      for (const endpoint of [
        "http://127.0.0.1:4567",
        "https://kinesis.us-east-1.amazonaws.com",
        new URL("http://[::1]:4567/")
      ]) {
        const resolved = yield* resolveConfig({ ...base, kinesisClientConfig: { endpoint: endpoint as string } })
        expect(resolved.kinesisClientConfig?.endpoint).toBe(endpoint)
      }
    })
  )
})
