// Directory mtimes on unpack: a layer that adds, replaces, hard-links or whites out entries inside a
// directory it does not itself carry must not change that directory's mtime (it keeps
// the one of the lower layer that declared it), as umoci does. Before the fix, such
// directories got the time of the unpack.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { addTarLayer, applyLayers, Layout, newImage, tarBytes } from "../src/mod.ts";
import { have } from "../src/util/which.ts";

async function makeImage(root: string): Promise<Layout> {
  const layout = await Layout.init(path.join(root, "layout"));
  await newImage(layout, "t", { created: "2024-01-01T00:00:00Z" });
  const layers = [
    [
      { name: "d/", type: "dir" as const, mtime: 1001 },
      { name: "d/a", data: "a", mtime: 1002 },
      { name: "d/sub/", type: "dir" as const, mtime: 1003 },
      { name: "d/sub/x", data: "x", mtime: 1004 },
      { name: "e/", type: "dir" as const, mtime: 1005 },
      { name: "e/f", data: "f", mtime: 1006 },
      { name: "w/", type: "dir" as const, mtime: 1007 },
      { name: "w/in/", type: "dir" as const, mtime: 1008 },
      { name: "w/in/2", data: "2", mtime: 1009 },
    ],
    [ // no directory entries at all
      { name: "d/.wh.a", data: "", mtime: 2001 },
      { name: "d/sub/.wh..wh..opq", data: "", mtime: 2002 },
      { name: "d/sub/y", data: "y", mtime: 2003 },
      { name: "e/g", data: "g", mtime: 2004 },
      { name: "e/hl", type: "link" as const, linkname: "e/f", mtime: 2005 },
      { name: "w/.wh.in", data: "", mtime: 2006 },
    ],
    [
      { name: "d/", type: "dir" as const, mtime: 3001 }, // declared again: its own time wins
      { name: "d/b", data: "b", mtime: 3002 },
      { name: "e/.wh.g", data: "", mtime: 3003 },
      { name: "e/f", data: "F", mtime: 3004 }, // replaced in place
    ],
  ];
  for (const [i, entries] of layers.entries()) {
    const tar = path.join(root, `l${i}.tar`);
    fs.writeFileSync(tar, tarBytes(entries));
    await addTarLayer(layout, tar, { tag: "t", compression: "none" });
  }
  return layout;
}

function mtimes(root: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of ["d", "d/sub", "e", "w"]) out[d] = Math.round(fs.lstatSync(path.join(root, d)).mtimeMs / 1000);
  return out;
}

test("undeclared parent directories keep the mtime of the layer that declared them", async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-dir-mtimes-"));
  try {
    const layout = await makeImage(root);
    const img = await layout.resolve("t");
    const rootfs = path.join(root, "rootfs");
    fs.mkdirSync(rootfs);
    await applyLayers(layout, img.manifest.layers, img.config.rootfs.diff_ids, rootfs, { rootless: true });
    assert.deepEqual(fs.readdirSync(path.join(rootfs, "d")).sort(), ["b", "sub"]);
    assert.deepEqual(fs.readdirSync(path.join(rootfs, "d/sub")), ["y"]);
    assert.deepEqual(fs.readdirSync(path.join(rootfs, "e")).sort(), ["f", "hl"]);
    assert.deepEqual(fs.readdirSync(path.join(rootfs, "w")), []);
    const want = { d: 3001, "d/sub": 1003, e: 1005, w: 1007 };
    assert.deepEqual(mtimes(rootfs), want);

    if (!have("umoci")) {
      if (process.env.CI) assert.fail("umoci not installed");
      t.diagnostic("umoci not installed: differential check skipped");
      return;
    }
    const u = path.join(root, "umoci-rootfs");
    execFileSync("umoci", ["raw", "unpack", "--rootless", "--image", `${layout.dir}:t`, u], { stdio: "ignore" });
    assert.deepEqual(mtimes(u), want, "same as umoci raw unpack");
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
