#!/usr/bin/env node
/**
 * Entry point of the `ocigen` program. When invoked as `ocigen-generator`
 * (the systemd generator link) it behaves as `ocigen generate`.
 *
 * @module
 */
import process from "node:process";
import { main } from "./cli/main.ts";

const argv = [...process.argv];
const self = (argv[1] ?? "").split("/").pop() ?? "";
if (/^ocigen-generator(\.m?js)?$/.test(self) || process.env.OCIGEN_AS_GENERATOR === "1") {
  argv.splice(2, 0, "generate");
}
process.exitCode = await main(argv);
