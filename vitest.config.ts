import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const source = (file: string) => fileURLToPath(new URL(`./src/${file}`, import.meta.url))

export default defineConfig({
  // Tests written as an app would write them import the package by name; they run on the sources.
  resolve: {
    alias: [
      { find: /^effect-kinesis$/, replacement: source("index.ts") },
      { find: /^effect-kinesis\/promise$/, replacement: source("Promise.ts") },
      { find: /^effect-kinesis\/testing$/, replacement: source("testing.ts") }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The AWS SDK warns on every start that its 2027 releases will need Node 22; nothing to act on here.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" }
  }
})
