/**
 * A group of records as it crosses to the engine: packed side by side into a few `ArrayBuffer`s
 * that are transferred (moved, not copied). Each record is three 32-bit lengths (stream name,
 * partition key, data) followed by their bytes; no record straddles two buffers.
 *
 * @internal
 */
import type { ValidRecord } from "../RecordInput.js"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Bytes of the fixed part of a packed record: the three lengths. */
const header = 12

/** The first buffer of a group; each next one doubles, up to `largestChunk`. */
const smallestChunk = 4 * 1024
const largestChunk = 256 * 1024

/** Bytes one record takes packed. Stream names are ASCII and `size` is data plus the key's UTF-8 bytes. */
const packedSize = (record: ValidRecord): number => header + record.streamName.length + record.size

/**
 * The buffers of one group being filled: `add` copies a record's bytes once, into the current
 * buffer or a new one. A group of one small record costs one small allocation; a busy group grows
 * into buffers of 256 KiB.
 */
export class GroupBuffer {
  /** The buffers so far, the last one being filled. */
  readonly chunks: Array<ArrayBuffer> = []
  /** How many bytes of each buffer hold records. */
  readonly lengths: Array<number> = []
  private bytes = new Uint8Array(0)
  private view = new DataView(new ArrayBuffer(0))
  private used = 0

  /** Copies the record into the group. */
  add(record: ValidRecord): void {
    const needed = packedSize(record)
    if (this.used + needed > this.bytes.byteLength) this.grow(needed)
    const keyBytes = record.size - record.data.byteLength
    let at = this.used
    this.view.setUint32(at, record.streamName.length, true)
    this.view.setUint32(at + 4, keyBytes, true)
    this.view.setUint32(at + 8, record.data.byteLength, true)
    at += header
    at += encoder.encodeInto(record.streamName, this.bytes.subarray(at)).written
    at += encoder.encodeInto(record.partitionKey, this.bytes.subarray(at, at + keyBytes)).written
    this.bytes.set(record.data, at)
    this.used = at + record.data.byteLength
    this.lengths[this.lengths.length - 1] = this.used
  }

  private grow(needed: number) {
    const next = Math.min(largestChunk, smallestChunk * 2 ** this.chunks.length)
    const chunk = new ArrayBuffer(Math.max(next, needed))
    this.chunks.push(chunk)
    this.lengths.push(0)
    this.bytes = new Uint8Array(chunk)
    this.view = new DataView(chunk)
    this.used = 0
  }
}

/** The records of a packed group (`lengths[i]` bytes of `chunks[i]` used), in order; their data are views of the buffers. */
export const unpack = (chunks: ReadonlyArray<ArrayBuffer>, lengths: ReadonlyArray<number>): Array<ValidRecord> => {
  const records: Array<ValidRecord> = []
  for (const [i, buffer] of chunks.entries()) {
    const view = new DataView(buffer)
    for (let at = 0; at < lengths[i]!; ) {
      const streamBytes = view.getUint32(at, true)
      const keyBytes = view.getUint32(at + 4, true)
      const dataBytes = view.getUint32(at + 8, true)
      at += header
      const streamName = decoder.decode(new Uint8Array(buffer, at, streamBytes))
      at += streamBytes
      const partitionKey = decoder.decode(new Uint8Array(buffer, at, keyBytes))
      at += keyBytes
      records.push({
        streamName,
        partitionKey,
        data: new Uint8Array(buffer, at, dataBytes),
        size: keyBytes + dataBytes
      })
      at += dataBytes
    }
  }
  return records
}
