/**
 * The AWS SDK speaks HTTP/2 to Kinesis by default; local Kinesis servers (kinesalite) speak only
 * HTTP/1.1, and AWS takes either.
 *
 * @internal
 */
import * as http from "node:http"
import { NodeHttpHandler } from "@smithy/node-http-handler"

/** An HTTP/1.1 request handler for the AWS SDK, with keep-alive connections. */
export const http1Handler = (): NodeHttpHandler =>
  new NodeHttpHandler({ httpAgent: new http.Agent({ keepAlive: true }) })
