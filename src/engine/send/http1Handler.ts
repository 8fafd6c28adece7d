/**
 * The AWS SDK speaks HTTP/2 to Kinesis by default; local Kinesis servers (kinesalite) speak only
 * HTTP/1.1, and AWS takes either.
 *
 * @internal
 */
import * as http from "node:http"
import * as https from "node:https"
import { NodeHttpHandler, type NodeHttpHandlerOptions } from "@smithy/node-http-handler"

/** The settings of `http1Handler`; every one is optional. */
export interface Http1Options {
  /** The most sockets open at once per host, for `http:` and `https:` each. Default: Node's, no limit. */
  readonly maxSockets?: number | undefined
  /**
   * Further settings of the handler (`connectionTimeout`, `requestTimeout`, `socketTimeout`, ...). The
   * agents are always this module's own.
   */
  readonly handlerOptions?: Omit<NodeHttpHandlerOptions, "httpAgent" | "httpsAgent"> | undefined
}

/**
 * An HTTP/1.1 request handler for the AWS SDK, with keep-alive connections over `http.Agent` and
 * `https.Agent`, capped at `maxSockets` per host when given.
 *
 * @example
 * new KinesisClient({ endpoint: "http://127.0.0.1:4567", requestHandler: http1Handler() })
 */
export const http1Handler = (options: Http1Options = {}): NodeHttpHandler => {
  const agentOptions: http.AgentOptions =
    options.maxSockets === undefined ? { keepAlive: true } : { keepAlive: true, maxSockets: options.maxSockets }
  return new NodeHttpHandler({
    ...options.handlerOptions,
    httpAgent: new http.Agent(agentOptions),
    httpsAgent: new https.Agent(agentOptions)
  })
}
