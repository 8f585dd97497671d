#!/usr/bin/env node
/**
 * Entry point of the systemd generator's own bundle, `dist/ocigen-generator.mjs`:
 * `ocigen generate` and nothing else, so that a boot (and every
 * daemon-reload) loads only what generation needs — no commander, no WASM,
 * no worker, no unpack engine, none of the runtime's modules they import.
 * `install-generator` installs it beside the main bundle and the generator
 * link's wrapper runs it (src/install/files.ts); the single binary has one
 * script and takes the same fast path inside src/main.ts.
 *
 * It is always the generator, whatever name it was called by: the command
 * line is `[OPTION...] NORMAL [EARLY LATE]`, as systemd passes it. A command
 * line the fast path does not recognise (`--help`, a mistake; see
 * src/cli/generate-argv.ts) is handed to the whole program beside this file
 * (`ocigen.mjs` in the bundle, `main.ts` in the sources), which answers it
 * exactly as `ocigen generate ...` would.
 *
 * Units run `ocigen extract`: unless `OCIGEN_SELF` (the installed wrapper
 * sets it) or the config's `ocigen =` says otherwise, the command written
 * into them is that whole program, never this file.
 *
 * No top-level await (the same rule as src/main.ts).
 *
 * @module
 */
import { accessSync, closeSync, constants, openSync, readSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { generateCommandLine } from "./cli/generate-argv.ts";
import { quietEpipe, runEntry } from "./cli/entry.ts";
import { DENO_PERMISSIONS, DENO_V8_FLAGS, invocationArgv, isDeno } from "./install/self.ts";
import { processSettings } from "./settings.ts";

/** The whole program beside this file: the main bundle, or src/main.ts when run from the sources. */
const MAIN = new URL(import.meta.url.endsWith(".ts") ? "./main.ts" : "./ocigen.mjs", import.meta.url);

/**
 * The command that runs the whole program (for the units' `extract`): the
 * main bundle itself when it is directly executable, else this runtime on it.
 */
function mainCommand(): string[] {
  const main = fileURLToPath(MAIN);
  if (/\.[cm]?js$/.test(main)) {
    try {
      accessSync(main, constants.X_OK);
      const fd = openSync(main, "r");
      try {
        const b = new Uint8Array(2);
        if (readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x23 && b[1] === 0x21) return [main];
      } finally {
        closeSync(fd);
      }
    } catch {
      // not executable: run it with this runtime
    }
  }
  return isDeno() ? [process.execPath, "run", ...DENO_V8_FLAGS, ...DENO_PERMISSIONS, main] : [process.execPath, ...process.execArgv, main];
}

function start(): Promise<number | void> {
  const settings = processSettings(); // the one place the environment is read (pins OCIGEN_SELF for children)
  // Called by another name: still the generator (the whole program, if it
  // gets the command line, must see `generate` too).
  if (!settings.asGenerator) process.argv.splice(2, 0, "generate");
  const line = generateCommandLine(invocationArgv(process.argv, settings.asGenerator));
  if (!line) return import(MAIN.href); // it runs itself on process.argv (and guards its stdout)
  if (line.dryRun) quietEpipe();
  return import("./cli/generate-run.ts").then((m) => m.runGenerate(line, settings, settings.self ? undefined : mainCommand()));
}

runEntry(start);
