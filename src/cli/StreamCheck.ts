/**
 * Before `put` reads a line: does the stream exist, and are there credentials? A mistyped stream
 * name would otherwise have every line refused until its retries ran out, then dropped. Kinesis is
 * asked once (`DescribeStreamSummary`), for a few seconds at most: no answer (offline) or another
 * refusal (a policy that allows `PutRecords` but not `DescribeStreamSummary`) lets `put` go on and
 * cache, as it would without the check.
 *
 * @since 0.1.0
 */
import { DescribeStreamSummaryCommand, type KinesisClient as SdkClient } from "@aws-sdk/client-kinesis"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { BadInput } from "./CliError.js"

/** How long the check waits for an answer. */
const answerWithin = Duration.seconds(3)

/** What the check found: nothing to say, or a note for the user (Kinesis did not answer). */
export type Finding = Option.Option<string>

const nameOf = (cause: unknown) =>
  typeof cause === "object" && cause !== null && "name" in cause ? String(cause.name) : undefined

/** Whether Kinesis answered at all: a refusal carries the HTTP status it came with. */
const answered = (cause: unknown) =>
  typeof cause === "object" &&
  cause !== null &&
  "$metadata" in cause &&
  (cause.$metadata as { httpStatusCode?: number }).httpStatusCode !== undefined

/**
 * Fails with `BadInput` when the stream does not exist or no credentials can be found; otherwise
 * gives a note when Kinesis did not answer (a refusal for any other reason is let go silently).
 */
export const check = (sdk: SdkClient, stream: string, region: string): Effect.Effect<Finding, BadInput> =>
  Effect.tryPromise((signal) =>
    sdk.send(new DescribeStreamSummaryCommand({ StreamName: stream }), { abortSignal: signal })
  ).pipe(
    Effect.timeoutFail({
      duration: answerWithin,
      onTimeout: () => new Error(`no answer within ${Duration.format(answerWithin)}`)
    }),
    Effect.as(Option.none<string>()),
    Effect.catchAll((error) => {
      const cause = error instanceof Error && error.name === "UnknownException" ? error.cause : error
      const message = cause instanceof Error ? cause.message : String(cause)
      switch (nameOf(cause)) {
        case "ResourceNotFoundException":
          return new BadInput({ message: `There is no stream ${stream} in ${region} (${message}); nothing was read` })
        case "CredentialsProviderError":
          return new BadInput({
            message: `No AWS credentials (${message}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE; nothing was read`
          })
        default:
          return Effect.succeed(
            answered(cause)
              ? Option.none()
              : Option.some(`put: Kinesis did not answer (${message}); lines are cached and sent when it does`)
          )
      }
    })
  )
