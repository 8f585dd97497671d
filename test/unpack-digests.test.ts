// The file digests an unpack computes while writing (for umoci's mtree) and
// the one walk that writes both bundle manifests: every recorded digest must
// be the digest of the final tree's file, whatever later layers did to it,
// on the worker path and in this thread; the manifests must equal what a
// separate scan gives.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { Layout } from "../src/oci/layout.ts";
import { unpackBundle } from "../src/layer/unpack.ts";
import { fileDigest, readBundleManifest, writeBundleManifest } from "../src/bundle/manifest.ts";
import { parseMtree, writeUmociMtree } from "../src/bundle/mtree.ts";
import { writeBundleManifests } from "../src/bundle/write.ts";
import { WrittenDigests } from "../src/layer/written.ts";
import { type LayerSpec, makeImage, sha256, tmpdir } from "./layer-fixtures.ts";

const big = (seed: number, n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + (i >> 9)) & 0xff);

const layers: LayerSpec[] = [
  {
    entries: [
      { name: "etc/", type: "dir" },
      { name: "etc/over", data: "first version\n" },
      { name: "etc/same-size", data: "aaaa" },
      { name: "etc/target", data: "linked content\n" },
      { name: "etc/hl", type: "link", linkname: "etc/target" },
      { name: "etc/keep-link-old", data: "old inode\n" },
      { name: "gone/", type: "dir" },
      { name: "gone/f", data: "will be whited out\n" },
      { name: "wh", data: "whiteout me\n" },
      { name: "big", data: big(1, 300_000) },
    ],
  },
  {
    entries: [
      { name: "etc/over", data: "second, longer version\n" },
      { name: "etc/same-size", data: "bbbb" }, // same size, new content: the size alone cannot tell
      { name: "etc/hl2", type: "link", linkname: "etc/keep-link-old" },
      { name: "etc/keep-link-old", data: "new inode, the link keeps the old one\n" },
      { name: "gone/.wh..wh..opq", data: "" },
      { name: "gone/f", data: "recreated after the opaque marker\n" },
      { name: ".wh.wh", data: "" },
      { name: "sp", data: new Uint8Array(3000).fill(7, 1000, 1100), sparse: [{ offset: 1000, size: 100 }, { offset: 3000, size: 0 }] },
      { name: "sp-lead", data: new Uint8Array(70_000).fill(9, 0, 10), sparse: [{ offset: 0, size: 10 }, { offset: 70_000, size: 0 }] },
    ],
  },
  {
    entries: [
      { name: ".wh.wh", data: "" },
      { name: "wh", type: "dir" }, // whited out earlier, now a directory
      { name: "wh/inside", data: "x" },
      { name: "big", data: big(2, 300_000) },
      { name: "empty", data: "" },
    ],
  },
];

function mtreeFile(bundle: string): string {
  const f = fs.readdirSync(bundle).find((n) => n.endsWith(".mtree"));
  assert.ok(f, "no mtree in the bundle");
  return path.join(bundle, f);
}

/** Every regular file of the mtree: its recorded digest equals the final file's, read now. */
function checkMtreeDigests(bundle: string): number {
  const entries = parseMtree(fs.readFileSync(mtreeFile(bundle), "utf8"));
  let files = 0;
  for (const e of entries) {
    if (e.type !== "file") continue;
    files++;
    assert.equal(e.digest, fileDigest(path.join(bundle, "rootfs", e.path)), e.path);
  }
  return files;
}

describe("digests recorded while unpacking", () => {
  for (const inflate of ["worker", "wasm"] as const) {
    test(`mtree digests are those of the final tree (${inflate === "worker" ? "worker thread" : "this thread"})`, async () => {
      const dir = tmpdir();
      try {
        makeImage(path.join(dir, "l"), layers);
        const layout = await Layout.open(path.join(dir, "l"));
        const bundle = path.join(dir, "b");
        const state = await unpackBundle(layout, await layout.resolve("latest"), bundle, { inflate, durable: false });
        const files = checkMtreeDigests(bundle);
        assert.equal(files, 12);
        const root = path.join(bundle, "rootfs");
        assert.equal(fs.readFileSync(path.join(root, "etc/hl2"), "utf8"), "old inode\n");
        assert.equal(fs.readFileSync(path.join(root, "gone/f"), "utf8"), "recreated after the opaque marker\n");
        assert.equal(fs.statSync(path.join(root, "sp")).size, 3000);
        // each final file's digest came from the record, not from reading it again
        const written = state.written;
        assert.ok(written, "digests were recorded");
        for (const e of parseMtree(fs.readFileSync(mtreeFile(bundle), "utf8"))) {
          if (e.type !== "file") continue;
          const st = fs.lstatSync(path.join(root, e.path), { bigint: true });
          assert.equal(written.lookup(st), e.digest, `${e.path} recorded`);
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test("a record is used only for the same inode and size", () => {
    const dir = tmpdir();
    try {
      const w = new WrittenDigests();
      const a = path.join(dir, "a");
      const fd = fs.openSync(a, "wx");
      fs.writeSync(fd, "hello");
      w.finish(fd, sha256(new TextEncoder().encode("hello")).slice(7), 5);
      fs.closeSync(fd);
      assert.equal(w.lookup(fs.lstatSync(a, { bigint: true })), fileDigest(a));
      fs.appendFileSync(a, "!"); // same inode, other size
      assert.equal(w.lookup(fs.lstatSync(a, { bigint: true })), undefined);
      const b = path.join(dir, "b");
      fs.writeFileSync(b, "hello"); // same size, other inode
      assert.equal(w.lookup(fs.lstatSync(b, { bigint: true })), undefined);
      // a size that is not what was hashed is never recorded, and drops an older record
      const fd2 = fs.openSync(b, "r+");
      w.finish(fd2, "00".repeat(32), 5);
      assert.ok(w.lookup(fs.lstatSync(b, { bigint: true })));
      w.finish(fd2, "11".repeat(32), 4);
      fs.closeSync(fd2);
      assert.equal(w.lookup(fs.lstatSync(b, { bigint: true })), undefined);
      assert.equal(w.lookup(fs.lstatSync(dir, { bigint: true })), undefined, "directories are never looked up");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("both bundle manifests from one walk", () => {
  test("same entries and order as the separate writers, names sorting differently by bytes and code units", async () => {
    const dir = tmpdir();
    try {
      const root = path.join(dir, "rootfs");
      // U+FFFD sorts before U+1F600 by UTF-8 bytes, after it by UTF-16 code units
      for (const d of ["\uFFFD", "\u{1F600}", "a", "a/\uFFFD", "a/\u{1F600}", "b"]) fs.mkdirSync(path.join(root, d), { recursive: true });
      for (const f of ["\uFFFD/f", "\u{1F600}/f", "a/\u{1F600}/g", "z", "a b", "a/\uFFFDx"]) fs.writeFileSync(path.join(root, f), f);
      fs.symlinkSync("z", path.join(root, "lnk"));
      const one = path.join(dir, "one");
      const two = path.join(dir, "two");
      fs.mkdirSync(one);
      fs.mkdirSync(two);
      const digest = "sha256:" + "ab".repeat(32);
      await writeBundleManifests(one, root, { manifestDigest: digest, treeName: "T", xattrs: new Map() });
      writeUmociMtree(two, root, digest, "T", new Map());
      await writeBundleManifest(two, root, { xattrs: new Map(), forManifest: digest });
      const mt = (b: string) => fs.readFileSync(mtreeFile(b), "utf8").split("\n").filter((l) => !/^#\s+date:/.test(l));
      assert.deepEqual(mt(one), mt(two));
      const m1 = readBundleManifest(one);
      const m2 = readBundleManifest(two);
      assert.deepEqual(m1.header, m2.header);
      assert.deepEqual(m1.entries.map((e) => [e.path, e.type, e.ino, e.link]), m2.entries.map((e) => [e.path, e.type, e.ino, e.link]));
      // the mtree walks the directories bytewise: U+FFFD first
      const dirs = parseMtree(fs.readFileSync(mtreeFile(one), "utf8")).filter((e) => e.type === "dir").map((e) => e.path);
      assert.deepEqual(dirs, [".", "a", "a/\uFFFD", "a/\u{1F600}", "b", "\uFFFD", "\u{1F600}"]);
      // the manifest by code units: the surrogate pair first
      const top = m1.entries.filter((e) => !e.path.includes("/")).map((e) => e.path);
      assert.deepEqual(top, [".", "a", "a b", "b", "lnk", "z", "\u{1F600}", "\uFFFD"]);
      assert.equal(fs.readdirSync(one).filter((n) => n.includes(".tmp-")).length, 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
