/**
 * The order a flush takes streams in: name order, except that streams whose last request got no
 * response go last, the one that got it most recently at the very end. A stream that times out on
 * every flush therefore can't keep the streams after it from being sent.
 *
 * @internal
 */

/** The flush engine's memory of which streams got no response, and the order it gives streams. */
export interface StreamOrder {
  /** `streams` (in name order, as the cache lists them) in the order to send them. */
  readonly sort: (streams: ReadonlyArray<string>) => ReadonlyArray<string>
  /** Notes that a request for `stream` got no response: the stream goes last from now on. */
  readonly noResponse: (stream: string) => void
  /** Notes that `stream` got an answer: it takes its place in name order again. */
  readonly answered: (stream: string) => void
}

/** A stream order with no stream held back yet. */
export const make = (): StreamOrder => {
  /** Streams that got no response, with a count that grows with each one: the larger, the more recent. */
  const lagging = new Map<string, number>()
  let count = 0
  return {
    sort: (streams) => {
      const present = new Set(streams)
      // A stream whose records are gone (delivered by another client, cleared) is forgotten.
      for (const stream of lagging.keys()) if (!present.has(stream)) lagging.delete(stream)
      const last = streams.filter((stream) => lagging.has(stream))
      last.sort((a, b) => lagging.get(a)! - lagging.get(b)!)
      return [...streams.filter((stream) => !lagging.has(stream)), ...last]
    },
    noResponse: (stream) => {
      lagging.set(stream, count++)
    },
    answered: (stream) => {
      lagging.delete(stream)
    }
  }
}
