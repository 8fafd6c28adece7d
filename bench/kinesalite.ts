/**
 * Starts kinesalite in a child process (see kinesaliteProcess.ts) and gives the SDK settings that
 * reach it.
 */
import { fork } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { CreateStreamCommand, DescribeStreamCommand, KinesisClient } from "@aws-sdk/client-kinesis"
import { http1Handler, sdkConfig } from "./sdk.js"

/** A kinesalite server in a child process. */
export interface KinesaliteProcess {
  readonly endpoint: string
  /** Creates a one-shard stream and waits until it is active. */
  readonly createStream: (name: string) => Promise<void>
  readonly stop: () => Promise<void>
}

/** Starts kinesalite in a child process. */
export const startKinesalite = async (): Promise<KinesaliteProcess> => {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "kinesaliteProcess.ts")
  const child = fork(script, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] })
  const port = await new Promise<number>((resolve, reject) => {
    child.once("message", (message) => resolve((message as { port: number }).port))
    child.once("error", reject)
    child.once("exit", (code) => reject(new Error(`kinesalite exited with code ${code}`)))
  })
  const endpoint = `http://127.0.0.1:${port}`
  const sdk = new KinesisClient({ ...sdkConfig(endpoint), requestHandler: http1Handler() })
  return {
    endpoint,
    createStream: async (name) => {
      await sdk.send(new CreateStreamCommand({ StreamName: name, ShardCount: 1 }))
      for (;;) {
        const described = await sdk.send(new DescribeStreamCommand({ StreamName: name }))
        if (described.StreamDescription?.StreamStatus === "ACTIVE") return
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    },
    stop: () =>
      new Promise<void>((resolve) => {
        sdk.destroy()
        child.once("exit", () => resolve())
        child.disconnect()
      })
  }
}
