// Security review: the files of an OCI layout are untrusted input. One test per
// attack from a red-team pass, each through the CLI as a child process with a
// time limit: a FIFO, a device, a symlink to /dev/zero or a 4 GB sparse file
// where a blob, index.json or oci-layout belongs must give a one-line error
// naming the file and exit 1 within seconds (before: hangs forever, spins, or
// takes 4 GB of memory). The generator skips such a layout and writes the
// units of the others.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { cliCommand, ROOT } from "./oci-helpers.ts";
import { makeImage, tmpdir } from "./layer-fixtures.ts";
import { isRoot } from "./repack-util.ts";
import type { TarWriterEntry } from "../src/tar/writer.ts";

/** Every attack must be answered well within this (the hangs it guards against never end). */
const LIMIT_MS = 20000;

interface Ran {
  code: number | null;
  signal: string | null;
  stderr: string;
  stdout: string;
  ms: number;
  /** Peak resident memory of the child (VmHWM), kB; 0 if it could not be read. */
  peakKb: number;
}

/** Runs the CLI (from source) with a hard time limit, sampling its peak RSS. */
function ocigen(args: string[], limitMs = LIMIT_MS): Promise<Ran> {
  const [cmd, pre] = cliCommand();
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, [...pre, ...args], { cwd: ROOT, env: { ...process.env, OCIGEN_KMSG: "0" } });
    let stdout = "";
    let stderr = "";
    let peakKb = 0;
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p.pid}/status`, "utf8"));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch { /* gone */ }
    };
    const sampler = setInterval(sample, 20);
    const killer = setTimeout(() => p.kill("SIGKILL"), limitMs);
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("error", reject);
    p.on("exit", () => sample());
    p.on("close", (code, signal) => {
      clearInterval(sampler);
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0, peakKb });
    });
  });
}

/** Asserts a prompt exit 1 with exactly one error line matching `re`. */
function refused(r: Ran, re: RegExp): void {
  assert.equal(r.signal, null, `killed after ${r.ms} ms (hung): ${r.stderr}`);
  assert.equal(r.code, 1, r.stderr);
  assert.ok(r.ms < LIMIT_MS, `took ${r.ms} ms`);
  const lines = r.stderr.trim().split("\n").filter((l) => l.trim() !== "");
  assert.ok(lines.some((l) => re.test(l)), `no line matching ${re} in:\n${r.stderr}`);
  process.stderr.write(`# refused in ${r.ms} ms, peak RSS ${Math.round(r.peakKb / 1024)} MiB: ${lines.find((l) => re.test(l))}\n`);
}

function image(dir: string, bigLayer = false): { layout: string; layer: string; manifest: string; config: string } {
  const entries: TarWriterEntry[] = [{ name: "etc/", type: "dir" }, { name: "etc/hello", data: "hi\n" }];
  // a layer of >= 1 MiB compressed goes through the inflate worker
  if (bigLayer) entries.push({ name: "noise", data: new Uint8Array(randomBytes(3 << 19)) });
  const layout = makeImage(path.join(dir, "layout"), [{ entries }], { config: { Cmd: ["/bin/true"] } });
  const idx = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8"));
  const blob = (d: string) => path.join(layout, "blobs", "sha256", d.slice(7));
  const manifest = blob(idx.manifests[0].digest);
  const m = JSON.parse(fs.readFileSync(manifest, "utf8"));
  return { layout, layer: blob(m.layers[0].digest), manifest, config: blob(m.config.digest) };
}

function replaceWith(p: string, how: "fifo" | "dev-zero-link" | "chardev" | "sparse4g"): void {
  fs.rmSync(p);
  if (how === "fifo") assert.equal(spawnSync("mkfifo", [p]).status, 0);
  else if (how === "dev-zero-link") fs.symlinkSync("/dev/zero", p);
  else if (how === "chardev") assert.equal(spawnSync("mknod", [p, "c", "1", "5"]).status, 0);
  else {
    fs.writeFileSync(p, "");
    fs.truncateSync(p, 2 ** 32);
  }
}

/** Points the manifest's config (or the index's manifest) at a descriptor claiming 4 GB, re-hashing what refers to it. */
function claim4g(layout: string, which: "manifest" | "config"): string {
  const idxPath = path.join(layout, "index.json");
  const idx = JSON.parse(fs.readFileSync(idxPath, "utf8"));
  const blob = (d: string) => path.join(layout, "blobs", "sha256", d.slice(7));
  if (which === "manifest") {
    idx.manifests[0].size = 2 ** 32;
    fs.writeFileSync(idxPath, JSON.stringify(idx));
    return blob(idx.manifests[0].digest);
  }
  const m = JSON.parse(fs.readFileSync(blob(idx.manifests[0].digest), "utf8"));
  m.config.size = 2 ** 32;
  const bytes = Buffer.from(JSON.stringify(m));
  const digest = "sha256:" + createHash("sha256").update(bytes).digest("hex");
  fs.writeFileSync(blob(digest), bytes);
  idx.manifests[0] = { ...idx.manifests[0], digest, size: bytes.length };
  fs.writeFileSync(idxPath, JSON.stringify(idx));
  return blob(m.config.digest);
}

function withDir(name: string, fn: (dir: string) => Promise<void>, opts: { skip?: string | false; timeout?: number } = {}): void {
  test(name, { skip: opts.skip || false, timeout: opts.timeout ?? 60000 }, async () => {
    const dir = tmpdir("ocigen-hostile-");
    try {
      await fn(dir);
    } finally {
      spawnSync("rm", ["-rf", "--", dir]);
    }
  });
}

describe("blobs that are not regular files inside the layout", () => {
  for (const big of [false, true]) {
    withDir(`FIFO layer blob: unpack refuses it promptly (${big ? "worker" : "in-thread"} path)`, async (dir) => {
      const img = image(dir, big);
      replaceWith(img.layer, "fifo");
      const r = await ocigen(["unpack", "--image", img.layout, path.join(dir, "bundle")]);
      refused(r, /layer sha256:[0-9a-f]{12}\.\. .*not a regular file \(a FIFO\)/);
      assert.equal(fs.existsSync(path.join(dir, "bundle")), false);
      assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes(".tmp")), [], "no temporary tree left");
    });
  }

  withDir("FIFO layer blob: gc refuses it promptly and removes nothing", async (dir) => {
    const img = image(dir);
    replaceWith(img.layer, "fifo");
    const before = fs.readdirSync(path.join(img.layout, "blobs", "sha256")).sort();
    const r = await ocigen(["gc", "--layout", img.layout]);
    refused(r, /layer sha256:.*not a regular file \(a FIFO\)/);
    assert.deepEqual(fs.readdirSync(path.join(img.layout, "blobs", "sha256")).sort(), before);
  });

  withDir("layer blob symlinked to /dev/zero: refused as a symlink out of the layout, not read", async (dir) => {
    const img = image(dir, true);
    replaceWith(img.layer, "dev-zero-link");
    for (const args of [["unpack", "--image", img.layout, path.join(dir, "b")], ["gc", "--layout", img.layout]]) {
      const r = await ocigen(args);
      refused(r, /layer sha256:[0-9a-f]{12}\.\. \(\S+\): a symlink out of the layout \(to \/dev\/zero\)/);
      assert.ok(r.peakKb < 400 * 1024, `peak RSS ${r.peakKb} kB`);
    }
  });

  for (const big of [false, true]) withDir(`a symlink that stays inside the layout is followed (blobs shared by link, ${big ? "worker" : "in-thread"} path)`, async (dir) => {
    const img = image(dir, big);
    const shared = path.join(img.layout, "shared-layer");
    fs.renameSync(img.layer, shared);
    fs.symlinkSync(path.relative(path.dirname(img.layer), shared), img.layer);
    const r = await ocigen(["unpack", "--image", img.layout, path.join(dir, "b")]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(path.join(dir, "b", "rootfs", "etc", "hello"), "utf8"), "hi\n");
  });

  withDir("blobs/sha256 directory symlinked out of the layout: refused", async (dir) => {
    const img = image(dir);
    const outside = path.join(dir, "elsewhere");
    fs.renameSync(path.join(img.layout, "blobs", "sha256"), outside);
    fs.symlinkSync(outside, path.join(img.layout, "blobs", "sha256"));
    const r = await ocigen(["stat", "--image", img.layout]);
    refused(r, /blobs\/sha256 leads out of the layout/);
  });

  withDir("device node as a layer blob: refused without being read", async (dir) => {
    const img = image(dir);
    replaceWith(img.layer, "chardev");
    for (const args of [["unpack", "--image", img.layout, path.join(dir, "b")], ["gc", "--layout", img.layout]]) {
      refused(await ocigen(args), /layer sha256:.*not a regular file \(a character device\)/);
    }
  }, { skip: !isRoot && (process.env.CI ? false : "mknod needs root (runs in CI as root)") });
});

describe("index.json, oci-layout, manifests and configs", () => {
  withDir("oci-layout FIFO: ls refuses it promptly", async (dir) => {
    const img = image(dir);
    replaceWith(path.join(img.layout, "oci-layout"), "fifo");
    refused(await ocigen(["ls", "--layout", img.layout]), /oci-layout: not a regular file \(a FIFO\)/);
  });

  withDir("index.json symlinked to /dev/zero: refused, in bounded memory", async (dir) => {
    const img = image(dir);
    replaceWith(path.join(img.layout, "index.json"), "dev-zero-link");
    const r = await ocigen(["ls", "--layout", img.layout]);
    refused(r, /index\.json: a symlink out of the layout \(to \/dev\/zero\)/);
    assert.ok(r.peakKb > 0, "peak RSS measured");
    assert.ok(r.peakKb < 400 * 1024, `peak RSS ${r.peakKb} kB`);
  });

  withDir("index.json as a 4 GB sparse file: 'too large' from its size, without reading it", async (dir) => {
    const img = image(dir);
    replaceWith(path.join(img.layout, "index.json"), "sparse4g");
    const r = await ocigen(["ls", "--layout", img.layout]);
    refused(r, /index\.json: too large \(4294967296 bytes, the limit is \d+\)/);
    assert.ok(r.ms < 10000, `took ${r.ms} ms`);
    assert.ok(r.peakKb < 400 * 1024, `peak RSS ${r.peakKb} kB`);
  });

  for (const which of ["manifest", "config"] as const) {
    withDir(`${which} as a 4 GB sparse file: clear error without reading it`, async (dir) => {
      // the descriptor keeps its real size: the file's size is refused before any read
      const img = image(dir);
      replaceWith(which === "manifest" ? img.manifest : img.config, "sparse4g");
      const r = await ocigen(["stat", "--image", img.layout]);
      refused(r, new RegExp(`${which} sha256:.*blob is padded: 4294967296 bytes, descriptor says \\d+`));
      assert.ok(r.peakKb < 400 * 1024, `peak RSS ${r.peakKb} kB`);
      // the descriptor claims 4 GB too: "too large" from the descriptor
      const img2 = image(path.join(dir, "two"));
      const file = claim4g(img2.layout, which);
      replaceWith(file, "sparse4g");
      const r2 = await ocigen(["stat", "--image", img2.layout]);
      refused(r2, new RegExp(`${which} sha256:[0-9a-f]{12}\\.\\.: too large \\(4294967296 bytes, the limit is \\d+\\)`));
      assert.ok(r2.peakKb < 400 * 1024, `peak RSS ${r2.peakKb} kB`);
    });
  }

  withDir("generate: an index.json FIFO fails that layout only; the others get their units", async (dir) => {
    const layouts = path.join(dir, "layouts");
    const good = image(path.join(dir, "g"));
    fs.mkdirSync(layouts);
    fs.renameSync(good.layout, path.join(layouts, "good"));
    const bad = image(path.join(dir, "b"));
    fs.renameSync(bad.layout, path.join(layouts, "bad"));
    replaceWith(path.join(layouts, "bad", "index.json"), "fifo");
    const zero = image(path.join(dir, "z"));
    fs.renameSync(zero.layout, path.join(layouts, "zero"));
    replaceWith(path.join(layouts, "zero", "index.json"), "dev-zero-link");
    const conf = path.join(dir, "gen.conf");
    fs.writeFileSync(conf, `imagelayoutdir=${layouts}\nextractsdir=${path.join(dir, "x")}\nocigen=/bin/true\n`);
    const out = path.join(dir, "out");
    const r = await ocigen(["generate", "--config", conf, out]);
    refused(r, /layout bad: .*index\.json: not a regular file \(a FIFO\)/);
    assert.match(r.stderr, /layout zero: .*index\.json: a symlink out of the layout/);
    const units = fs.readdirSync(out).filter((n) => n.endsWith(".service"));
    assert.ok(units.some((n) => n.includes("good")), `units: ${units.join(", ")}`);
    assert.ok(!units.some((n) => n.includes("bad") || n.includes("zero")), `units: ${units.join(", ")}`);
    assert.ok(r.peakKb < 400 * 1024, `peak RSS ${r.peakKb} kB`);
  });
});
