/**
 * Records from a Node stream: an object-mode `Writable` of `RecordInput`s over the producer. The
 * records waiting in the stream's buffer are handed over together (`recordAll`), and the stream
 * takes more only once they are settled, so a fast source waits for the cache.
 *
 * @internal
 */
import { Writable } from "node:stream"
import type { Producer } from "./Producer.js"

/** A `Writable` that stores each record written; `error` carries the first refusal. */
export const recordWritable = (producer: Producer, highWaterMark: number): Writable => {
  const store = (records: ReadonlyArray<unknown>, done: (error?: Error | null) => void) =>
    producer.recordAll(records, (outcomes) => done(outcomes.find((outcome) => outcome !== undefined) ?? null))
  return new Writable({
    objectMode: true,
    highWaterMark,
    write: (record, _encoding, done) => store([record], done),
    writev: (chunks, done) =>
      store(
        chunks.map(({ chunk }) => chunk),
        done
      )
  })
}
