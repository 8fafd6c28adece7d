/**
 * effect-kinesis/testing: what apps that compose `KinesisClient` need to test it and to develop
 * against a Kinesis on their own machine.
 *
 * - `MemoryKinesis`: an in-memory Kinesis (a `RecordSender`) that keeps what it accepted and can be
 *   told to throttle, refuse or not answer, and `MemoryKinesis.layerClient()`, a real client over
 *   it and a SQLite cache in memory.
 * - `LocalKinesis`: kinesalite in process (an optional peer dependency), scoped, with its streams
 *   created and a ready client configuration (endpoint, HTTP/1.1 handler, dummy credentials).
 *   `startLocalKinesis` is the same server with a Promise API.
 *
 * @since 0.1.0
 */
export * as LocalKinesis from "./testing/LocalKinesis.js"
export {
  credentials,
  http1Handler,
  LocalKinesisError,
  type LocalKinesisServer,
  type StreamRecord,
  startLocalKinesis
} from "./testing/LocalKinesis.js"
export * as MemoryKinesis from "./testing/MemoryKinesis.js"
