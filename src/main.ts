#!/usr/bin/env node
/**
 * Entry point of the `ocigen` program. When invoked as `ocigen-generator`
 * (the systemd generator link; also in the single binary) it behaves as
 * `ocigen generate`.
 *
 * No top-level await: the same entry is bundled as ESM (dist/ocigen.mjs) and
 * as CommonJS for the single executable (dist/ocigen), which Node runs as CJS.
 *
 * @module
 */
import process from "node:process";
import { main } from "./cli/main.ts";
import { invocationArgv, pinSelf } from "./install/self.ts";

pinSelf();
// `ocigen ls | head`: a reader that went away is not an error.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(typeof process.exitCode === "number" ? process.exitCode : 0);
  throw e;
});
main(invocationArgv()).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`ocigen: ${(e as Error)?.message ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
