/**
 * `effect-kinesis local`: a Kinesis on this machine (kinesalite, from `effect-kinesis/testing`) with
 * the streams asked for, until Ctrl-C. Its endpoint goes to stdout, so `put --endpoint` can be tried
 * without an AWS account.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as LocalKinesis from "../testing/LocalKinesis.js"

/** The stream `local` creates when none is named: the one the README's examples send to. */
export const defaultStream = "logs"

const options = {
  streams: Options.text("stream").pipe(
    Options.withAlias("s"),
    Options.withPseudoName("NAME"),
    Options.withDescription(`A stream to create (one shard); repeat for more. Default: ${defaultStream}.`),
    Options.repeated
  ),
  port: Options.integer("port").pipe(
    Options.withDescription("The port to listen on (127.0.0.1). Default: a free one."),
    Options.optional
  )
}

/** The `local` command. */
export const command = Command.make("local", options, ({ port, streams }) =>
  Effect.scoped(
    Effect.gen(function* () {
      const names = streams.length > 0 ? streams : [defaultStream]
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
