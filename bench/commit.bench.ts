// Commit speed of `insert` and `repack` against umoci on a generated tree
// (see commit.ts): prints the best times, the umoci/ocigen ratios and the
// gzip layer sizes.
//
//   node --import tsx bench/commit.bench.ts [--mb 170] [--runs 3] [--json] [--keep]
//   deno run -A bench/commit.bench.ts [same flags]
//
// ocigen runs as a separate process (ocigenCommand: the bundle when it is
// up to date, else a fresh bundle of the sources), start-up included, as
// umoci's is. Without umoci only ocigen's rows are printed.
import os from "node:os";
import process from "node:process";
import { runCommitBench } from "./commit.ts";
import { ocigenCommand } from "./run.ts";
import { benchFlags } from "./flags.ts";

const { opt, json, keep, say } = benchFlags();
const r = await runCommitBench({ mb: opt("--mb", 170), runs: opt("--runs", 3), ocigen: ocigenCommand(), keep, log: say });
const runtime = `${typeof (globalThis as { Deno?: unknown }).Deno === "object" ? "deno" : "node"} ${process.version}`;
const out = { runtime, cpus: os.cpus().length, loadAverage: os.loadavg()[0], ...r };
if (json) console.log(JSON.stringify(out, null, 2));
else {
  console.log(`commit of a ${r.tree.mb.toFixed(0)} MB tree (${r.tree.files} files), best of ${r.runs}, ${runtime}, ${out.cpus} CPUs, load ${out.loadAverage.toFixed(1)}`);
  for (const row of r.rows) console.log(`  ${row.name.padEnd(24)} ${row.seconds.toFixed(2).padStart(6)} s  ${row.mbPerSecond.toFixed(0).padStart(5)} MB/s`);
  const x = (v?: number) => (v === undefined ? "n/a" : `${v.toFixed(2)}x`);
  console.log(`  umoci / ocigen: insert gzip ${x(r.speedup.insertGzip)}, insert none ${x(r.speedup.insertNone)}, repack gzip ${x(r.speedup.repackGzip)}, repack none ${x(r.speedup.repackNone)}`);
  const s = r.layerBytes;
  console.log(`  gzip layer: ocigen ${(s.ocigenGzip / 1e6).toFixed(2)} MB` + (s.umoci ? `, umoci ${(s.umoci / 1e6).toFixed(2)} MB (ocigen/umoci ${r.sizeVsUmoci!.toFixed(4)})` : ""));
}
