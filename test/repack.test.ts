import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { Layout } from "../src/oci/layout.ts";
import { writeBundleManifest } from "../src/bundle/manifest.ts";
import { repackBundle } from "../src/repack/repack.ts";
import { addTarLayer, insertPath, insertWhiteout } from "../src/repack/insert.ts";
import { unpackImageTo } from "../src/recipe/apply.ts";
import { unpackBundle } from "../src/layer/unpack.ts";
import { have, isRoot, makeBaseTree, mutateTree, needTool, run, snapshot, snapshotDiff, tmpdir } from "./repack-util.ts";

async function baseLayout(dir: string, extra?: (src: string) => void): Promise<Layout> {
  const layout = await Layout.init(path.join(dir, "layout"));
  const src = path.join(dir, "src");
  makeBaseTree(src);
  extra?.(src);
  const { commitLayer } = await import("../src/repack/commit.ts");
  const empty = await commitLayer(
    layout,
    {
      manifest: { schemaVersion: 2, config: { mediaType: "", digest: "", size: 0 }, layers: [] },
      config: { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, config: { Volumes: { "/vol": {} } } },
    },
    undefined,
    { created_by: "test base" },
  );
  await layout.setTag("empty", empty.manifestDescriptor);
  await insertPath(layout, src, "/", { tag: "empty", newTag: "base" });
  return layout;
}

/** Runs `fn` in a fresh temp dir holding the base layout (see baseLayout), removed afterwards. */
async function withBase(fn: (dir: string, layout: Layout) => Promise<void>, extra?: (src: string) => void): Promise<void> {
  const dir = tmpdir();
  try {
    await fn(dir, await baseLayout(dir, extra));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** `umoci unpack` of the base image into `bundle`, plus ocigen's bundle manifest; returns the rootfs. */
async function umociBundle(layout: Layout, bundle: string): Promise<string> {
  run("umoci", ["unpack", "--image", `${layout.dir}:base`, bundle]);
  const rootfs = path.join(bundle, "rootfs");
  await writeBundleManifest(bundle, rootfs);
  return rootfs;
}

describe("repack round trips through umoci unpack", () => {
  const skip = needTool("umoci");
  test("unpack -> change everything -> repack -> unpack gives the changed tree", { skip }, async () => {
    await withBase(async (dir, layout) => {
      const bundle = path.join(dir, "bundle");
      const rootfs = await umociBundle(layout, bundle);
      mutateTree(rootfs, { xattr: true });
      const expected = snapshot(rootfs);
      const r = await repackBundle(layout, bundle, { tag: "new" });
      assert.ok(r.layer, "a layer was written");
      const bundle2 = path.join(dir, "bundle2");
      run("umoci", ["unpack", "--image", `${layout.dir}:new`, bundle2]);
      const got = snapshot(path.join(bundle2, "rootfs"));
      assert.deepEqual(snapshotDiff(expected, got), []);
    });
  });

  test("no change -> only an empty_layer history entry", { skip }, async () => {
    await withBase(async (dir, layout) => {
      const bundle = path.join(dir, "bundle");
      run("umoci", ["unpack", "--image", `${layout.dir}:base`, bundle]);
      await writeBundleManifest(bundle, path.join(bundle, "rootfs"));
      const before = await layout.resolve("base");
      const r = await repackBundle(layout, bundle, { tag: "same", history: { comment: "nothing" } });
      assert.equal(r.layer, undefined);
      const after = await layout.resolve("same");
      assert.deepEqual(after.manifest.layers, before.manifest.layers);
      assert.deepEqual(after.config.rootfs.diff_ids, before.config.rootfs.diff_ids);
      const h = after.config.history!;
      assert.equal(h.length, before.config.history!.length + 1);
      assert.equal(h[h.length - 1].empty_layer, true);
      assert.equal(h[h.length - 1].comment, "nothing");
    });
  });

  test("volumes are masked, --mask-path too, unless disabled", { skip }, async () => {
    await withBase(async (dir, layout) => {
      const bundle = path.join(dir, "bundle");
      const rootfs = await umociBundle(layout, bundle);
      fs.mkdirSync(path.join(rootfs, "vol"));
      fs.writeFileSync(path.join(rootfs, "vol/data"), "volume data");
      fs.writeFileSync(path.join(rootfs, "etc/masked"), "m");
      const r = await repackBundle(layout, bundle, { tag: "m", maskPaths: ["/etc/masked"] });
      // only the root and etc/ directories changed
      const b2 = path.join(dir, "b2");
      run("umoci", ["unpack", "--image", `${layout.dir}:m`, b2]);
      assert.ok(!fs.existsSync(path.join(b2, "rootfs/vol/data")));
      assert.ok(!fs.existsSync(path.join(b2, "rootfs/etc/masked")));
      assert.ok(r.layer);
      await repackBundle(layout, bundle, { tag: "m2", maskVolumes: false });
      const b3 = path.join(dir, "b3");
      run("umoci", ["unpack", "--image", `${layout.dir}:m2`, b3]);
      assert.equal(fs.readFileSync(path.join(b3, "rootfs/vol/data"), "utf8"), "volume data");
    });
  });

  test("byte-identical layers across two runs with the same SOURCE_DATE_EPOCH", { skip }, async () => {
    await withBase(async (dir, layout) => {
      const digests: string[] = [];
      for (const n of [1, 2]) {
        const bundle = path.join(dir, `bundle${n}`);
        run("umoci", ["unpack", "--image", `${layout.dir}:base`, bundle]);
        const rootfs = path.join(bundle, "rootfs");
        await writeBundleManifest(bundle, rootfs);
        mutateTree(rootfs);
        for (const c of ["gzip", "zstd", "none", "portable"] as const) {
          const comp = c === "portable" ? "gzip" : c;
          const gzip = c === "portable" ? "portable" : "parallel";
          const r = await repackBundle(layout, bundle, { tag: `r${n}${c}`, compression: comp, gzip, sourceDateEpoch: 1_600_000_000 });
          digests.push(`${c} ${r.layer!.digest} ${r.diffId}`);
        }
      }
      assert.deepEqual(digests.slice(0, 4), digests.slice(4));
      // one tar (diff_id) whatever the compressor
      assert.equal(new Set(digests.map((d) => d.split(" ")[2])).size, 1);
    });
  });

  test(".wh. names are refused", { skip }, async () => {
    await withBase(async (dir, layout) => {
      const bundle = path.join(dir, "bundle");
      const rootfs = await umociBundle(layout, bundle);
      fs.writeFileSync(path.join(rootfs, "etc/.wh.evil"), "");
      await assert.rejects(repackBundle(layout, bundle, { tag: "x" }), /\.wh\./);
      assert.ok(!(await layout.listTags()).includes("x"));
    });
  });
});

describe("interop and other verbs", () => {
  const skip = needTool("umoci");
  test("umoci repack output is read by ocigen (unpack gives the changed tree)", { skip }, async () => {
    await withBase(async (dir, layout) => {
      const bundle = path.join(dir, "bundle");
      run("umoci", ["unpack", "--image", `${layout.dir}:base`, bundle]);
      const rootfs = path.join(bundle, "rootfs");
      mutateTree(rootfs, { xattr: true });
      // umoci 0.4.7 writes mtimes ROUNDED to whole seconds (snapshot() floors them):
      // whole-second times make the comparison independent of the sub-second part
      const whole = (rel: string) => {
        const p = path.join(rootfs, rel);
        const st = fs.lstatSync(p);
        if (st.isDirectory()) for (const n of fs.readdirSync(p)) whole(path.join(rel, n));
        const t = Math.floor(st.mtimeMs / 1000);
        fs.lutimesSync(p, t, t);
      };
      whole("");
      const expected = snapshot(rootfs);
      run("umoci", ["repack", "--image", `${layout.dir}:byumoci`, bundle]);
      const out = path.join(dir, "out");
      fs.mkdirSync(out);
      await unpackImageTo(layout, await layout.resolve("byumoci"), out);
      // umoci records directory mtimes of the tree it packs; compare everything
      assert.deepEqual(snapshotDiff(expected, snapshot(out)), []);
    });
  });

  test("ocigen repacks a bundle made by umoci unpack (umoci's mtree)", { skip }, async () => {
    await withBase(async (dir, layout) => {
      const bundle = path.join(dir, "bundle");
      run("umoci", ["unpack", "--image", `${layout.dir}:base`, bundle]);
      const same = await repackBundle(layout, bundle, { tag: "same" });
      assert.equal(same.changes, 0, "an untouched umoci bundle has no changes");
      const rootfs = path.join(bundle, "rootfs");
      mutateTree(rootfs, { xattr: true });
      const expected = snapshot(rootfs);
      const r = await repackBundle(layout, bundle, { tag: "fromumoci" });
      assert.ok(r.layer);
      const b2 = path.join(dir, "b2");
      run("umoci", ["unpack", "--image", `${layout.dir}:fromumoci`, b2]);
      assert.deepEqual(snapshotDiff(expected, snapshot(path.join(b2, "rootfs"))), []);
    });
  });

  test("--refresh-bundle: a second repack sees only the new changes", { skip }, async () => {
    await withBase(async (dir, layout) => {
      const bundle = path.join(dir, "bundle");
      const rootfs = await umociBundle(layout, bundle);
      fs.writeFileSync(path.join(rootfs, "etc/one"), "1");
      const r1 = await repackBundle(layout, bundle, { tag: "one", refreshBundle: true });
      fs.writeFileSync(path.join(rootfs, "etc/two"), "2");
      const r2 = await repackBundle(layout, bundle, { tag: "two" });
      const img = await layout.resolve("two");
      assert.equal(img.manifest.layers.length, 3); // insert + one + two
      assert.equal(img.manifest.layers[1].digest, r1.layer!.digest);
      const list = run("tar", ["-tzf", layout.blobPath(r2.layer!.digest)]).split("\n").filter(Boolean).sort();
      assert.deepEqual(list, ["etc/", "etc/two"]);
    });
  });

  test("insert (file, tree, --opaque), insert --whiteout, raw add-layer", { skip }, async () => {
    await withBase(async (dir, layout) => {
      const f = path.join(dir, "motd");
      fs.writeFileSync(f, "welcome\n");
      await insertPath(layout, f, "/etc/motd", { tag: "base", newTag: "i1" });
      const tree = path.join(dir, "doc");
      fs.mkdirSync(path.join(tree, "new"), { recursive: true });
      fs.writeFileSync(path.join(tree, "new/file"), "n");
      await insertPath(layout, tree, "/usr/share/doc", { tag: "i1", newTag: "i2", opaque: true });
      await insertWhiteout(layout, "/srv/sym", { tag: "i2", newTag: "i3" });
      const tarDir = path.join(dir, "tarsrc");
      fs.mkdirSync(path.join(tarDir, "added"), { recursive: true });
      fs.writeFileSync(path.join(tarDir, "added/by-tar"), "t");
      run("tar", ["-C", tarDir, "-cf", path.join(dir, "l.tar"), "added"]);
      await addTarLayer(layout, path.join(dir, "l.tar"), { tag: "i3", newTag: "i4", history: { comment: "raw" } });
      await assert.rejects(addTarLayer(layout, f, { tag: "i3" }), /not a tar archive/);
      const img = await layout.resolve("i4");
      assert.equal(img.config.history!.at(-1)!.comment, "raw");
      const b = path.join(dir, "b");
      run("umoci", ["unpack", "--image", `${layout.dir}:i4`, b]);
      const r = path.join(b, "rootfs");
      assert.equal(fs.readFileSync(path.join(r, "etc/motd"), "utf8"), "welcome\n");
      assert.deepEqual(fs.readdirSync(path.join(r, "usr/share/doc")), ["new"]); // opaque hid a/ and b/
      assert.ok(!fs.existsSync(path.join(r, "srv/sym")));
      assert.equal(fs.readFileSync(path.join(r, "added/by-tar"), "utf8"), "t");
      assert.equal(fs.readFileSync(path.join(r, "etc/hostname"), "utf8"), "base\n");
    });
  });

  test("the CLI verbs parse their flags", async () => {
    await withBase(async (dir, layout) => {
      const { main: realMain } = await import("../src/cli/main.ts");
      // main() reports process.exitCode, which the test runner sets when an earlier test failed
      const main = async (argv: string[]) => {
        const saved = process.exitCode;
        process.exitCode = undefined;
        try {
          return await realMain(argv);
        } finally {
          process.exitCode = saved;
        }
      };
      const f = path.join(dir, "x");
      fs.writeFileSync(f, "x");
      const code = await main(["node", "ocigen", "insert", "--image", `${layout.dir}:base`, "--tag", "c1", "--history.comment", "hi",
        "--history.created_by", "me", "--compress", "zstd", f, "/x"]);
      assert.equal(code, 0);
      const img = await layout.resolve("c1");
      assert.equal(img.manifest.layers.at(-1)!.mediaType, "application/vnd.oci.image.layer.v1.tar+zstd");
      assert.equal(img.config.history!.at(-1)!.created_by, "me");
      assert.equal(img.config.history!.at(-1)!.comment, "hi");
      assert.equal(await main(["node", "ocigen", "insert", "--image", `${layout.dir}:c1`, "--tag", "c2", "--compress", "auto", f, "/y"]), 0);
      assert.equal((await layout.resolve("c2")).manifest.layers.at(-1)!.mediaType, "application/vnd.oci.image.layer.v1.tar+zstd");
      const bad = await main(["node", "ocigen", "repack", "--image", `${layout.dir}:z`, path.join(dir, "nobundle")]);
      assert.equal(bad, 1);
    });
  });
});

describe("round trips through ocigen unpack", () => {
  test("unpack -> change everything -> repack -> unpack gives the changed tree", async () => {
    await withBase(async (dir, layout) => {
      const bundle = path.join(dir, "bundle");
      await unpackBundle(layout, await layout.resolve("base"), bundle);
      const rootfs = path.join(bundle, "rootfs");
      mutateTree(rootfs, { xattr: true });
      const expected = snapshot(rootfs);
      await repackBundle(layout, bundle, { tag: "new", compression: "zstd" });
      const bundle2 = path.join(dir, "bundle2");
      await unpackBundle(layout, await layout.resolve("new"), bundle2);
      assert.deepEqual(snapshotDiff(expected, snapshot(path.join(bundle2, "rootfs"))), []);
      // and the repacked bundle repacks to nothing new
      const again = await repackBundle(layout, bundle2, { tag: "again" });
      assert.equal(again.layer, undefined);
      assert.equal(again.changes, 0);
    });
  });

  test("long and unicode names, long link targets, big ids, empty files survive (ocigen and umoci)", async () => {
    await withBase(async (dir, layout) => {
      const bundle = path.join(dir, "bundle");
      await unpackBundle(layout, await layout.resolve("base"), bundle);
      const rootfs = path.join(bundle, "rootfs");
      const long = Array.from({ length: 6 }, (_, i) => `directory-level-${i}-${"x".repeat(30)}`).join("/");
      fs.mkdirSync(path.join(rootfs, long), { recursive: true });
      fs.writeFileSync(path.join(rootfs, long, "f".repeat(120)), "deep");
      fs.writeFileSync(path.join(rootfs, "étoile ✓ 日本"), "unicode");
      fs.writeFileSync(path.join(rootfs, "empty"), "");
      fs.symlinkSync("/" + long + "/" + "f".repeat(120), path.join(rootfs, "longlink"));
      if (isRoot) fs.chownSync(path.join(rootfs, "empty"), 3_000_000, 4_000_000);
      fs.mkdirSync(path.join(rootfs, "sgid"));
      fs.chmodSync(path.join(rootfs, "sgid"), 0o2775);
      const expected = snapshot(rootfs);
      await repackBundle(layout, bundle, { tag: "odd" });
      const b2 = path.join(dir, "b2");
      await unpackBundle(layout, await layout.resolve("odd"), b2);
      assert.deepEqual(snapshotDiff(expected, snapshot(path.join(b2, "rootfs"))), []);
      if (have("umoci")) {
        const b3 = path.join(dir, "b3");
        run("umoci", ["unpack", "--image", `${layout.dir}:odd`, b3]);
        assert.deepEqual(snapshotDiff(expected, snapshot(path.join(b3, "rootfs"))), []);
      }
    });
  });

  test("rootless bundle: owners recorded at unpack come back in the layer", { skip: isRoot ? undefined : "needs root to make the base" }, async () => {
    const dir = tmpdir();
    try {
      const layout = await baseLayout(dir, (src) => {
        fs.writeFileSync(path.join(src, "srv/owned"), "o");
        fs.chownSync(path.join(src, "srv/owned"), 1234, 5678);
      });
      const bundle = path.join(dir, "bundle");
      await unpackBundle(layout, await layout.resolve("base"), bundle, { rootless: true });
      const rootfs = path.join(bundle, "rootfs");
      fs.appendFileSync(path.join(rootfs, "srv/owned"), "more");
      fs.writeFileSync(path.join(rootfs, "srv/fresh"), "f");
      const r = await repackBundle(layout, bundle, { tag: "rl" });
      const listing = run("tar", ["-tvzf", layout.blobPath(r.layer!.digest), "--numeric-owner"]);
      assert.match(listing, /1234\/5678 .* srv\/owned/);
      assert.match(listing, /0\/0 .* srv\/fresh/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

void have;
