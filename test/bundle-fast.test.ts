// The bundle manifest written by `unpack` with the engine's "no xattrs" hint
// (no recursive getfattr pass) must equal a full scan of the same rootfs.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { Buffer } from "node:buffer";
import { Layout } from "../src/oci/layout.ts";
import { unpackBundle } from "../src/layer/unpack.ts";
import { BUNDLE_MANIFEST_NAME, readBundleManifest, writeBundleManifest } from "../src/bundle/manifest.ts";
import { xattrsSupported } from "../src/bundle/xattr.ts";
import { have, type LayerSpec, makeImage, tmpdir } from "./layer-fixtures.ts";

const haveXattrTools = xattrsSupported() && have("setfattr");

async function unpackTo(layers: LayerSpec[]): Promise<{ dir: string; bundle: string; rootfs: string; text: string }> {
  const dir = tmpdir("ocigen-bundle-fast-");
  makeImage(path.join(dir, "l"), layers);
  const layout = await Layout.open(path.join(dir, "l"));
  const bundle = path.join(dir, "b");
  await unpackBundle(layout, await layout.resolve("latest"), bundle, { durable: false });
  const rootfs = path.join(bundle, "rootfs");
  const text = fs.readFileSync(path.join(bundle, BUNDLE_MANIFEST_NAME), "utf8");
  return { dir, bundle, rootfs, text };
}

const plain: LayerSpec[] = [
  {
    entries: [
      { name: "etc", type: "dir", mode: 0o755, mtime: 1000 },
      { name: "etc/passwd", data: "root:x:0:0::/root:/bin/sh\n", mode: 0o644, mtime: 1001 },
      { name: "bin", type: "dir", mtime: 1002 },
      { name: "bin/sh", data: "#!fake\n", mode: 0o755, mtime: 1003 },
      { name: "bin/ash", type: "link", linkname: "bin/sh" },
      { name: "bin/bash", type: "symlink", linkname: "sh" },
      { name: "a-c", data: "x" },
      { name: "a", type: "dir" },
      { name: "a/b", data: "y", mode: 0o4755 },
      { name: "empty", type: "dir", mode: 0o700 },
    ],
  },
  { entries: [{ name: "etc/.wh.passwd", data: "" }, { name: "etc/group", data: "root:x:0:\n" }] },
];

describe("bundle manifest fast path", () => {
  test("an unpack without xattrs writes the manifest a full scan writes", async () => {
    const { dir, bundle, rootfs, text } = await unpackTo(plain);
    try {
      const m = readBundleManifest(bundle);
      assert.ok(m.entries.length >= 10);
      assert.ok(m.entries.every((e) => !e.xattrs));
      assert.deepEqual(m.entries.map((e) => e.path).slice(0, 4), [".", "a", "a/b", "a-c"]);
      // the same rootfs, scanned fully (recursive getfattr), without the hint
      await writeBundleManifest(bundle, rootfs, { forManifest: readBundleManifest(bundle).header.manifest });
      assert.equal(fs.readFileSync(path.join(bundle, BUNDLE_MANIFEST_NAME), "utf8"), text);
      // and with the hint given explicitly
      await writeBundleManifest(bundle, rootfs, { noXattrs: true, forManifest: readBundleManifest(bundle).header.manifest });
      assert.equal(fs.readFileSync(path.join(bundle, BUNDLE_MANIFEST_NAME), "utf8"), text);
      assert.equal(fs.readdirSync(bundle).filter((n) => n.includes(".tmp-")).length, 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an unpack with xattrs still records them", { skip: haveXattrTools ? undefined : "getfattr/setfattr not installed" }, async () => {
    const layers: LayerSpec[] = [
      {
        entries: [
          { name: "d", type: "dir", xattrs: { "user.d": "dir" } },
          { name: "d/x", data: "x", xattrs: { "user.a": "1", "user.bin": new Uint8Array([0, 255, 10]) } },
          { name: "y", data: "y" },
        ],
      },
    ];
    const { dir, bundle, rootfs, text } = await unpackTo(layers);
    try {
      const m = readBundleManifest(bundle);
      assert.equal(m.header.xattrs, true);
      const by = new Map(m.entries.map((e) => [e.path, e]));
      assert.deepEqual(by.get("d")!.xattrs, { "user.d": Buffer.from("dir").toString("base64") });
      assert.deepEqual(by.get("d/x")!.xattrs, { "user.a": "MQ==", "user.bin": "AP8K" });
      assert.equal(by.get("y")!.xattrs, undefined);
      await writeBundleManifest(bundle, rootfs, { forManifest: readBundleManifest(bundle).header.manifest });
      assert.equal(fs.readFileSync(path.join(bundle, BUNDLE_MANIFEST_NAME), "utf8"), text);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the hint is not trusted when the root itself carries xattrs", { skip: haveXattrTools ? undefined : "getfattr/setfattr not installed" }, async () => {
    const { dir, bundle, rootfs } = await unpackTo(plain);
    try {
      const { setXattr } = await import("../src/bundle/xattr.ts");
      setXattr(rootfs, "user.root", new Uint8Array([1]));
      setXattr(path.join(rootfs, "etc/group"), "user.g", new Uint8Array([2]));
      await writeBundleManifest(bundle, rootfs, { noXattrs: true, forManifest: readBundleManifest(bundle).header.manifest });
      const hinted = fs.readFileSync(path.join(bundle, BUNDLE_MANIFEST_NAME), "utf8");
      await writeBundleManifest(bundle, rootfs, { forManifest: readBundleManifest(bundle).header.manifest });
      assert.equal(fs.readFileSync(path.join(bundle, BUNDLE_MANIFEST_NAME), "utf8"), hinted);
      const by = new Map(readBundleManifest(bundle).entries.map((e) => [e.path, e]));
      assert.deepEqual(by.get("etc/group")!.xattrs, { "user.g": "Ag==" });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
