/**
 * Cuts a byte stream into lines, one record each, without holding more than one record's worth of
 * an over-long line: once a line passes `maxBytes` its bytes are let go and only counted.
 *
 * @since 0.1.0
 */

/** A piece of input between two newlines: a line short enough to be a record, or one too long. */
export type Line =
  | { readonly _tag: "Line"; readonly number: number; readonly bytes: Uint8Array }
  | { readonly _tag: "Oversized"; readonly number: number; readonly byteLength: number }

/** Takes chunks in input order and gives the lines they complete; `end` gives the last, unterminated one. */
export interface LineSplitter {
  readonly push: (chunk: Uint8Array) => ReadonlyArray<Line>
  readonly end: () => ReadonlyArray<Line>
}

const newline = 0x0a
const carriageReturn = 0x0d

/**
 * A splitter for lines of at most `maxBytes` bytes (the newline, and a `\r` before it, not counted).
 * Lines are numbered from 1; empty lines are numbered but not given. A line that fits in one chunk is
 * a view of that chunk, not a copy.
 */
export const make = (maxBytes: number): LineSplitter => {
  let number = 0
  let pieces: Array<Uint8Array> = []
  let pending = 0
  let oversized = false

  const take = (piece: Uint8Array) => {
    pending += piece.byteLength
    if (oversized) return
    if (pending > maxBytes + 1) {
      // One byte of slack: a trailing "\r" is cut only once the newline arrives.
      oversized = true
      pieces = []
    } else if (piece.byteLength > 0) {
      pieces.push(piece)
    }
  }

  const finish = (): Line | undefined => {
    number += 1
    const whole = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces)
    const wasOversized = oversized
    const length = pending
    pieces = []
    pending = 0
    oversized = false
    const withoutReturn = whole.byteLength > 0 && whole[whole.byteLength - 1] === carriageReturn
    const bytes = withoutReturn ? whole.subarray(0, whole.byteLength - 1) : whole
    if (wasOversized || bytes.byteLength > maxBytes) {
      return { _tag: "Oversized", number, byteLength: length }
    }
    return bytes.byteLength === 0 ? undefined : { _tag: "Line", number, bytes }
  }

  return {
    push: (chunk) => {
      const lines: Array<Line> = []
      let start = 0
      for (let end = chunk.indexOf(newline); end !== -1; end = chunk.indexOf(newline, start)) {
        take(chunk.subarray(start, end))
        const line = finish()
        if (line) lines.push(line)
        start = end + 1
      }
      take(chunk.subarray(start))
      return lines
    },
    end: () => {
      if (pending === 0) return []
      const line = finish()
      return line ? [line] : []
    }
  }
}
