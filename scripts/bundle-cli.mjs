// Bundles the command line into dist/cli.js, the package's `effect-kinesis` bin.
//
// The CLI's own dependencies (@effect/cli, @effect/platform-node and theirs) are dev dependencies of
// this package and go into the bundle, so an app that installs effect-kinesis as a library installs
// none of them. What the library already needs stays outside: its dependencies and peer dependencies
// (effect, @effect/platform, the AWS SDK, better-sqlite3, ...) and the library's own modules, which
// the bundle imports from dist/ beside it. The licences of the bundled packages go to
// dist/cli-licenses.txt.
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as esbuild from "esbuild"

const root = fileURLToPath(new URL("..", import.meta.url))
const sourceDir = path.join(root, "src")
const cliDir = path.join(sourceDir, "cli")
const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"))
const providedPackages = [...Object.keys(manifest.dependencies), ...Object.keys(manifest.peerDependencies)]

/** The library's own modules, imported by the CLI with relative paths, are loaded from dist/ at run time. */
const libraryModulesFromDist = {
  name: "library-modules-from-dist",
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      const target = path.resolve(args.resolveDir, args.path)
      if (!target.startsWith(sourceDir + path.sep) || target.startsWith(cliDir + path.sep)) return undefined
      return { path: `./${path.relative(sourceDir, target).split(path.sep).join("/")}`, external: true }
    })
  }
}

const result = await esbuild.build({
  entryPoints: [path.join(cliDir, "main.ts")],
  outfile: path.join(root, "dist", "cli.js"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  minify: true,
  legalComments: "none",
  metafile: true,
  external: providedPackages,
  plugins: [libraryModulesFromDist],
  // Bundled CommonJS packages (yaml) call require(): an ES module has none of its own.
  banner: {
    js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);'
  }
})

const packageDirOf = (input) => {
  const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input)
  return match ? match[1] : undefined
}
const bundled = [...new Set(Object.keys(result.metafile.inputs).map(packageDirOf).filter(Boolean))].sort()
const notices = bundled.map((dir) => {
  const own = JSON.parse(fs.readFileSync(path.join(root, dir, "package.json"), "utf8"))
  const licenceFile = fs.readdirSync(path.join(root, dir)).find((name) => /^(licen[cs]e|copying)/i.test(name))
  const text = licenceFile
    ? fs.readFileSync(path.join(root, dir, licenceFile), "utf8").trim()
    : `License: ${own.license}`
  return `${own.name}@${own.version} (${own.license})\n\n${text}\n`
})
fs.writeFileSync(
  path.join(root, "dist", "cli-licenses.txt"),
  `dist/cli.js bundles these packages:\n\n${notices.join(`\n${"-".repeat(72)}\n\n`)}`
)
fs.chmodSync(path.join(root, "dist", "cli.js"), 0o755)
console.log(
  `dist/cli.js: ${fs.statSync(path.join(root, "dist", "cli.js")).size} bytes, bundling ${bundled.length} packages`
)
