/**
 * Commit speed: `insert` and `repack` of a whole generated tree (default
 * 170 MB of real-looking content: many small text files, machine-code-like
 * binaries, random and zero-filled blobs, a node_modules-like tree; see
 * `generateBenchTree` in image.ts), by ocigen (gzip and `--compress none`)
 * and by umoci (which always gzips, with Go's parallel pgzip), measured in
 * the same run, best of N, reported as ratios (umoci time / ocigen time: > 1
 * means ocigen is faster), plus the size of ocigen's gzip layer against
 * umoci's. A floor row times `tar -cf - | sha256sum` of the same tree
 * (reading, taring and hashing it, nothing else).
 *
 * ocigen runs as a separate process (`ocigenCommand()` unless another
 * command is given), start-up included, as umoci's is. Runs alternate who
 * goes first, so that neither always meets a warmer page cache. Without
 * umoci only ocigen's rows are measured. Used by `commit.bench.ts` (the
 * script) and `figures.ts` (the `ocigen bench` table).
 *
 * @module
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { Layout } from "../src/oci/layout.ts";
import { writeBundleManifest } from "../src/bundle/manifest.ts";
import { unpackBundle } from "../src/layer/unpack.ts";
import { have } from "../src/util/which.ts";
import { commitEmptyImage } from "./empty-image.ts";
import { generateBenchTree } from "./image.ts";

/**
 * Options of {@linkcode runCommitBench}.
 *
 * @example
 * ```ts
 * const o: CommitBenchOptions = { mb: 170, runs: 3, ocigen: ["node", "dist/ocigen.mjs"] };
 * ```
 */
export interface CommitBenchOptions {
  /** Tree size in MB (default 170). */
  mb?: number;
  /** Runs per case, the best kept (default 3). */
  runs?: number;
  /** How to start ocigen (argv prefix). */
  ocigen: string[];
  /** Where the tree is generated and cached (default `$TMPDIR/ocigen-commit-bench-<mb>`). */
  dir?: string;
  /** Keep the layout and bundle of this run (their path is logged). */
  keep?: boolean;
  /** Progress lines. */
  log?: (msg: string) => void;
  /** Only gzip (skip the `--compress none` cases). */
  gzipOnly?: boolean;
}

/**
 * What {@linkcode runCommitBench} measured.
 *
 * @example
 * ```ts
 * const r: CommitBenchResult = await runCommitBench({ ocigen });
 * console.log(r.speedup.insertGzip);
 * ```
 */
export interface CommitBenchResult {
  tree: { files: number; mb: number };
  runs: number;
  /** Best wall time per case (seconds). */
  rows: { name: string; seconds: number; mbPerSecond: number }[];
  /** umoci time / ocigen time per case (undefined without umoci). */
  speedup: { insertGzip?: number; insertNone?: number; repackGzip?: number; repackNone?: number };
  layerBytes: { ocigenGzip: number; ocigenNone?: number; umoci?: number };
  /** ocigen's gzip layer size / umoci's: 1.03 = 3% bigger. */
  sizeVsUmoci?: number;
}

function timed(cmd: string[], what: string): number {
  const t0 = performance.now();
  const p = spawnSync(cmd[0], cmd.slice(1), { stdio: ["ignore", "ignore", "pipe"], maxBuffer: 1 << 26 });
  const s = (performance.now() - t0) / 1000;
  if (p.status !== 0) throw new Error(`${what} failed: ${p.error ?? p.stderr}`);
  return s;
}

async function layerSize(layout: Layout, tag: string): Promise<number> {
  return (await layout.resolve(tag)).manifest.layers.at(-1)!.size;
}

/**
 * Generates (or reuses) the tree and times the commits.
 *
 * @example
 * ```ts
 * const r = await runCommitBench({ mb: 170, runs: 3, ocigen: ocigenCommand() });
 * ```
 */
export async function runCommitBench(opts: CommitBenchOptions): Promise<CommitBenchResult> {
  const MB = opts.mb ?? 170;
  const RUNS = Math.max(1, opts.runs ?? 3);
  const say = opts.log ?? (() => {});
  const work = opts.dir ?? path.join(os.tmpdir(), `ocigen-commit-bench-${MB}`);
  const tree = path.join(work, "tree");
  const stamp = path.join(work, "tree.json");
  const withUmoci = have("umoci");
  const ocigen = opts.ocigen;
  const compressions = opts.gzipOnly ? ["gzip"] : ["gzip", "none"];
  const results: Record<string, number[]> = {};
  const add = (k: string, s: number) => (results[k] ??= []).push(s);
  let layoutDir = "";
  try {
    if (!fs.existsSync(stamp)) {
      say(`generating a ${MB} MB tree in ${tree} ...`);
      fs.rmSync(work, { recursive: true, force: true });
      const t = generateBenchTree(tree, MB);
      fs.writeFileSync(stamp, JSON.stringify(t));
    }
    const info = JSON.parse(fs.readFileSync(stamp, "utf8")) as { files: number; bytes: number };
    say(`tree: ${info.files} files, ${(info.bytes / 1e6).toFixed(1)} MB`);

    // a fresh layout with an empty image each run of the bench
    layoutDir = fs.mkdtempSync(path.join(work, "layout-"));
    fs.rmdirSync(layoutDir);
    const layout = await Layout.init(layoutDir);
    await commitEmptyImage(layout, "empty");

    // ONE bundle for both repacks: the empty image unpacked (by umoci when
    // installed, so it has umoci's mtree too), with ocigen's manifest, then the
    // whole tree added to its rootfs. Without --refresh-bundle neither tool
    // changes the bundle, so every run commits the same tree.
    const bundle = path.join(layoutDir, "..", `bundle-${path.basename(layoutDir)}`);
    if (withUmoci) {
      timed(["umoci", "unpack", "--image", `${layout.dir}:empty`, bundle], "umoci unpack");
    } else {
      await unpackBundle(layout, await layout.resolve("empty"), bundle);
    }
    await writeBundleManifest(bundle, path.join(bundle, "rootfs"));
    const cp = spawnSync("cp", ["-a", `${tree}/.`, path.join(bundle, "rootfs")]);
    if (cp.status !== 0) throw new Error(`cp failed: ${cp.stderr}`);

    for (let r = 0; r < RUNS; r++) {
      const order = r % 2 === 0 ? ["ocigen", "umoci"] : ["umoci", "ocigen"];
      for (const who of order) {
        if (who === "umoci") {
          if (!withUmoci) continue;
          add("umoci insert", timed(["umoci", "insert", "--image", `${layout.dir}:empty`, "--tag", `ui${r}`, tree, "/"], "umoci insert"));
          add("umoci repack", timed(["umoci", "repack", "--image", `${layout.dir}:ur${r}`, bundle], "umoci repack"));
        } else {
          for (const c of compressions) {
            add(`ocigen insert ${c}`, timed([...ocigen, "insert", "--image", `${layout.dir}:empty`, "--tag", `oi${c}${r}`, "--compress", c, tree, "/"], `ocigen insert ${c}`));
            add(`ocigen repack ${c}`, timed([...ocigen, "repack", "--image", `${layout.dir}:or${c}${r}`, "--compress", c, bundle], `ocigen repack ${c}`));
          }
        }
      }
      add("tar -cf - | sha256sum", timed(["sh", "-c", `tar -C "${tree}" -cf - . | sha256sum >/dev/null`], "tar | sha256sum"));
      say(`run ${r + 1}: ` + Object.entries(results).map(([k, v]) => `${k} ${v.at(-1)!.toFixed(2)}s`).join(", "));
    }

    const best = (k: string) => (results[k] ? Math.min(...results[k]) : undefined);
    const rows = Object.keys(results).map((k) => ({ name: k, seconds: best(k)!, mbPerSecond: info.bytes / 1e6 / best(k)! }));
    const ratio = (u: string, o: string) => (best(u) !== undefined && best(o) !== undefined ? best(u)! / best(o)! : undefined);
    const layerBytes = {
      ocigenGzip: await layerSize(layout, "oigzip0"),
      ocigenNone: opts.gzipOnly ? undefined : await layerSize(layout, "oinone0"),
      umoci: withUmoci ? await layerSize(layout, "ui0") : undefined,
    };
    return {
      tree: { files: info.files, mb: info.bytes / 1e6 },
      runs: RUNS,
      rows,
      speedup: {
        insertGzip: ratio("umoci insert", "ocigen insert gzip"),
        insertNone: ratio("umoci insert", "ocigen insert none"),
        repackGzip: ratio("umoci repack", "ocigen repack gzip"),
        repackNone: ratio("umoci repack", "ocigen repack none"),
      },
      layerBytes,
      sizeVsUmoci: layerBytes.umoci ? layerBytes.ocigenGzip / layerBytes.umoci : undefined,
    };
  } finally {
    if (layoutDir && !opts.keep) {
      fs.rmSync(layoutDir, { recursive: true, force: true });
      fs.rmSync(path.join(layoutDir, "..", `bundle-${path.basename(layoutDir)}`), { recursive: true, force: true });
    } else if (layoutDir) say(`kept ${layoutDir}`);
  }
}
