// umoci's mtree of a large unpack, written by its own walk in a worker thread
// (src/layer/mtree-worker.ts) while this thread writes ocigen's manifest:
// byte for byte the mtree of the single walk (owners that switch the /set
// line, modes, links, digests from the record), errors of the walk reported
// with their path, and the written-digests record the same on both threads.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { Layout } from "../src/oci/layout.ts";
import { unpackBundle } from "../src/layer/unpack.ts";
import { startMtreeWorker } from "../src/layer/mtree-worker.ts";
import { WrittenDigests } from "../src/layer/written.ts";
import { parseMtree } from "../src/bundle/mtree.ts";
import { fileDigest } from "../src/bundle/manifest.ts";
import { closeIdleWorkers } from "../src/compress/inflate-worker.ts";
import type { TarWriterEntry } from "../src/tar/writer.ts";
import { makeImage, tmpdir } from "./layer-fixtures.ts";
import { captureStderr } from "./capture-stderr.ts";
import { setLogLevel } from "../src/log.ts";

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

function mtreeText(bundle: string): string {
  const f = fs.readdirSync(bundle).find((n) => n.endsWith(".mtree"));
  assert.ok(f, `no mtree in ${bundle}`);
  // the date comment is the time of the run; the tree comment names the bundle
  return fs.readFileSync(path.join(bundle, f), "utf8").split("\n").filter((l) => !l.startsWith("#") || l.startsWith("# ") && !l.includes(": ")).join("\n");
}

/** A tree whose directories change owner (new /set lines) with files, links, odd modes and names needing escapes. */
function entries(): TarWriterEntry[] {
  const out: TarWriterEntry[] = [];
  for (let d = 0; d < 6; d++) {
    const owner = isRoot ? [d % 3 === 0 ? 0 : 1000 + d, d % 2 ? 50 : 0] : [0, 0];
    out.push({ name: `d${d}/`, type: "dir", mode: 0o755, uid: owner[0], gid: owner[1], mtime: 1_600_000_000 });
    out.push({ name: `d${d}/sub/`, type: "dir", mode: 0o700 });
    for (let i = 0; i < 40; i++) {
      out.push({ name: `d${d}/${i % 5 ? "" : "sub/"}f ${i}#*`, data: "x".repeat(i * 13), mode: i % 4 ? 0o664 : 0o4755, uid: i % 2 ? owner[0] : 7, gid: owner[1], mtime: 1_650_000_000 + i });
    }
    out.push({ name: `d${d}/ln`, type: "symlink", linkname: "../d0/f 1#*" });
    out.push({ name: `d${d}/hard`, type: "link", linkname: `d${d}/f 3#*` });
  }
  return out;
}

describe("umoci's mtree from a worker's walk", () => {
  after(() => closeIdleWorkers());

  test("byte for byte the single walk's mtree, digests from the record", async () => {
    const dir = tmpdir();
    try {
      makeImage(path.join(dir, "l"), [{ entries: entries() }, { entries: [{ name: "d2/f 7#*", data: "changed" }, { name: "d4/.wh.sub" }] }]);
      const layout = await Layout.open(path.join(dir, "l"));
      const img = await layout.resolve("latest");
      const texts: string[] = [];
      for (const min of [Infinity, 0]) {
        const bundle = path.join(dir, `b-${min}`);
        setLogLevel("debug");
        const { value: state, stderr } = await captureStderr(() => unpackBundle(layout, img, bundle, { durable: false, mtreeWorkerMinFiles: min }));
        setLogLevel("info");
        assert.equal(/umoci's mtree from its own walk in a worker thread/.test(stderr), min === 0, stderr);
        texts.push(mtreeText(bundle));
        assert.ok(state.written && state.written.size > 200);
        let files = 0;
        for (const e of parseMtree(fs.readFileSync(path.join(bundle, fs.readdirSync(bundle).find((n) => n.endsWith(".mtree"))!), "utf8"))) {
          if (e.type !== "file") continue;
          files++;
          assert.equal(e.digest, fileDigest(path.join(bundle, "rootfs", e.path)), e.path);
        }
        assert.ok(files > 200, `expected the files in the mtree, found ${files}`);
        assert.ok(fs.existsSync(path.join(bundle, "ocigen.mtree.jsonl")));
      }
      // the trees differ only in implicitly created directories' times (the run's): compare without tar_time of those
      const strip = (t: string) => t.replace(/tar_time=\d+/g, (m) => (Number(m.slice(9)) > 1_700_000_000 ? "tar_time=RUN" : m));
      assert.equal(strip(texts[1]), strip(texts[0]));
      if (isRoot) assert.ok((texts[0].match(/^\/set /gm) ?? []).length >= 4, "the tree switches /set lines");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a walk that fails rejects with the path at fault", async () => {
    const dir = tmpdir();
    try {
      const missing = path.join(dir, "no-such-rootfs");
      const done = startMtreeWorker({ bundleDir: dir, rootfs: missing, manifestDigest: "sha256:" + "a".repeat(64), treeName: missing, xattrs: new Map() }, new WrittenDigests());
      assert.ok(done, "a worker starts");
      await assert.rejects(done, (e: Error & { code?: string }) => {
        assert.equal(e.code, "EIO");
        assert.ok(e.message.includes(missing), e.message);
        return true;
      });
      assert.deepEqual(fs.readdirSync(dir), [], "no temporary file left");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a snapshot of the digest record answers as the record does", () => {
    const dir = tmpdir();
    try {
      const w = new WrittenDigests();
      const files: string[] = [];
      for (let i = 0; i < 1500; i++) {
        const f = path.join(dir, `f${i}`);
        const fd = fs.openSync(f, "wx");
        fs.writeSync(fd, `content ${i}`);
        w.finish(fd, fileDigest(f).slice(7), `content ${i}`.length);
        fs.closeSync(fd);
        files.push(f);
      }
      fs.appendFileSync(files[3], "!"); // no longer the recorded size
      const copy = WrittenDigests.fromSnapshot(structuredClone(w.snapshot()));
      assert.equal(copy.size, w.size);
      for (const f of files) {
        const st = fs.lstatSync(f, { bigint: true });
        assert.equal(copy.lookup(st), w.lookup(st), f);
      }
      assert.equal(copy.lookup(fs.lstatSync(files[3], { bigint: true })), undefined);
      assert.equal(copy.lookup(fs.lstatSync(files[4], { bigint: true })), fileDigest(files[4]));
      assert.throws(() => WrittenDigests.fromSnapshot({ ...w.snapshot(), n: w.size + 1 }), /inconsistent/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
