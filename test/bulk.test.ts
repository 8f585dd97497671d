// `ocigen extract --all`: a tree of layouts (shared base layers, two tags on one
// manifest, one corrupt layer) is extracted once per manifest, the corrupt image
// is reported with exit 1, a second run does nothing, and the units the
// generator writes find their rootfs current. Also: reuse of lower layers gives
// the same trees as a full unpack, and copyTree keeps what a rootfs needs.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { type FixtureImage, makeLayout, makeMultiPlatformLayout, mkTemp, rmTemp, tarFiles, treeHash } from "../fixtures/layout.ts";
import { describeTree } from "./layer-fixtures.ts";
import { type GeneratorEnv, generatorEnv } from "../fixtures/generator.ts";
import { extract } from "../src/generator/extract.ts";
import { generate } from "../src/generator/generate.ts";
import { storeRootfs } from "../src/store/paths.ts";
import { Layout } from "../src/oci/layout.ts";
import { hostPlatform } from "../src/oci/platform.ts";
import { unpackRootfs } from "../src/layer/unpack.ts";
import { extractAll } from "../src/bulk/extract-all.ts";
import { chainIds, commonPrefix, readChainRecord } from "../src/store/chain.ts";
import { cloneTree, copyTree, haveGnuCp } from "../src/store/copy.ts";

type Env = GeneratorEnv;

function setup(): Env {
  return generatorEnv("ocigen-bulk-");
}

const BASE = tarFiles([
  { name: "etc/", dir: true },
  { name: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\n" },
  { name: "etc/os-release", data: "ID=fixture\n" },
  { name: "bin/", dir: true, mode: 0o755 },
  { name: "bin/sh", data: "#!fake shell\n", mode: 0o755 },
  { name: "usr/", dir: true },
  { name: "usr/lib/", dir: true },
  { name: "usr/lib/libc.so", data: "x".repeat(10000) },
  { name: "lib", symlink: "usr/lib" },
]);
const APP = tarFiles([{ name: "app/", dir: true }, { name: "app/run", data: "app\n", mode: 0o4755 }, { name: "etc/.wh.os-release" }]);
const APP2 = tarFiles([{ name: "srv/", dir: true }, { name: "srv/index.html", data: "<h1>hi</h1>\n" }, { name: "usr/lib/.wh..wh..opq" }]);
const EXTRA = tarFiles([{ name: "extra", data: "more\n" }]);
const cmd: Pick<FixtureImage, "config"> = { config: { config: { Cmd: ["/bin/sh"] } } as FixtureImage["config"] };

/** The test tree: base, app (2 tags, one manifest, extends base), app2 (extends base), app-plus (extends app), broken. */
function makeTree(e: Env): { corrupt: string } {
  makeLayout(join(e.layouts, "base"), [{ tags: ["latest"], layers: [BASE], ...cmd }]);
  makeLayout(join(e.layouts, "myorg.com/app"), [
    { tags: ["v1", "stable"], layers: [BASE, APP], ...cmd },
    { tags: ["plus"], layers: [BASE, APP, EXTRA], ...cmd },
  ]);
  makeLayout(join(e.layouts, "myorg.com/app2"), [{ tags: ["1.0"], layers: [BASE, APP2], ...cmd }]);
  const fx = makeLayout(join(e.layouts, "broken"), [{ tags: ["latest"], layers: [BASE, tarFiles([{ name: "bad", data: "bad".repeat(1000) }])], ...cmd }]);
  const blob = join(fx.dir, "blobs/sha256", fx.layers[0][1].digest.slice(7));
  const b = fs.readFileSync(blob);
  b[b.length - 20] ^= 0xff;
  fs.writeFileSync(blob, b);
  return { corrupt: fx.layers[0][1].digest };
}

function storeEntries(extracts: string): string[] {
  const d = join(extracts, ".store/sha256");
  return fs.existsSync(d) ? fs.readdirSync(d).filter((n) => fs.existsSync(join(d, n, "rootfs"))).sort() : [];
}

describe("extract --all", () => {
  for (const mode of ["inline", "process"] as const) {
    test(`extracts each distinct manifest once, reports the corrupt one; a second run does nothing; units find their rootfs current (${mode})`, async () => {
      const e = setup();
      try {
        const { corrupt } = makeTree(e);
        const r = await extractAll({ config: e.cfg, jobs: 2, mode, configPath: e.conf, progress: false });
        const by = new Map(r.images.map((i) => [i.image, i]));
        assert.deepEqual([...by.keys()].sort(), ["base:latest", "broken:latest", "myorg.com/app2:1.0", "myorg.com/app:plus", "myorg.com/app:stable,v1"]);
        assert.deepEqual(r.failed, ["broken:latest"]);
        const pids = new Set(r.images.filter((i) => i.status !== "failed").map((i) => i.pid));
        if (mode === "process") assert.ok([...pids].some((p) => p !== process.pid), "worker processes ran jobs");
        else assert.deepEqual([...pids], [process.pid]);
        assert.match(by.get("broken:latest")!.error!, new RegExp(corrupt.slice(7, 19)));
        // 4 good manifests, each once in the store; the broken one left nothing behind.
        assert.equal(storeEntries(e.extracts).length, 4);
        assert.equal(fs.readdirSync(join(e.extracts, ".store")).filter((n) => n.startsWith(".bulk-")).length, 0, "scratch trees removed");
        for (const i of r.images) if (i.status !== "failed") assert.ok(i.status === "extracted" || i.status === "reused", `${i.image}: ${i.status}`);
        // Reuse: app starts from base, plus from app, app2 from base.
        assert.equal(by.get("myorg.com/app:stable,v1")!.status, "reused");
        assert.equal(by.get("myorg.com/app:stable,v1")!.applied, 1);
        assert.equal(by.get("myorg.com/app:plus")!.status, "reused");
        assert.equal(by.get("myorg.com/app:plus")!.applied, 1);
        assert.equal(by.get("myorg.com/app2:1.0")!.status, "reused");
        // Every tag is linked, both tags of one manifest to the same store entry.
        const v1 = fs.readlinkSync(join(e.extracts, "com.myorg.app.ref.v1/rootfs"));
        assert.equal(fs.readlinkSync(join(e.extracts, "com.myorg.app.ref.stable/rootfs")), v1);
        assert.equal(fs.readFileSync(join(e.extracts, "com.myorg.app.ref.plus/rootfs/extra"), "utf8"), "more\n");
        assert.equal(fs.existsSync(join(e.extracts, "broken.ref.latest/rootfs")), false);
        // Each store entry records the verified chain.
        for (const m of storeEntries(e.extracts)) assert.ok(readChainRecord(e.extracts, `sha256:${m}`), `chain record of ${m}`);

        // Second run: nothing to do, nothing changes (but the broken image still fails).
        const before = treeHash(e.extracts);
        const r2 = await extractAll({ config: e.cfg, jobs: 2, mode, configPath: e.conf, progress: false });
        assert.deepEqual(r2.failed, ["broken:latest"]);
        for (const i of r2.images) if (i.image !== "broken:latest") assert.equal(i.status, "current", i.image);
        assert.equal(treeHash(e.extracts), before);

        // The units the generator writes for this tree: their extract is a no-op.
        const out = join(e.tmp, "units");
        const g = await generate({ config: e.cfg, outDir: out, reporter: { error() {}, warn() {}, info() {} } });
        const units = g.units.filter((u) => u.name !== "broken");
        assert.equal(units.length, 5);
        for (const u of units) {
          const x = await extract({ config: e.cfg, name: u.name, tag: u.tag });
          assert.equal(x.extracted, false, `${u.unit} extracted again`);
          assert.equal(x.changed, false, `${u.unit} changed`);
        }
        assert.equal(treeHash(e.extracts), before);
      } finally {
        rmTemp(e.tmp);
      }
    });
  }

  test("extracts what the generator makes units of: tag selection of the settings files, Platform= of each image", async () => {
    const e = setup();
    try {
      const other = hostPlatform().architecture === "amd64" ? "arm64" : "amd64";
      const img = (tags: string[], data: string): FixtureImage => ({ tags, layers: [tarFiles([{ name: "which", data }])], config: { config: { Cmd: ["/bin/sh"] } } as never });
      makeLayout(join(e.layouts, "sel"), [img(["v1"], "v1\n"), img(["v1-2024-01-02_1"], "dated\n"), img(["beta"], "beta\n")]);
      makeMultiPlatformLayout(join(e.layouts, "multi"), "latest", [hostPlatform(), { os: "linux", architecture: other }]);
      fs.mkdirSync(e.settings);
      fs.writeFileSync(join(e.settings, "sel.image"), "[Image]\nExcludeTag=beta\n");
      fs.writeFileSync(join(e.settings, "multi.image"), `[Image]\nPlatform=linux/${other}\n`);
      const r = await extractAll({ config: e.cfg, jobs: 1, mode: "inline", configPath: e.conf, progress: false });
      assert.deepEqual(r.failed, []);
      assert.deepEqual(r.images.map((i) => i.image).sort(), ["multi:latest", "sel:v1"], "neither the dated tag nor the excluded one");
      assert.equal(storeEntries(e.extracts).length, 2);
      assert.equal(fs.readFileSync(join(e.extracts, "sel.ref.v1/rootfs/which"), "utf8"), "v1\n");
      assert.ok(fs.existsSync(join(e.extracts, "multi.ref.latest/rootfs", `arch-${other}`)), "the settings' platform, not the host's");
      // the units' own extract then finds it current
      const x = await extract({ config: e.cfg, name: "multi", tag: "latest" });
      assert.equal(x.extracted, false);
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("trees started from a shared base equal full unpacks; --no-reuse extracts every layer", async () => {
    const e = setup();
    try {
      makeTree(e);
      // Two images sharing only their base: a scratch tree of the base is built once for both.
      makeLayout(join(e.layouts, "pair"), [
        { tags: ["a"], layers: [BASE, APP2, EXTRA], ...cmd },
        { tags: ["b"], layers: [BASE, APP2, APP], ...cmd },
      ]);
      const r = await extractAll({ config: e.cfg, jobs: 1, progress: false });
      const by = new Map(r.images.map((i) => [i.image, i]));
      assert.equal(by.get("pair:a")!.status, "reused");
      assert.equal(by.get("pair:b")!.status, "reused");
      const off = setup();
      try {
        makeTree(off);
        makeLayout(join(off.layouts, "pair"), [
          { tags: ["a"], layers: [BASE, APP2, EXTRA], ...cmd },
          { tags: ["b"], layers: [BASE, APP2, APP], ...cmd },
        ]);
        const r0 = await extractAll({ config: off.cfg, jobs: 1, reuse: false, progress: false });
        for (const i of r0.images) if (i.status !== "failed") assert.equal(i.status, "extracted", i.image);
        assert.equal(r0.shared.length, 0);
        for (const i of r.images) {
          if (i.status === "failed") continue;
          const a = describeTree(storeRootfs(e.extracts, i.manifest!), { mtime: true });
          const b = describeTree(storeRootfs(off.extracts, i.manifest!), { mtime: true });
          // Directory mtimes of directories a layer changed without naming them are "now": compare files only.
          const strip = (m: Map<string, string>) => new Map([...m].map(([k, v]) => [k, v.startsWith("dir") ? v.replace(/ @\d+$/, "") : v]));
          assert.deepEqual(strip(a), strip(b), i.image);
        }
      } finally {
        rmTemp(off.tmp);
      }
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("a later run starts from earlier extracts only when their recorded chain and tree still hold", async () => {
    const e = setup();
    try {
      makeLayout(join(e.layouts, "base"), [{ tags: ["latest"], layers: [BASE], ...cmd }]);
      // Extracted by a unit's own extract: no chain record, so never a source.
      makeLayout(join(e.layouts, "other"), [{ tags: ["x"], layers: [APP2], ...cmd }]);
      await extract({ config: e.cfg, name: "other", tag: "x" });
      const r1 = await extractAll({ config: e.cfg, jobs: 1, progress: false });
      assert.equal(r1.images.find((i) => i.image === "base:latest")!.status, "extracted");
      assert.equal(r1.images.find((i) => i.image === "other:x")!.status, "current");

      // A new image on top of base: started from base's tree.
      makeLayout(join(e.layouts, "app"), [{ tags: ["1"], layers: [BASE, APP], ...cmd }]);
      makeLayout(join(e.layouts, "app-on-other"), [{ tags: ["1"], layers: [APP2, EXTRA], ...cmd }]);
      const r2 = await extractAll({ config: e.cfg, jobs: 1, progress: false });
      const by2 = new Map(r2.images.map((i) => [i.image, i]));
      assert.equal(by2.get("app:1")!.status, "reused");
      assert.equal(by2.get("app:1")!.source, "extract sha256:" + by2.get("base:latest")!.manifest!.slice(7, 19) + "..");
      assert.equal(by2.get("app-on-other:1")!.status, "extracted", "no record: not a source");

      // A service wrote into base's rootfs: the next image extending base unpacks every layer.
      const baseRoot = storeRootfs(e.extracts, by2.get("base:latest")!.manifest!);
      fs.appendFileSync(join(baseRoot, "etc/passwd"), "intruder:x:0:0::/:/bin/sh\n");
      makeLayout(join(e.layouts, "app2"), [{ tags: ["1"], layers: [BASE, APP2], ...cmd }]);
      const r3 = await extractAll({ config: e.cfg, jobs: 1, progress: false });
      const a2 = r3.images.find((i) => i.image === "app2:1")!;
      assert.equal(a2.status, "extracted");
      assert.match(a2.warnings?.join(" ") ?? "", /changed since it was extracted/);
      assert.doesNotMatch(fs.readFileSync(join(storeRootfs(e.extracts, a2.manifest!), "etc/passwd"), "utf8"), /intruder/);
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("extract --all racing the units' own extract: each image extracted once, every call succeeds", async () => {
    const e = setup();
    try {
      makeTree(e);
      const [bulk, ...units] = await Promise.all([
        extractAll({ config: e.cfg, jobs: 2, mode: "inline", progress: false }),
        extract({ config: e.cfg, name: "myorg.com/app", tag: "v1" }),
        extract({ config: e.cfg, name: "myorg.com/app", tag: "plus" }),
        extract({ config: e.cfg, name: "base", tag: "latest" }),
      ]);
      assert.deepEqual(bulk.failed, ["broken:latest"]);
      const by = new Map(bulk.images.map((i) => [i.image, i]));
      // Whoever came first extracted; the other found it current.
      const app = by.get("myorg.com/app:stable,v1")!;
      assert.equal(app.status === "current", units[0].extracted);
      assert.equal(by.get("base:latest")!.status === "current", units[2].extracted);
      assert.equal(storeEntries(e.extracts).length, 4);
      for (const u of ["com.myorg.app.ref.v1", "com.myorg.app.ref.stable", "com.myorg.app.ref.plus", "base.ref.latest", "com.myorg.app2.ref.1.0"]) {
        assert.ok(fs.statSync(join(e.extracts, u, "rootfs")).isDirectory(), u);
      }
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("the CLI exits 1 naming the failed image, prints the summary and --json", () => {
    const e = setup();
    try {
      makeTree(e);
      const run = (...args: string[]) =>
        spawnSync(process.execPath, ["--import", "tsx", "src/main.ts", "extract", "--all", "--config", e.conf, ...args], { encoding: "utf8" });
      if ((globalThis as { Deno?: unknown }).Deno) return; // the CLI run below is Node-specific (tsx); covered under Node
      const r = run("--jobs", "2");
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /1 of 5 images failed: broken:latest/);
      assert.match(r.stdout, /^image +layers +MB +seconds +MB\/s +result/m);
      assert.match(r.stdout, /myorg\.com\/app:stable,v1 .* reused \(base:latest\)/);
      const j = run("--json", "--jobs", "1");
      assert.equal(j.status, 1);
      const parsed = JSON.parse(j.stdout);
      assert.deepEqual(parsed.failed, ["broken:latest"]);
      assert.equal(parsed.images.filter((i: { status: string }) => i.status === "current").length, 4);
    } finally {
      rmTemp(e.tmp);
    }
  });
});

describe("chain ids and copyTree", () => {
  test("chainIds follow the image-spec definition", () => {
    const a = "sha256:" + "a".repeat(64), b = "sha256:" + "b".repeat(64);
    const c = chainIds([a, b]);
    assert.equal(c[0], a);
    assert.equal(c[1], "sha256:" + createHash("sha256").update(`${a} ${b}`).digest("hex"));
    assert.equal(commonPrefix(c, chainIds([a])), 1);
    assert.equal(commonPrefix(c, chainIds([b])), 0);
  });

  for (const how of ["copyTree", "cloneTree"] as const) {
    test(`${how} keeps types, modes, owners, mtimes, hard links and xattrs`, () => {
      if (how === "cloneTree" && !haveGnuCp()) return; // cloneTree is copyTree then
      const tmp = mkTemp("ocigen-copy-");
      try {
        const src = join(tmp, "src");
        fs.mkdirSync(src);
        fs.mkdirSync(join(src, "d/e"), { recursive: true });
        fs.writeFileSync(join(src, "d/f"), "data");
        fs.chmodSync(join(src, "d/f"), 0o4711);
        fs.linkSync(join(src, "d/f"), join(src, "hard"));
        fs.symlinkSync("../nowhere", join(src, "d/link"));
        spawnSync("mkfifo", [join(src, "fifo")]);
        fs.chmodSync(join(src, "d/e"), 0o1750);
        const root = typeof process.getuid === "function" && process.getuid() === 0;
        if (root) fs.lchownSync(join(src, "d/f"), 123, 456);
        const xa = spawnSync("setfattr", ["-n", "user.test", "-v", "hello", join(src, "d/f")]).status === 0;
        fs.utimesSync(join(src, "d/e"), 1000000, 1000000);
        fs.utimesSync(join(src, "d"), 2000000, 2000000);
        fs.utimesSync(src, 3000000, 3000000);
        const dst = join(tmp, "dst");
        fs.mkdirSync(dst);
        if (how === "copyTree") assert.equal(copyTree(src, dst).hardlinks, 1);
        else assert.equal(cloneTree(src, dst), "cp");
        assert.deepEqual(describeTree(dst, { mtime: true }), describeTree(src, { mtime: true }));
        assert.equal(fs.statSync(dst).mtimeMs, 3000000000);
        assert.equal(fs.statSync(join(dst, "hard")).ino, fs.statSync(join(dst, "d/f")).ino);
        if (xa) {
          const g = spawnSync("getfattr", ["-n", "user.test", "--only-values", join(dst, "d/f")], { encoding: "utf8" });
          assert.equal(g.stdout, "hello");
        }
      } finally {
        rmTemp(tmp);
      }
    });
  }

  test("a reused tree equals a full unpack of the same image", async () => {
    const tmp = mkTemp("ocigen-reuse-");
    try {
      const fx = makeLayout(join(tmp, "l"), [{ tags: ["x"], layers: [BASE, APP, APP2], ...cmd }]);
      const layout = await Layout.open(fx.dir);
      const img = await layout.resolve("x");
      await unpackRootfs(layout, img, join(tmp, "full"));
      // base only, then copied and completed
      fs.mkdirSync(join(tmp, "base"));
      const { applyLayers } = await import("../src/layer/unpack.ts");
      const d = img.config.rootfs.diff_ids;
      await applyLayers(layout, img.manifest.layers.slice(0, 1), d.slice(0, 1), join(tmp, "base"));
      fs.mkdirSync(join(tmp, "re"));
      copyTree(join(tmp, "base"), join(tmp, "re"));
      await applyLayers(layout, img.manifest.layers.slice(1), d.slice(1), join(tmp, "re"));
      assert.deepEqual(describeTree(join(tmp, "re")), describeTree(join(tmp, "full")));
    } finally {
      rmTemp(tmp);
    }
  });
});

