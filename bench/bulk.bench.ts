// Bulk extraction benchmark (not a test): N generated images sharing a base of
// about BASE MB (the 5-layer image of bench/image.ts: distro-like files,
// libraries, data, node_modules-like tree, churn with whiteouts), each with one
// small layer of its own, in N layouts. Times, in one run, each from an empty
// extracts directory:
//   - ocigen extract --all            (default jobs = CPUs, lower-layer reuse on)
//   - ocigen extract --all --no-reuse
//   - the same with --jobs 1, and with the jobs as async tasks in one process
//     (parallelism and reuse measured separately)
//   - umoci unpack of every image, one by one (what a shell loop would do)
// and prints the times (best of --runs rounds), MB/s of tar, the ratios and peak RSS.
//
//   node --import tsx bench/bulk.bench.ts [--images 20] [--base-mb 200] [--target /dev/shm] [--runs 1] [--quick]
//   deno run -A bench/bulk.bench.ts [same flags]
//
// --quick: 5 images on a 48 MB base. Layouts are written beside the cached base
// image (blobs hard-linked); extracts go to --target (default /dev/shm, so the
// figures are about the tools, not the disk).
import * as fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { gzipSync } from "fflate";
import { generateBenchImage } from "./image.ts";
import { putBlob, putJSON, sha256, tarFiles } from "../fixtures/layout.ts";
import { have } from "../src/util/which.ts";
import { ocigenCommand } from "./run.ts";

const args = process.argv.slice(2);
const flag = (f: string) => args.includes(f);
const val = (f: string, d: string) => {
  const i = args.indexOf(f);
  return i >= 0 ? args[i + 1] : d;
};
const quick = flag("--quick");
const N = Number(val("--images", quick ? "5" : "20"));
const BASE = Number(val("--base-mb", quick ? "48" : "200"));
const target = val("--target", fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir());
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const say = (m: string) => process.stderr.write(m + "\n");

/** How to start ocigen: the sources with `--sources`, else what the kernel benchmarks use (the bundle, rebuilt when stale). */
function ocigen(): string[] {
  if (flag("--sources") && !(globalThis as { Deno?: unknown }).Deno) return [process.execPath, "--import", "tsx", path.join(root, "src/main.ts")];
  return ocigenCommand();
}

say(`generating (or reusing) the ${BASE} MB base image`);
const base = await generateBenchImage({ dir: path.join(os.tmpdir(), `ocigen-bench-${BASE}`), scaleMB: BASE, log: say });
const work = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-bulk-bench-"));
const layouts = path.join(work, "layouts");
const baseTar = base.size;
let ownTar = 0;
for (let i = 0; i < N; i++) {
  const dir = path.join(layouts, `bench.example/app-${String(i).padStart(2, "0")}`);
  fs.mkdirSync(path.join(dir, "blobs/sha256"), { recursive: true });
  fs.writeFileSync(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  for (const l of base.layers) {
    const to = path.join(dir, "blobs/sha256", l.digest.slice(7));
    try {
      fs.linkSync(l.blob, to);
    } catch {
      fs.copyFileSync(l.blob, to);
    }
  }
  // The image's own layer: ~1 MB of app files.
  const files = Array.from({ length: 40 }, (_, k) => ({ name: `srv/app/file-${k}.js`, data: `// app ${i} file ${k}\n`.repeat(1200) }));
  const tar = tarFiles([{ name: "srv/", dir: true }, { name: "srv/app/", dir: true }, ...files]);
  ownTar += tar.length;
  const own = putBlob(dir, gzipSync(tar, { mtime: 0 }), "application/vnd.oci.image.layer.v1.tar+gzip");
  const diffIds = [...base.layers.map((l) => l.diffId), sha256(tar)];
  const config = putJSON(dir, {
    created: "2024-01-01T00:00:00Z", architecture: "amd64", os: "linux",
    config: { Cmd: ["/srv/app/file-0.js"] },
    rootfs: { type: "layers", diff_ids: diffIds },
  }, "application/vnd.oci.image.config.v1+json");
  const manifest = putJSON(dir, {
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config,
    layers: [...base.layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: l.digest, size: l.compressedSize })), own],
  }, "application/vnd.oci.image.manifest.v1+json");
  fs.writeFileSync(path.join(dir, "index.json"), JSON.stringify({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{ ...manifest, annotations: { "org.opencontainers.image.ref.name": "latest" } }],
  }));
}
const totalMB = (N * baseTar + ownTar) / 1e6;
say(`${N} images: ${base.layers.length}+1 layers each, ${(baseTar / 1e6).toFixed(0)} MB shared base, ${totalMB.toFixed(0)} MB of tar in all`);

interface Row { name: string; seconds?: number; skipped?: string; note?: string; rssMiB?: number }
const rows: Row[] = [];
const out = fs.mkdtempSync(path.join(target, "ocigen-bulk-out-"));
const clean = () => {
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out);
};
const conf = path.join(work, "oci-generator.conf");
fs.writeFileSync(conf, `[system]\nimagelayoutdir = ${layouts}\nextractsdir = ${path.join(out, "extracts")}\n`);

const timed = fs.existsSync("/usr/bin/time");
const rssFile = path.join(work, "rss");

/** Runs one case (its commands one after the other); returns wall seconds and the largest peak RSS, or an error. */
function timeOnce(argvs: string[][]): { seconds: number; rss?: number } | { error: string } {
  clean();
  spawnSync("sync");
  let rss = 0;
  const t = performance.now();
  for (const argv of argvs) {
    const full = timed ? ["/usr/bin/time", "-f", "%M", "-o", rssFile, ...argv] : argv;
    const r = spawnSync(full[0], full.slice(1), { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
    if (r.status !== 0) return { error: `failed: ${(r.stderr || r.stdout).trim().split("\n").slice(-2).join(" | ")}` };
    if (timed) rss = Math.max(rss, Number(fs.readFileSync(rssFile, "utf8").trim().split("\n").pop()) / 1024 || 0);
    if (argvs.length === 1) say("  " + r.stdout.trim().split("\n").slice(-1)[0]);
  }
  return { seconds: (performance.now() - t) / 1000, rss: rss || undefined };
}

const runs = Number(val("--runs", "1"));
try {
  const o = ocigen();
  const cpus = os.availableParallelism?.() ?? os.cpus().length;
  const cases: Array<{ name: string; argvs: string[][]; skip?: string }> = [
    { name: `ocigen extract --all (jobs ${cpus}, reuse)`, argvs: [[...o, "extract", "--all", "--config", conf]] },
    { name: `ocigen extract --all --no-reuse (jobs ${cpus})`, argvs: [[...o, "extract", "--all", "--no-reuse", "--config", conf]] },
    { name: `ocigen extract --all --jobs ${cpus}, one process`, argvs: [[...o, "extract", "--all", "--bulk-mode", "inline", "--jobs", String(cpus), "--config", conf]] },
    { name: "ocigen extract --all --jobs 1 (reuse)", argvs: [[...o, "extract", "--all", "--jobs", "1", "--config", conf]] },
    { name: "ocigen extract --all --jobs 1 --no-reuse", argvs: [[...o, "extract", "--all", "--jobs", "1", "--no-reuse", "--config", conf]] },
  ];
  const names = fs.readdirSync(path.join(layouts, "bench.example")).sort();
  cases.push({
    name: "umoci unpack, one image after the other",
    argvs: names.map((n, i) => ["umoci", "unpack", "--image", `${path.join(layouts, "bench.example", n)}:latest`, path.join(out, `bundle-${i}`)]),
    skip: have("umoci") ? undefined : "umoci not installed",
  });
  for (const c of cases) rows.push(c.skip ? { name: c.name, skipped: c.skip } : { name: c.name });
  // Rounds: every case once per round, so that load from elsewhere spreads over all of them; the best is kept.
  for (let round = 0; round < runs; round++) {
    cases.forEach((c, k) => {
      const row = rows[k];
      if (row.skipped) return;
      say(`round ${round + 1}/${runs}: ${c.name}`);
      const r = timeOnce(c.argvs);
      if ("error" in r) {
        row.skipped = r.error;
        return;
      }
      if (row.seconds === undefined || r.seconds < row.seconds) {
        row.seconds = r.seconds;
        row.rssMiB = r.rss;
      }
    });
  }
} finally {
  fs.rmSync(out, { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
}

const umoci = rows.find((r) => r.name.startsWith("umoci") && r.seconds)?.seconds;
const first = rows[0]?.seconds;
console.log(`bulk extraction: ${N} images sharing a ${(baseTar / 1e6).toFixed(0)} MB base (${totalMB.toFixed(0)} MB of tar), extracts on ${target}; ${os.cpus().length} CPUs, ${(globalThis as { Deno?: unknown }).Deno ? "deno" : `node ${process.version}`}`);
console.log(`${"case".padEnd(48)} ${"seconds".padStart(8)} ${"MB/s".padStart(6)} ${"vs umoci".padStart(9)} ${"vs first".padStart(9)} ${"peak RSS".padStart(9)}`);
for (const r of rows) {
  if (r.skipped) {
    console.log(`${r.name.padEnd(48)} skipped: ${r.skipped}`);
    continue;
  }
  const s = r.seconds!;
  console.log(
    `${r.name.padEnd(48)} ${s.toFixed(1).padStart(8)} ${(totalMB / s).toFixed(0).padStart(6)} ` +
      `${(umoci ? (umoci / s).toFixed(2) + "x" : "").padStart(9)} ${(first ? (s / first).toFixed(2) + "x" : "").padStart(9)} ` +
      `${(r.rssMiB ? r.rssMiB.toFixed(0) + " MiB" : "").padStart(9)}`,
  );
}
console.log("(MB/s: MB of tar of all images per second of wall time; vs umoci: how many times faster than the umoci loop; vs first: time relative to the first case; peak RSS: the largest single process)");
