#!/usr/bin/env node
/**
 * Entry point of the `ocigen` program. When invoked as `ocigen-generator`
 * (the systemd generator link; also in the single binary) it behaves as
 * `ocigen generate`.
 *
 * No top-level await: the same entry is bundled as ESM (dist/ocigen.mjs) and
 * as CommonJS for the single executable (dist/ocigen), which Node runs as CJS.
 *
 * Settings: built here once from the environment (src/settings.ts); the
 * command line passes them down to the engines as options.
 *
 * Start-up: `--version` is answered here; a plain `generate` command line
 * (what systemd runs the generator with, see src/cli/generate-argv.ts) loads
 * only the generator, without commander; everything else loads the CLI with
 * a dynamic import (esbuild keeps bundled modules behind one unevaluated
 * until then) and runs it through `runLazy`, which loads only the verb group
 * the command line names (see src/cli/program.ts). The generator's own
 * bundle (src/ocigen-generator.ts) is smaller still.
 *
 * @module
 */
import process from "node:process";
import { invocationArgv } from "./install/self.ts";
import { processSettings } from "./settings.ts";
import { VERSION } from "./version.ts";
import { quietEpipe, runEntry } from "./cli/entry.ts";
import { generateCommandLine } from "./cli/generate-argv.ts";

// `ocigen ls | head`: a reader that went away is not an error.
quietEpipe();
runEntry(start);

function start(): Promise<number> {
  const settings = processSettings(); // the one place the environment is read (pins OCIGEN_SELF for children)
  const argv = invocationArgv(process.argv, settings.asGenerator);
  if (argv.length === 3 && (argv[2] === "--version" || argv[2] === "-v")) {
    return Promise.resolve().then(() => {
      process.stdout.write(`${VERSION}\n`); // what commander's .version() prints
      return 0;
    });
  }
  const gen = generateCommandLine(argv);
  return gen
    ? import("./cli/generate-run.ts").then((m) => m.runGenerate(gen, settings))
    : import("./cli/program.ts").then((m) => m.runLazy(argv, settings));
}
