#!/usr/bin/env node
/**
 * The `effect-kinesis` command line: `put` lines into a stream through the durable cache, `status`,
 * `flush` and `clear` a cache, and run a `local` Kinesis to try it against. Progress and errors go to
 * stderr; stdout carries only what a command is asked for (`status`, the `local` endpoint).
 *
 * @since 0.1.0
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as Cause from "effect/Cause"
import type * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import packageJson from "../../package.json" with { type: "json" }
import * as CacheCommands from "./CacheCommands.js"
import * as CliError from "./CliError.js"
import * as LocalCommand from "./LocalCommand.js"
import * as PutCommand from "./PutCommand.js"
import * as StatusLine from "./StatusLine.js"

const effectKinesis = Command.make("effect-kinesis").pipe(
  Command.withDescription("A durable pipe from lines to Amazon Kinesis Data Streams."),
  Command.withSubcommands([
    PutCommand.command,
    CacheCommands.status,
    CacheCommands.flush,
    CacheCommands.clear,
    LocalCommand.command
  ])
)

const cli = Command.run(effectKinesis, { name: "effect-kinesis", version: packageJson.version })

/** The library's own log lines (a record dropped after its retries, ...), on stderr above the status line. */
const stderrLogger = Logger.make(({ logLevel, message }) => {
  const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
  StatusLine.note(process.stderr, `effect-kinesis: ${logLevel.label.toLowerCase()}: ${text}`)
})

/** Colour codes: help keeps them only on a terminal, and not with NO_COLOR set. */
const colourCode = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g")

const plain = (args: ReadonlyArray<unknown>) => args.map((arg) => String(arg).replace(colourCode, "")).join(" ")

/**
 * The console @effect/cli writes with: help on stdout, without colour codes off a terminal; a usage
 * error on stderr as one line, `effect-kinesis: ...`, like every other failure.
 */
const cliConsole = (console: Console.Console): Console.Console => ({
  ...console,
  log: (...args) => (process.stdout.isTTY && !process.env.NO_COLOR ? console.log(...args) : console.log(plain(args))),
  error: (...args) =>
    console.error(
      `effect-kinesis: ${plain(args)
        .split("\n")
        .map((line) => line.trim())
        .filter((line) => line !== "")
        .join(" ")}`
    )
})

const environment = Layer.mergeAll(
  CliConfig.layer({ showBuiltIns: false }),
  NodeFileSystem.layer,
  NodePath.layer,
  NodeTerminal.layer,
  Logger.replace(Logger.defaultLogger, stderrLogger)
)

// The AWS SDK prints a nine-line notice about Node 22 on every run on Node 20: a shell user can't act
// on it for this tool. Setting the variable to false shows it again.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true"

// A reader of stdout or stderr that goes away (`... | head -1`) must not crash a run in the middle of
// its input: what is written after that is lost, the work goes on.
for (const output of [process.stdout, process.stderr]) output.on("error", () => undefined)

Effect.flatMap(Effect.console, (console) => Effect.withConsole(cli(process.argv), cliConsole(console))).pipe(
  Effect.catchAll((error) =>
    Effect.sync(() => {
      const line = CliError.describe(error)
      if (line !== undefined) process.stderr.write(`effect-kinesis: ${line}\n`)
      process.exitCode = CliError.exitStatus(error)
    })
  ),
  Effect.provide(environment),
  NodeRuntime.runMain({
    disablePrettyLogger: true,
    teardown: (exit, onExit) => {
      if (Exit.isSuccess(exit)) return onExit(Number(process.exitCode ?? 0))
      onExit(Cause.isInterruptedOnly(exit.cause) ? CliError.interruptedStatus : 1)
    }
  })
)
