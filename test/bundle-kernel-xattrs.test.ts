// Extended attributes the kernel attaches to what an unpack creates (here a
// default ACL inherited from the bundle's parent directory; on other hosts
// LSM labels) are recorded in both bundle manifests, although no layer set
// an xattr: the root of the new tree is probed (while the layers are
// applied) and, since it carries one, the whole tree is read.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { Layout } from "../src/oci/layout.ts";
import { unpackBundle } from "../src/layer/unpack.ts";
import { readBundleManifest } from "../src/bundle/manifest.ts";
import { umociMtreeName } from "../src/bundle/mtree.ts";
import { have } from "../src/util/which.ts";
import { type LayerSpec, makeImage, tmpdir } from "./layer-fixtures.ts";

/** A minimal POSIX ACL in the kernel's xattr encoding: user::rwx group::r-x other::r-x (other: `other`). */
function minimalAcl(other = 5): string {
  const b = Buffer.alloc(4 + 3 * 8);
  b.writeUInt32LE(2, 0); // version
  const entries: Array<[number, number]> = [[0x01, 7], [0x04, 5], [0x20, other]];
  entries.forEach(([tag, perm], i) => {
    b.writeUInt16LE(tag, 4 + i * 8);
    b.writeUInt16LE(perm, 6 + i * 8);
    b.writeUInt32LE(0xffffffff, 8 + i * 8);
  });
  return "0s" + b.toString("base64");
}

const skip = !have("setfattr") && !process.env.CI && "setfattr (package attr) not installed";

/**
 * Unpacks a one-layer image of `entries` into `dir/acl/bundle`, where `dir/acl`
 * carries a default ACL (`other` as in {@linkcode minimalAcl}); the bundle's
 * path and the image's manifest digest, or null on a file system without
 * POSIX ACLs (nothing the kernel could attach).
 */
async function unpackBelowAcl(dir: string, entries: LayerSpec["entries"], other?: number) {
  makeImage(path.join(dir, "l"), [{ entries }]);
  const parent = path.join(dir, "acl");
  fs.mkdirSync(parent);
  const set = spawnSync("setfattr", ["-n", "system.posix_acl_default", "-v", minimalAcl(other), parent], { encoding: "utf8" });
  if (set.status !== 0) {
    assert.match(set.stderr, /not supported|Operation not permitted/i);
    return null;
  }
  const layout = await Layout.open(path.join(dir, "l"));
  const image = await layout.resolve("latest");
  const bundle = path.join(parent, "bundle");
  const state = await unpackBundle(layout, image, bundle, { durable: false });
  return { bundle, state, manifestDigest: image.manifestDescriptor.digest };
}

test("a default ACL inherited from the bundle's parent is recorded in both manifests", { skip }, async () => {
  const dir = tmpdir();
  try {
    const u = await unpackBelowAcl(dir, [{ name: "etc/", type: "dir" }, { name: "etc/app/", type: "dir" }, { name: "etc/app/conf", data: "x=1\n" }]);
    if (!u) return;
    const { bundle, state } = u;
    assert.equal(state.anyXattrs, false, "no layer set an xattr");
    const m = readBundleManifest(bundle);
    const dirs = m.entries.filter((e) => e.type === "dir" && e.path !== ".");
    assert.ok(dirs.length >= 2);
    for (const d of dirs) assert.ok(d.xattrs?.["system.posix_acl_default"], `${d.path}: inherited default ACL recorded`);
    const mtree = fs.readFileSync(path.join(bundle, umociMtreeName(u.manifestDigest)), "utf8");
    assert.match(mtree, /xattr\.system\.posix_acl_default=/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Below a default ACL a new file's mode is the requested one ANDed with the
// ACL's permissions, and the umask does not count: a file created with its
// final mode (no chmod after it, when the umask would keep that mode) came
// out 0640 instead of 0644 here, 0750 instead of 0755.
test("below a default ACL that takes bits away, every entry still gets its own mode", { skip }, async () => {
  const dir = tmpdir();
  try {
    const u = await unpackBelowAcl(dir, [
      { name: "etc/", type: "dir", mode: 0o755 },
      { name: "etc/conf", data: "x=1\n", mode: 0o644 },
      { name: "etc/secret", data: "s", mode: 0o600 },
      { name: "bin/", type: "dir", mode: 0o775 },
      { name: "bin/tool", data: "t", mode: 0o755 },
      { name: "tool2", data: "t", mode: 0o777 },
    ], 0);
    if (!u) return;
    const { bundle } = u;
    const mode = (p: string) => (fs.lstatSync(path.join(bundle, "rootfs", p)).mode & 0o7777).toString(8);
    assert.deepEqual(
      ["etc", "etc/conf", "etc/secret", "bin", "bin/tool", "tool2"].map((p) => `${p} ${mode(p)}`),
      ["etc 755", "etc/conf 644", "etc/secret 600", "bin 775", "bin/tool 755", "tool2 777"],
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
