// Running the CLI inside the test process, and the small layouts the CLI
// tests work on (shared by the command-line test files).
import type { Settings } from "../src/settings.ts";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { main } from "../src/cli/main.ts";
import { setLogLevel } from "../src/log.ts";
import { addTarLayer, Layout, newImage, tarBytes } from "../src/mod.ts";

/** What one in-process CLI run printed and returned. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process, capturing what it writes. */
export async function ocigen(...args: string[]): Promise<Run> {
  return await ocigenWith(undefined, ...args);
}

/** {@linkcode ocigen} with the run's settings given (default: this process's). */
export async function ocigenWith(settings: Settings | undefined, ...args: string[]): Promise<Run> {
  const so = process.stdout.write;
  const se = process.stderr.write;
  let stdout = "";
  let stderr = "";
  // ocigen writes strings; binary chunks are the test runner's own reports
  // (node --test's child protocol), which must reach it
  const cap = (f: (s: string) => void, orig: typeof process.stdout.write) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (typeof chunk !== "string") return (orig as (...a: unknown[]) => boolean)(chunk, ...rest);
      f(chunk);
      (rest.find((r) => typeof r === "function") as (() => void) | undefined)?.();
      return true;
    }) as typeof process.stdout.write;
  process.stdout.write = cap((s) => (stdout += s), so.bind(process.stdout));
  process.stderr.write = cap((s) => (stderr += s), se.bind(process.stderr));
  // the test runner's own exit code (set when a test failed) is not ours
  const runnerExitCode = process.exitCode;
  process.exitCode = undefined;
  let code: number;
  try {
    code = await main(["node", "ocigen", ...args], settings);
  } finally {
    process.stdout.write = so;
    process.stderr.write = se;
    process.exitCode = runnerExitCode;
    setLogLevel("warn");
  }
  return { code, stdout, stderr };
}

/** A layout in `dir` whose tag `tag` holds one uncompressed layer of `entries`. */
export async function imageWith(dir: string, entries: Parameters<typeof tarBytes>[0], tag: string): Promise<string> {
  const l = path.join(dir, "layout");
  const layout = await Layout.init(l);
  await newImage(layout, tag);
  const tar = path.join(dir, "layer.tar");
  fs.writeFileSync(tar, tarBytes(entries));
  await addTarLayer(layout, tar, { tag, compression: "none" });
  return l;
}
