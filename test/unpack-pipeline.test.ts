// The worker-thread layer pipeline (FileGunzip: the worker reads the blob,
// hashes it, checks its size, inflates, hashes the output) and the one-layer
// lookahead of applyLayers: same trees and the same typed errors as the
// in-thread path. The `inflate: "worker"` option forces the worker for small layers.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { OcigenError } from "../src/errors.ts";
import { Layout } from "../src/oci/layout.ts";
import { unpackRootfs } from "../src/layer/unpack.ts";
import { BlobReadError, closeIdleWorkers, FILE_WORKER_MIN_BYTES, FileGunzip, fileWorkerWanted, startFileGunzip } from "../src/compress/inflate-worker.ts";
import { CollectSink } from "../src/stream/sink.ts";
import { type LayerSpec, describeTree, makeImage, plantCanary, tmpdir } from "./layer-fixtures.ts";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const sha = (b: Uint8Array) => "sha256:" + createHash("sha256").update(b).digest("hex");

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    // compressible: small alphabet, some runs
    b[i] = (x >>> 24) % 7 === 0 ? 0 : 97 + ((x >>> 8) % 5);
  }
  return b;
}

async function rejects(p: Promise<unknown>, code: string, re?: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OcigenError, String((e as Error)?.stack ?? e));
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    assert.ok(!e.message.includes("\n"));
    return;
  }
  assert.fail(`expected ${code}`);
}

describe("FileGunzip (worker reads, hashes and inflates a file)", () => {
  test("multi-member gzip: output, input and output digests", async () => {
    const dir = tmpdir();
    try {
      const a = bytes(3_000_000, 7), b = bytes(200_000, 9);
      const gz = new Uint8Array(Buffer.concat([zlib.gzipSync(a), zlib.gzipSync(b)]));
      const f = path.join(dir, "x.gz");
      fs.writeFileSync(f, gz);
      const job = new FileGunzip(f, { name: "test blob", size: gz.length });
      const out = new CollectSink();
      let read = 0;
      job.pump(out, (n) => void (read += n));
      const all = out.bytes();
      assert.equal(all.length, a.length + b.length);
      assert.equal(sha(all), sha(new Uint8Array(Buffer.concat([a, b]))));
      assert.equal(job.outputDigest(), sha(all));
      assert.equal(job.inputDigest(), sha(gz));
      assert.equal(read, gz.length);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await closeIdleWorkers();
    }
  });

  test("missing file, wrong size, truncated and corrupt streams: typed errors", async () => {
    const dir = tmpdir();
    try {
      const gz = new Uint8Array(zlib.gzipSync(bytes(500_000, 3)));
      const f = path.join(dir, "x.gz");
      fs.writeFileSync(f, gz);
      const pump = (file: string, size?: number) => new FileGunzip(file, { name: "blob x", size }).pump(new CollectSink());
      const expect = (fn: () => void, cls: typeof OcigenError, code: string, re: RegExp) => {
        assert.throws(fn, (e: unknown) => {
          assert.ok(e instanceof cls, String(e));
          assert.equal((e as OcigenError).code, code);
          assert.match((e as Error).message, re);
          return true;
        });
      };
      expect(() => pump(path.join(dir, "nope"), 10), BlobReadError, "EIO", /blob x: open failed \(ENOENT\)/);
      expect(() => pump(f, gz.length - 1), BlobReadError, "ESIZE", /longer than/);
      expect(() => pump(f, gz.length + 1), BlobReadError, "ESIZE", /shorter than/);
      fs.writeFileSync(f, gz.subarray(0, gz.length - 100));
      expect(() => pump(f), OcigenError, "EDECOMPRESS", /blob x: truncated/);
      fs.writeFileSync(f, gz.map((x, i) => (i === 40 ? x ^ 0x5a : x)));
      expect(() => pump(f), OcigenError, "EDECOMPRESS", /Cannot decompress blob x/);
      fs.writeFileSync(f, new Uint8Array([...gz, 1, 2, 3]));
      expect(() => pump(f), OcigenError, "EDECOMPRESS", /trailing garbage/);
      // a destroyed job cannot be pumped; the pool still works afterwards
      fs.writeFileSync(f, gz);
      const j = new FileGunzip(f, { size: gz.length });
      j.destroy();
      assert.throws(() => j.pump(new CollectSink()), /already used or destroyed/);
      const out = new CollectSink();
      new FileGunzip(f, { size: gz.length }).pump(out);
      assert.equal(out.bytes().length, 500_000);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await closeIdleWorkers();
    }
  });

  test("startFileGunzip honours the inflate mode and the size threshold", () => {
    assert.equal(startFileGunzip("/nonexistent", { size: 1 << 30, mode: "wasm" }), null);
    assert.equal(startFileGunzip("/nonexistent", { size: 1 << 30, mode: "js" }), null);
    assert.equal(startFileGunzip("/nonexistent", { size: 10, minSize: 100 }), null);
    // a small layer (a 2 MiB busybox image) is inflated in this thread: no worker is started for it
    assert.equal(startFileGunzip("/nonexistent", { size: 2 << 20 }), null);
    assert.equal(fileWorkerWanted(2 << 20), false);
    assert.equal(fileWorkerWanted(FILE_WORKER_MIN_BYTES), os.availableParallelism() >= 2);
    assert.equal(fileWorkerWanted(10, "worker"), true);
  });
});

const base: LayerSpec = {
  entries: [
    { name: "etc/", type: "dir", mode: 0o755 },
    { name: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\n" },
    { name: "bin/sh", data: "#!", mode: 0o755 },
    { name: "usr/lib/big.so", data: bytes(1_500_000, 11), mode: 0o755 },
    { name: "usr/lib/gone", data: "x" },
    { name: "opt/dir/a", data: "a" },
    { name: "opt/dir/b", data: "b" },
    { name: "lnk", type: "symlink", linkname: "usr/lib" },
  ],
};
const upper: LayerSpec[] = [
  { entries: [{ name: "usr/lib/more.so", data: bytes(1_200_000, 12), mode: 0o700 }, { name: "hard", type: "link", linkname: "usr/lib/big.so" }] },
  {
    entries: [
      { name: "usr/lib/.wh.gone", data: "" },
      { name: "opt/dir/.wh..wh..opq", data: "" },
      { name: "opt/dir/c", data: "c" },
      { name: "usr/lib/big.so", data: bytes(300_000, 13) },
      { name: "lnk/via-link", data: "through the symlink" },
    ],
  },
];

describe("applyLayers on the worker pipeline", () => {
  test("same tree as the in-thread pipeline (whiteouts, opaque, hard links, replacement, lookahead)", async () => {
    const dir = tmpdir();
    try {
      makeImage(path.join(dir, "l"), [base, ...upper]);
      const layout = await Layout.open(path.join(dir, "l"));
      const img = await layout.resolve("latest");
      const trees: Map<string, string>[] = [];
      const mtimes: number[][] = [];
      for (const mode of ["wasm", "worker", undefined] as const) {
        const target = path.join(dir, `r-${mode ?? "default"}`);
        await unpackRootfs(layout, img, target, { durable: false, inflate: mode });
        // (implicitly created directories get the time of the run: mtimes compared for files only)
        trees.push(describeTree(target));
        mtimes.push(["etc/passwd", "usr/lib/big.so", "usr/lib/more.so", "opt/dir/c", "etc"].map((f) => fs.lstatSync(path.join(target, f)).mtimeMs));
      }
      assert.deepEqual(mtimes[1], mtimes[0]);
      assert.deepEqual(mtimes[2], mtimes[0]);
      assert.deepEqual(trees[1], trees[0]);
      assert.deepEqual(trees[2], trees[0]);
      const r = path.join(dir, "r-worker");
      assert.equal(fs.existsSync(path.join(r, "usr/lib/gone")), false);
      assert.deepEqual(fs.readdirSync(path.join(r, "opt/dir")), ["c"]);
      assert.equal(fs.readFileSync(path.join(r, "usr/lib/via-link"), "utf8"), "through the symlink");
      assert.equal(fs.statSync(path.join(r, "hard")).size, 1_500_000);
      assert.equal(fs.statSync(path.join(r, "usr/lib/big.so")).size, 300_000);
      // the bundle starts the worker program embedded in it as text (no module file to load)
      const bundled = path.join(dir, "r-bundle");
      const cli = spawnSync("node", [path.join(root, "dist/ocigen.mjs"), "raw", "unpack", "--image", `${path.join(dir, "l")}:latest`, bundled], {
        encoding: "utf8", env: { ...process.env, OCIGEN_INFLATE: "worker" }, cwd: dir, timeout: 120_000,
      });
      assert.equal(cli.status, 0, cli.stderr);
      assert.deepEqual(describeTree(bundled), trees[0]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await closeIdleWorkers();
    }
  });

  const tiny = { entries: [{ name: "x", data: "1".repeat(5000) }] };
  const cases: Array<[string, LayerSpec, string, RegExp]> = [
    ["wrong digest", { ...tiny, mutateBlob: (b) => b.map((x, i) => (i === b.length - 9 ? x ^ 1 : x)) }, "EDIGEST", /digest mismatch/],
    ["wrong digest, stream still valid", { ...tiny, mutateBlob: (b) => b.map((x, i) => (i === 4 ? x ^ 1 : x)) }, "EDIGEST", /digest mismatch/],
    ["wrong size (short)", { ...tiny, size: 1 }, "ESIZE", /padded|truncated/],
    ["wrong size (long)", { ...tiny, size: 100000 }, "ESIZE", /truncated/],
    ["wrong diff_id", { ...tiny, diffId: "sha256:" + "0".repeat(64) }, "EDIFFID", /diff_id mismatch/],
    ["truncated gzip (consistent digest)", { ...tiny, mutateBlob: (b) => b.subarray(0, b.length - 20), digestAfter: true }, "EDECOMPRESS", /truncated/],
    ["corrupt gzip (consistent digest)", { entries: [{ name: "x", data: "hello ".repeat(3000) }], mutateBlob: (b) => b.map((x, i) => (i === 30 ? x ^ 0x55 : x)), digestAfter: true }, "EDECOMPRESS", /layer sha256:/],
    ["trailing junk after gzip", { ...tiny, mutateBlob: (b) => new Uint8Array([...b, 1, 2, 3]), digestAfter: true }, "EDECOMPRESS", /trailing (data|garbage)/],
    ["path escape by hard link", { entries: [{ name: "h", type: "link", linkname: "../../../etc/shadow" }] }, "EUNPACK", /entry h: hard link target/],
  ];
  for (const [name, layer, code, re] of cases) {
    for (const where of ["middle", "last"]) {
      test(`${name} (${where} layer, in the worker): ${code}, target absent, no temp left`, async () => {
        const dir = tmpdir();
        const canary = plantCanary(dir);
        try {
          makeImage(path.join(dir, "l"), where === "last" ? [base, layer] : [base, layer, upper[0]]);
          const layout = await Layout.open(path.join(dir, "l"));
          const img = await layout.resolve("latest");
          const target = path.join(dir, "rootfs");
          await rejects(unpackRootfs(layout, img, target, { inflate: "worker" }), code, re);
          assert.equal(fs.existsSync(target), false);
          assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes(".tmp-")), []);
          canary.check();
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  }

  test("missing blob (also the one looked ahead): ENOBLOB", async () => {
    const dir = tmpdir();
    try {
      makeImage(path.join(dir, "l"), [base, ...upper]);
      const layout = await Layout.open(path.join(dir, "l"));
      const img = await layout.resolve("latest");
      for (const i of [2, 1]) {
        fs.rmSync(layout.blobPath(img.manifest.layers[i].digest));
        await rejects(unpackRootfs(layout, img, path.join(dir, "r"), { inflate: "worker" }), "ENOBLOB");
        assert.equal(fs.existsSync(path.join(dir, "r")), false);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await closeIdleWorkers();
    }
  });
});
