/**
 * effect-kinesis: a durable, offline-first Amazon Kinesis Data Streams producer built on Effect.
 *
 * @since 0.1.0
 */
export * from "./Errors.js"
export * as Errors from "./Errors.js"
export * as RecordStorage from "./engine/cache/RecordStorage.js"
export * as FlushEngine from "./engine/flush/FlushEngine.js"
export * as FlushScheduler from "./engine/flush/FlushScheduler.js"
export * as RecordSender from "./engine/send/RecordSender.js"
export * as FlushStrategy from "./FlushStrategy.js"
export { FlushInterval, FlushNone } from "./FlushStrategy.js"
export * as KinesisClient from "./KinesisClient.js"
export * as KinesisClientConfig from "./KinesisClientConfig.js"
export * as RecordInput from "./RecordInput.js"
