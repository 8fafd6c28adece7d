/**
 * SDK settings for a local server: HTTP/1.1 with keep-alive (the acknowledging server and kinesalite
 * do not speak HTTP/2), dummy credentials, no SDK retries. Loads nothing else, so that a measured
 * process holds only what it measures.
 */
import * as http from "node:http"
import type { KinesisClientConfig } from "@aws-sdk/client-kinesis"
import { NodeHttpHandler } from "@smithy/node-http-handler"

/** Dummy credentials: the local servers check that requests are signed, not by whom. */
export const credentials = { accessKeyId: "AKIDLOCAL", secretAccessKey: "local-secret" }

/** An HTTP/1.1 request handler with keep-alive. */
export const http1Handler = () => new NodeHttpHandler({ httpAgent: new http.Agent({ keepAlive: true }) })

/** SDK settings for a server at `endpoint`. */
export const sdkConfig = (endpoint: string): Partial<KinesisClientConfig> => ({
  endpoint,
  region: "us-east-1",
  credentials,
  requestHandler: http1Handler(),
  maxAttempts: 1
})
