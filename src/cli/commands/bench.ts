/**
 * `ocigen bench [--quick] [--factor F] [--runs N] [--only IDS] [--json]`: the
 * speed figures in one run, each a ratio against its baseline measured in
 * the same run, with its goal (see `bench/figures.ts`); `--kernels` gives the
 * detailed kernel suite instead (inflate, sha256, zstd, unpack variants:
 * `bench/run.ts`); `--image`/`--layout-dir` time the unpack stages of given
 * images (`bench-images.ts`).
 *
 * @module
 */
import process from "node:process";
import type { Command } from "commander";
import { OcigenError } from "../../errors.ts";
import { isQuiet } from "../../log.ts";
import { benchJson } from "../json.ts";
import { formatBench, runBench } from "../../../bench/run.ts";
import { formatFigures, runFigures } from "../../../bench/figures.ts";
import { addImageBenchOptions, imageBenchCommand } from "./bench-images.ts";

interface BenchFlags {
  json?: boolean;
  quick?: boolean;
  factor?: string;
  only?: string;
  kernels?: boolean;
  full?: boolean;
  scale?: string;
  runs?: string;
  unpack?: boolean;
  dir?: string;
  huge?: string;
  image?: string[];
  layoutDir?: string;
}

/** Registers `bench`. */
export function register(program: Command, _raw: Command): void {
  addImageBenchOptions(program
    .command("bench")
    .description("the speed figures (unpack, small images, RSS, generate, insert/repack, zstd), each against its baseline in the same run")
    .option("--json", "print the results as JSON")
    .option("--quick", "tiny sizes and one run: checks the harness, the figures mean nothing")
    .option("--factor <f>", "multiply every size by this (default 1: a 530 MB image, a 2 GB layer, a 170 MB tree, 200 layouts)")
    .option("--runs <n>", "runs per case (the best is kept; default 3, --quick 1)")
    .option("--only <ids>", "only the figures whose id starts with one of these (comma-separated: unpack,small,medium,rss,generate,insert,repack,zstd)")
    .option("--dir <dir>", "where to generate (and cache) the bench images (default $TMPDIR)")
    .option("--kernels", "the detailed kernel suite instead: inflate, sha256, zstd and unpack variants")
    .option("--full", "with --kernels: a larger image (400 MB) and 3 runs per case (default: 48 MB, 2 runs)")
    .option("--scale <MB>", "with --kernels: uncompressed image size in MB")
    .option("--no-unpack", "with --kernels: skip the whole-unpack benchmarks")
    .option("--huge <MB>", "with --kernels: also unpack a single layer of this size (e.g. 2048) and report peak RSS"))
    .action(async (o: BenchFlags) => {
      if (o.image || o.layoutDir) return await imageBenchCommand(o);
      const num = (v: string | undefined, what: string) => {
        if (v === undefined) return undefined;
        const n = Number(v);
        if (!Number.isFinite(n) || n <= 0) throw new OcigenError("EUSAGE", `--${what} must be a positive number, got ${v}`);
        return n;
      };
      const log = isQuiet() ? undefined : (m: string) => process.stderr.write(`ocigen bench: ${m}\n`);
      if (!o.kernels) {
        for (const k of ["full", "scale", "huge"] as const) {
          if (o[k] !== undefined) throw new OcigenError("EUSAGE", `--${k} belongs to --kernels (the figures take --quick or --factor)`);
        }
        if (o.unpack === false) throw new OcigenError("EUSAGE", "--no-unpack belongs to --kernels (the figures take --only)");
        const res = await runFigures({
          quick: o.quick,
          factor: num(o.factor, "factor"),
          runs: num(o.runs, "runs"),
          only: o.only?.split(",").map((s) => s.trim()).filter(Boolean),
          dir: o.dir,
          log,
        });
        process.stdout.write((o.json ? JSON.stringify(benchJson(res)) : formatFigures(res)) + "\n");
        return;
      }
      const res = await runBench({
        scaleMB: num(o.scale, "scale") ?? (o.full ? 400 : 48),
        runs: num(o.runs, "runs") ?? (o.full ? 3 : 2),
        noUnpack: o.unpack === false,
        hugeMB: num(o.huge, "huge"),
        dir: o.dir,
        log,
      });
      process.stdout.write((o.json ? JSON.stringify(benchJson(res)) : formatBench(res)) + "\n");
    });
}
