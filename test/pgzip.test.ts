// Parallel gzip (src/compress/pgzip.ts): round trips over block boundaries,
// one valid gzip member (gzip -t, node:zlib, ocigen's own inflate), the same
// bytes whatever the worker count, bounded read-ahead, error propagation,
// and layers written with it read back by umoci.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { crc32 } from "../src/compress/gzip.ts";
import { wasmGunzipSync } from "../src/compress/inflate-wasm.ts";
import { crc32Combine, looksIncompressible, parallelGzip } from "../src/compress/pgzip.ts";
import { Layout } from "../src/oci/layout.ts";
import { MediaType } from "../src/oci/types.ts";
import { commitLayer } from "../src/repack/commit.ts";
import { insertPath } from "../src/repack/insert.ts";
import { repackBundle } from "../src/repack/repack.ts";
import { writeBundleManifest } from "../src/bundle/manifest.ts";
import { have, needTool, run, snapshot, snapshotDiff, tmpdir } from "./repack-util.ts";
import { setXattr } from "../src/bundle/xattr.ts";
import { concatBytes } from "../src/stream/sink.ts";

const B = 64 * 1024; // the smallest block size: many blocks from small inputs

/** Deterministic bytes of three kinds: random, text-like, zeros. */
function segment(kind: number, len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed * 2654435761 + 1;
  if (kind === 0) {
    for (let i = 0; i < len; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x & 0xff;
    }
  } else if (kind === 1) {
    const words = ["lorem ", "ipsum ", "dolor ", "sit ", "amet\n", "0x1f8b ", "/usr/lib "];
    let o = 0;
    while (o < len) {
      x = (x * 1103515245 + 12345) >>> 0;
      const w = words[x % words.length];
      for (let j = 0; j < w.length && o < len; j++) out[o++] = w.charCodeAt(j);
    }
  }
  return out;
}

async function* chunked(data: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let o = 0;
  let i = 0;
  while (o < data.length) {
    const n = cuts.length ? cuts[i++ % cuts.length] : data.length;
    yield data.subarray(o, o + n);
    o += n;
  }
}

async function gz(source: AsyncIterable<Uint8Array>, workers: number, blockSize = B): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of parallelGzip(source, { workers, blockSize })) parts.push(c);
  return concatBytes(parts);
}

const input = fc.record({
  segments: fc.array(fc.record({ kind: fc.integer({ min: 0, max: 2 }), len: fc.integer({ min: 0, max: 3 * B }) }), { maxLength: 5 }),
  // total length: exactly on, just around, or anywhere near block boundaries
  length: fc.oneof(
    fc.constantFrom(0, 1, B - 1, B, B + 1, 2 * B, 2 * B + 32768, 3 * B, 4 * B - 1),
    fc.integer({ min: 0, max: 5 * B }),
  ),
  cuts: fc.array(fc.integer({ min: 1, max: 2 * B + 7 }), { maxLength: 6 }),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
});

function build(r: { segments: { kind: number; len: number }[]; length: number; seed: number }): Uint8Array {
  const parts = r.segments.map((s, i) => segment(s.kind, s.len, r.seed + i));
  let data = concatBytes(parts);
  if (data.length < r.length) data = concatBytes([data, segment(1, r.length - data.length, r.seed)]);
  return data.subarray(0, r.length);
}

describe("crc32Combine", () => {
  test("crc32(A || B) from crc32(A), crc32(B) and |B|", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.uint8Array({ maxLength: 3000 }), (a, b) => {
        assert.equal(crc32Combine(crc32(a, 0), crc32(b, 0), b.length), crc32(concatBytes([a, b]), 0));
      }),
      { numRuns: 300 },
    );
  });
});

describe("parallelGzip", () => {
  test("round-trips over block boundaries and chunk sizes, the same bytes with and without workers", async () => {
    await fc.assert(
      fc.asyncProperty(input, async (r) => {
        const data = build(r);
        const a = await gz(chunked(data, r.cuts), 2);
        const b = await gz(chunked(data, [7919]), 0);
        assert.deepEqual(a, b, "same bytes whatever the workers and source chunks");
        assert.deepEqual(new Uint8Array(zlib.gunzipSync(a)), data, "node:zlib gunzip");
        assert.deepEqual(wasmGunzipSync(a), data, "ocigen's own inflate");
        // one member: header once, trailer = CRC-32 and size of everything
        const dv = new DataView(a.buffer, a.byteOffset, a.byteLength);
        assert.equal(dv.getUint32(a.length - 8, true), crc32(data, 0));
        assert.equal(dv.getUint32(a.length - 4, true), data.length);
      }),
      { numRuns: 25 },
    );
  });

  test("empty input and inputs of exactly one and two blocks", async () => {
    for (const n of [0, B, 2 * B]) {
      const data = segment(1, n, n + 1);
      const out = await gz(chunked(data, [B]), 2);
      assert.deepEqual(new Uint8Array(zlib.gunzipSync(out)), data, `${n} bytes`);
    }
  });

  test("gzip -t accepts a multi-block stream with stored (incompressible) blocks", { skip: needTool("gzip") }, async () => {
    const dir = tmpdir("ocigen-pgzip-");
    try {
      const data = concatBytes([segment(1, 3 * B + 5, 1), segment(0, 4 * B, 2), segment(2, B, 3), segment(1, 100, 4)]);
      const f = path.join(dir, "x.gz");
      fs.writeFileSync(f, await gz(chunked(data, [10000]), 2));
      const t = spawnSync("gzip", ["-t", f], { encoding: "utf8" });
      assert.equal(t.status, 0, t.stderr);
      const d = spawnSync("gzip", ["-dc", f]);
      assert.deepEqual(new Uint8Array(d.stdout), data);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("random data is recognised as incompressible, text is not", () => {
    assert.equal(looksIncompressible(segment(0, 1 << 20, 9)), true);
    assert.equal(looksIncompressible(segment(1, 1 << 20, 9)), false);
    assert.equal(looksIncompressible(concatBytes([segment(0, 900_000, 9), segment(2, 148_576, 0)])), false);
  });

  test("reads at most a few blocks ahead of what was taken", async () => {
    let pulled = 0;
    async function* endless(): AsyncGenerator<Uint8Array> {
      for (;;) {
        pulled += B;
        yield segment(1, B, pulled);
      }
    }
    const it = parallelGzip(endless(), { workers: 2, blockSize: B })[Symbol.asyncIterator]();
    await it.next(); // header
    await it.next(); // first block
    await it.return(undefined);
    assert.ok(pulled <= 10 * B, `read ${pulled / B} blocks ahead`);
  });

  test("an error of the source propagates (and the workers stop)", async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 5; i++) yield segment(1, B, i);
      throw new Error("source broke");
    }
    await assert.rejects(gz(failing(), 2), /source broke/);
  });
});

describe("layers written with parallel gzip", () => {
  const skip = needTool("umoci");

  async function emptyImage(dir: string): Promise<Layout> {
    const layout = await Layout.init(path.join(dir, "layout"));
    const r = await commitLayer(
      layout,
      {
        manifest: { schemaVersion: 2, config: { mediaType: MediaType.Config, digest: "", size: 0 }, layers: [] },
        config: { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, config: {} },
      },
      undefined,
      { created_by: "test" },
    );
    await layout.setTag("empty", r.manifestDescriptor);
    return layout;
  }

  /** A tree of a few MiB (several blocks): text, random and zero files. */
  function tree(root: string): void {
    for (let i = 0; i < 40; i++) {
      const d = path.join(root, `d${i % 7}`);
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, `f${i}`), segment(i % 3, 1000 + i * 37_000, i));
    }
    fs.symlinkSync("d1/f1", path.join(root, "link"));
    // xattrs travel too (insert reads them with a getfattr run beside its own walk)
    if (have("setfattr")) setXattr(path.join(root, "d2/f2"), "user.ocigen", new TextEncoder().encode("kept"));
  }

  test("insert (gzip, several blocks) is read back by umoci", { skip }, async () => {
    const dir = tmpdir("ocigen-pgzip-");
    try {
      const layout = await emptyImage(dir);
      const src = path.join(dir, "src");
      tree(src);
      await insertPath(layout, src, "/opt", { tag: "empty", newTag: "t", compression: "gzip" });
      const m = (await layout.resolve("t")).manifest;
      const blob = path.join(layout.dir, "blobs", ...m.layers.at(-1)!.digest.split(":"));
      assert.ok(fs.statSync(blob).size > 2 << 20, "several blocks");
      if (!needTool("gzip")) run("gzip", ["-t", blob]);
      const bundle = path.join(dir, "bundle");
      run("umoci", ["unpack", "--image", `${layout.dir}:t`, bundle]);
      const before = snapshot(src);
      if (have("setfattr")) assert.match(before.get("d2/f2")!, /user\.ocigen/);
      assert.deepEqual(snapshotDiff(before, snapshot(path.join(bundle, "rootfs/opt"))), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("repack (gzip, several blocks) is read back by umoci", { skip }, async () => {
    const dir = tmpdir("ocigen-pgzip-");
    try {
      const layout = await emptyImage(dir);
      const bundle = path.join(dir, "bundle");
      run("umoci", ["unpack", "--image", `${layout.dir}:empty`, bundle]);
      const rootfs = path.join(bundle, "rootfs");
      await writeBundleManifest(bundle, rootfs);
      tree(path.join(rootfs, "srv"));
      const r = await repackBundle(layout, bundle, { tag: "r", compression: "gzip" });
      assert.ok(r.layer && r.layer.size > 2 << 20);
      const b2 = path.join(dir, "b2");
      run("umoci", ["unpack", "--image", `${layout.dir}:r`, b2]);
      assert.deepEqual(snapshotDiff(snapshot(path.join(rootfs, "srv")), snapshot(path.join(b2, "rootfs/srv"))), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
