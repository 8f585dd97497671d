// A full disk (SPEC 3 "Atomicity", SPEC 2 errors) for the write side of a layout.
// - raw add-layer / insert / config into a layout on a full filesystem fail with one
//   message, and leave the layout consistent: index.json parses, every blob it
//   references exists, no temporary or lock files remain;
// - gc works on a full disk (it frees space), although the lock file's owner line does not fit;
// - unpack on a full disk names the entry once (regression: the message said
//   "entry big: big: write: ENOSPC").
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import {
  addTarLayer,
  configImage,
  gcLayout,
  insertPath,
  Layout,
  newImage,
  OcigenError,
  tarBytes,
  unpackRootfs,
} from "../src/mod.ts";

const ROOT = typeof process.getuid === "function" && process.getuid() === 0;
const HEX64 = /^[0-9a-f]{64}$/;

function checkConsistent(dir: string): void {
  const names = fs.readdirSync(dir).sort();
  assert.deepEqual(names, ["blobs", "index.json", "oci-layout"], `stray files in ${dir}: ${names}`);
  const stray = fs.readdirSync(path.join(dir, "blobs", "sha256")).filter((n) => !HEX64.test(n));
  assert.deepEqual(stray, [], "temporary blobs left behind");
  const idx = JSON.parse(fs.readFileSync(path.join(dir, "index.json"), "utf8"));
  for (const m of idx.manifests) {
    const p = path.join(dir, "blobs", "sha256", m.digest.slice(7));
    const man = JSON.parse(fs.readFileSync(p, "utf8"));
    for (const d of [man.config, ...man.layers]) {
      assert.ok(fs.existsSync(path.join(dir, "blobs", "sha256", d.digest.slice(7))), `missing ${d.digest}`);
    }
  }
}

function isENOSPC(e: unknown): boolean {
  return e instanceof OcigenError && /ENOSPC|no space/.test(e.message) && !e.message.includes("\n");
}

test("layout writes on a full disk fail cleanly and leave the layout consistent", {
  skip: ROOT ? false : "needs root to mount a small tmpfs",
}, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-full-disk-"));
  const mnt = path.join(dir, "small");
  fs.mkdirSync(mnt);
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], { encoding: "utf8" });
  if (m.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    t.skip(`cannot mount tmpfs here: ${m.stderr.trim()}`);
    return;
  }
  try {
    const l = path.join(mnt, "layout");
    const layout = await Layout.init(l);
    await newImage(layout, "t", { created: "2024-01-01T00:00:00Z" });
    const index0 = fs.readFileSync(path.join(l, "index.json"), "utf8");

    // a layer bigger than the filesystem (random: does not compress)
    const tar = path.join(dir, "big.tar");
    fs.writeFileSync(tar, tarBytes([{ name: "big", data: randomBytes(1200 << 10) }]));
    await assert.rejects(addTarLayer(layout, tar, { tag: "t", compression: "gzip" }), isENOSPC);
    checkConsistent(l);
    assert.equal(fs.readFileSync(path.join(l, "index.json"), "utf8"), index0, "index.json unchanged");

    const src = path.join(dir, "big.bin");
    fs.writeFileSync(src, randomBytes(1200 << 10));
    await assert.rejects(insertPath(layout, src, "/big.bin", { tag: "t" }), isENOSPC);
    checkConsistent(l);

    // an unreferenced blob that gc must be able to remove on the full disk
    const junk = await layout.writeBlob(randomBytes(64 << 10), "application/octet-stream");
    // fill the rest: even small config/manifest blobs cannot be written
    const fill = path.join(mnt, "fill");
    try {
      fs.writeFileSync(fill, randomBytes(1 << 20));
    } catch { /* filled up to the limit */ }
    await assert.rejects(configImage(layout, "t", { cmd: ["/bin/true"] }), isENOSPC);
    checkConsistent(l);
    assert.equal(fs.readFileSync(path.join(l, "index.json"), "utf8"), index0, "index.json unchanged");
    assert.deepEqual(await (await Layout.open(l)).listTags(), ["t"]);
    // gc frees space on a full disk (regression: it failed taking the lock, whose
    // owner line did not fit: "write lock file: ENOSPC")
    const probe = path.join(mnt, "probe");
    assert.throws(() => fs.writeFileSync(probe, "x"), /ENOSPC/, "the disk is full");
    fs.rmSync(probe, { force: true });
    await gcLayout(layout);
    assert.equal(fs.existsSync(path.join(l, "blobs", "sha256", junk.digest.slice(7))), false, "junk blob collected");
    checkConsistent(l);
    fs.rmSync(fill, { force: true });
    fs.rmSync(l, { recursive: true, force: true });

    // unpack onto the full filesystem: one message naming the entry once, nothing published
    const srcLayout = await Layout.init(path.join(dir, "src"));
    await newImage(srcLayout, "t");
    await addTarLayer(srcLayout, tar, { tag: "t", compression: "none" });
    const img = await srcLayout.resolve("t");
    await assert.rejects(unpackRootfs(srcLayout, img, path.join(mnt, "rootfs")), (e: unknown) => {
      assert.ok(e instanceof OcigenError);
      assert.match(e.message, /^Cannot unpack layer sha256:[0-9a-f]{12}\.\.: entry big: write: ENOSPC/);
      return true;
    });
    assert.deepEqual(fs.readdirSync(mnt), []);
  } finally {
    spawnSync("umount", [mnt]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
