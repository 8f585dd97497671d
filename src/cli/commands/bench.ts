/**
 * `ocigen bench [--json] [--full]`: generates a realistic image (cached in the
 * temp dir) and measures, in one run, the WASM inflate kernel against
 * node:zlib, DecompressionStream, fflate and the native gzip tools, sha256
 * implementations, and whole-image unpack against umoci and GNU tar. See
 * `bench/run.ts`.
 *
 * @module
 */
import process from "node:process";
import type { Command } from "commander";
import { OcigenError } from "../../errors.ts";
import { isQuiet } from "../../log.ts";
import { benchJson } from "../json.ts";
import { formatBench, runBench } from "../../../bench/run.ts";
import { addImageBenchOptions, imageBenchCommand } from "./bench-images.ts";

/** Registers `bench`. */
export function register(program: Command, _raw: Command): void {
  addImageBenchOptions(program
    .command("bench")
    .description("benchmark the hot paths (inflate, sha256, unpack) against the usual tools on generated data")
    .option("--json", "print the results as JSON")
    .option("--full", "a larger image (400 MB) and 3 runs per case (default: 48 MB, 2 runs)")
    .option("--scale <MB>", "uncompressed image size in MB")
    .option("--runs <n>", "runs per case (the best is kept)")
    .option("--no-unpack", "skip the whole-unpack benchmarks")
    .option("--dir <dir>", "where to generate (and cache) the bench image")
    .option("--huge <MB>", "also unpack a single layer of this size (e.g. 2048) and report peak RSS"))
    .action(async (o: { json?: boolean; full?: boolean; scale?: string; runs?: string; unpack?: boolean; dir?: string; huge?: string; image?: string[]; layoutDir?: string }) => {
      if (o.image || o.layoutDir) return await imageBenchCommand(o);
      const num = (v: string | undefined, what: string) => {
        if (v === undefined) return undefined;
        const n = Number(v);
        if (!Number.isFinite(n) || n <= 0) throw new OcigenError("EUSAGE", `--${what} must be a positive number, got ${v}`);
        return n;
      };
      const res = await runBench({
        scaleMB: num(o.scale, "scale") ?? (o.full ? 400 : 48),
        runs: num(o.runs, "runs") ?? (o.full ? 3 : 2),
        noUnpack: o.unpack === false,
        hugeMB: num(o.huge, "huge"),
        dir: o.dir,
        log: isQuiet() ? undefined : (m) => process.stderr.write(`ocigen bench: ${m}\n`),
      });
      process.stdout.write((o.json ? JSON.stringify(benchJson(res)) : formatBench(res)) + "\n");
    });
}
