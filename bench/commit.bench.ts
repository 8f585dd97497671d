// Commit speed: `insert` and `repack` of a whole generated tree (default
// 170 MB of real-looking content: many small text files, machine-code-like
// binaries, random and zero-filled blobs, a node_modules-like tree; see
// generateBenchTree in image.ts), by ocigen (gzip and --compress none) and by
// umoci (which always gzips, with Go's parallel pgzip), measured in the same
// run, best of N, reported as ratios (umoci time / ocigen time: > 1 means
// ocigen is faster), plus the size of ocigen's gzip layer against umoci's.
// A floor row times `tar -cf - | sha256sum` of the same tree (reading,
// taring and hashing it, nothing else).
//
//   node --import tsx bench/commit.bench.ts [--mb 170] [--runs 3] [--json] [--keep]
//   deno run -A bench/commit.bench.ts [same flags]
//
// ocigen runs as a separate process (ocigenCommand: the bundle when it is
// up to date, else a fresh bundle of the sources), start-up included, as
// umoci's is. Without umoci only ocigen's rows are printed.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { Layout } from "../src/oci/layout.ts";
import { writeBundleManifest } from "../src/bundle/manifest.ts";
import { unpackBundle } from "../src/layer/unpack.ts";
import { have } from "../src/util/which.ts";
import { commitEmptyImage } from "./empty-image.ts";
import { generateBenchTree } from "./image.ts";
import { ocigenCommand } from "./run.ts";
import { benchFlags } from "./flags.ts";

const { opt, json, keep, say } = benchFlags();
const MB = opt("--mb", 170);
const RUNS = opt("--runs", 3);

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

const work = path.join(os.tmpdir(), `ocigen-commit-bench-${MB}`);
const tree = path.join(work, "tree");
const stamp = path.join(work, "tree.json");
const withUmoci = have("umoci");
const ocigen = ocigenCommand();
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
  // changes the bundle, so every run commits the same 170 MB.
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
    // alternate who goes first so that neither always meets a warmer page cache
    const order = r % 2 === 0 ? ["ocigen", "umoci"] : ["umoci", "ocigen"];
    for (const who of order) {
      if (who === "umoci") {
        if (!withUmoci) continue;
        add("umoci insert", timed(["umoci", "insert", "--image", `${layout.dir}:empty`, "--tag", `ui${r}`, tree, "/"], "umoci insert"));
        add("umoci repack", timed(["umoci", "repack", "--image", `${layout.dir}:ur${r}`, bundle], "umoci repack"));
      } else {
        for (const c of ["gzip", "none"]) {
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
  const ratio = (u: string, o: string) => (best(u) !== undefined ? best(u)! / best(o)! : undefined);
  const sizes = {
    ocigenGzip: await layerSize(layout, "oigzip0"),
    ocigenNone: await layerSize(layout, "oinone0"),
    umoci: withUmoci ? await layerSize(layout, "ui0") : undefined,
  };
  const out = {
    runtime: `${typeof (globalThis as { Deno?: unknown }).Deno === "object" ? "deno" : "node"} ${process.version}`,
    cpus: os.cpus().length,
    loadAverage: os.loadavg()[0],
    tree: { files: info.files, mb: info.bytes / 1e6 },
    runs: RUNS,
    rows,
    speedup: {
      insertGzip: ratio("umoci insert", "ocigen insert gzip"),
      insertNone: ratio("umoci insert", "ocigen insert none"),
      repackGzip: ratio("umoci repack", "ocigen repack gzip"),
      repackNone: ratio("umoci repack", "ocigen repack none"),
    },
    layerBytes: sizes,
    // ocigen's gzip layer size / umoci's: 1.03 = 3% bigger
    sizeVsUmoci: sizes.umoci ? sizes.ocigenGzip / sizes.umoci : undefined,
  };
  if (json) console.log(JSON.stringify(out, null, 2));
  else {
    console.log(`commit of a ${out.tree.mb.toFixed(0)} MB tree (${info.files} files), best of ${RUNS}, ${out.runtime}, ${out.cpus} CPUs, load ${out.loadAverage.toFixed(1)}`);
    for (const r of rows) console.log(`  ${r.name.padEnd(24)} ${r.seconds.toFixed(2).padStart(6)} s  ${r.mbPerSecond.toFixed(0).padStart(5)} MB/s`);
    const x = (v?: number) => (v === undefined ? "n/a" : `${v.toFixed(2)}x`);
    console.log(`  umoci / ocigen: insert gzip ${x(out.speedup.insertGzip)}, insert none ${x(out.speedup.insertNone)}, repack gzip ${x(out.speedup.repackGzip)}, repack none ${x(out.speedup.repackNone)}`);
    console.log(`  gzip layer: ocigen ${(sizes.ocigenGzip / 1e6).toFixed(2)} MB` + (sizes.umoci ? `, umoci ${(sizes.umoci / 1e6).toFixed(2)} MB (ocigen/umoci ${out.sizeVsUmoci!.toFixed(4)})` : ""));
  }
} finally {
  if (layoutDir && !keep) {
    fs.rmSync(layoutDir, { recursive: true, force: true });
    fs.rmSync(path.join(layoutDir, "..", `bundle-${path.basename(layoutDir)}`), { recursive: true, force: true });
  } else if (keep) console.error(`kept ${layoutDir}`);
}
