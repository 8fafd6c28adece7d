/**
 * `effect-kinesis local`: a Kinesis on this machine (kinesalite, from `effect-kinesis/testing`) with
 * the streams asked for, until Ctrl-C. Its endpoint goes to stdout, so `put --endpoint` can be tried
 * without an AWS account.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as RecordInput from "../RecordInput.js"
import * as LocalKinesis from "../testing/LocalKinesis.js"
import { BadInput } from "./CliError.js"

/** The stream `local` creates when none is named: the one the README's examples send to. */
const defaultStream = "logs"

const options = {
  streams: Options.text("stream").pipe(
    Options.withAlias("s"),
    Options.withPseudoName("NAME"),
    Options.withDescription(`A stream to create (one shard); repeat for more. Default: ${defaultStream}.`),
    Options.repeated
  ),
  port: Options.integer("port").pipe(
    Options.withDescription("The port to listen on (127.0.0.1), 1 to 65535. Default: a free one."),
    Options.mapEffect((port) =>
      port >= 1 && port <= 65_535
        ? Effect.succeed(port)
        : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--port takes a port from 1 to 65535, got ${port}`)))
    ),
    Options.optional
  )
}

/** The `local` command. */
export const command = Command.make("local", options, ({ port, streams }) =>
  Effect.scoped(
    Effect.gen(function* () {
      const names = streams.length > 0 ? streams : [defaultStream]
      const malformed = names.find((name) => !RecordInput.streamNamePattern.test(name))
      if (malformed !== undefined) {
        return yield* new BadInput({
          message: `--stream takes 1 to 128 characters of letters, digits, '_', '.' and '-', got ${JSON.stringify(malformed)}`
        })
      }
      const local = yield* LocalKinesis.make({ streams: names, ...(Option.isSome(port) ? { port: port.value } : {}) })
      yield* Effect.sync(() => {
        process.stdout.write(`${local.endpoint}\n`)
        process.stderr.write(
          `local: Kinesis on ${local.endpoint} with ${names.join(", ")}; data is gone when it stops (Ctrl-C).\n` +
            `local: try  echo hello | AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local effect-kinesis put ` +
            `--stream ${names[0]} --region us-east-1 --endpoint ${local.endpoint}\n`
        )
      })
      return yield* Effect.never
    })
  )
).pipe(Command.withDescription("Run a local Kinesis (kinesalite) to try put against, until Ctrl-C."))
