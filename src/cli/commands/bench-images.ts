/**
 * The CLI side of `ocigen bench --image L:T | --layout-dir DIR [--target-dir DIR]
 * [--runs N] [--json]`: options registered on the `bench` verb, which calls
 * {@linkcode imageBenchCommand} when `--image` or `--layout-dir` is given.
 *
 * @module
 */
import process from "node:process";
import type { Command } from "commander";
import { OcigenError } from "../../errors.ts";
import { isQuiet } from "../../log.ts";
import { benchJson } from "../json.ts";
import { settings } from "../context.ts";

/** Flags of `bench --image`. */
export interface ImageBenchFlags {
  image?: string[];
  layoutDir?: string;
  targetDir?: string;
  runs?: string;
  json?: boolean;
}

/**
 * Adds `--image`, `--layout-dir` and `--target-dir` to the `bench` command.
 *
 * @example
 * ```ts
 * addImageBenchOptions(program.command("bench"));
 * ```
 */
export function addImageBenchOptions(cmd: Command): Command {
  return cmd
    .option("--image <layout:tag>", "benchmark layer application on this image, per stage (repeatable)", (v: string, acc: string[] = []) => [...acc, v])
    .option("--layout-dir <dir>", "benchmark every image of every layout under DIR")
    .option("--target-dir <dir>", "with --image/--layout-dir: file system to write to (default $TMPDIR)");
}

/**
 * Runs `bench --image`/`--layout-dir` and prints the table (or JSON).
 *
 * @example
 * ```ts
 * await imageBenchCommand({ image: ["/l:latest"], targetDir: "/var/tmp" });
 * ```
 */
export async function imageBenchCommand(o: ImageBenchFlags): Promise<void> {
  let runs: number | undefined;
  if (o.runs !== undefined) {
    runs = Number(o.runs);
    if (!Number.isInteger(runs) || runs < 1) throw new OcigenError("EUSAGE", `--runs must be a positive integer, got ${o.runs}`);
  }
  const { benchImages, formatImageBench } = await import("../../bench/image.ts"); // the unpack engine: only when used
  const r = await benchImages({
    images: o.image,
    layoutDir: o.layoutDir,
    targetDir: o.targetDir,
    runs,
    path: settings().path,
    log: isQuiet() ? undefined : (m) => process.stderr.write(`ocigen bench: ${m}\n`),
  });
  process.stdout.write((o.json ? JSON.stringify(benchJson(r)) : formatImageBench(r)) + "\n");
}
