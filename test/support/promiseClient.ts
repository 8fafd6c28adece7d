/**
 * Helpers for tests of the Promise facade (`effect-kinesis/promise`).
 */
import { expect } from "@effect/vitest"
import { AmplifyKinesisClient, type KinesisClientConfig, KinesisStorageException } from "../../src/Promise.js"

/**
 * Expects `create` to reject with `errorClass` within a second. A client that opens after all is
 * closed at once and reported as "opened" (a whole client in a failure message is unreadable).
 */
export const expectCreateRefused = async (
  config: KinesisClientConfig,
  errorClass: abstract new (...args: never) => Error = KinesisStorageException
) => {
  const start = performance.now()
  const outcome = await AmplifyKinesisClient.create(config).then(
    async (client) => {
      await client.close()
      return "opened"
    },
    (error: unknown) => error
  )
  expect(performance.now() - start).toBeLessThan(1000)
  expect(outcome).toBeInstanceOf(errorClass)
}
