// Parallel gzip over file spans (src/compress/pgzip.ts parallelGzipFiles,
// src/compress/file-span.ts, tarPieces in src/repack/layer-writer.ts): the
// deflate workers read the files themselves; the layer must be the same
// bytes as the tar read in the calling thread, its diff_id the hash of what
// was really read, a file changed between the two reads of a dictionary
// must not corrupt the stream, and a file replaced under us fails with the
// reader's own error. Recycled output buffers give the same bytes. The
// uncompressed stream (parallelReadFiles, --compress none) is the same tar.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import fc from "fast-check";
import { type GzipPiece, parallelGzip, parallelGzipFiles, parallelReadFiles } from "../src/compress/pgzip.ts";
import { createDigester } from "../src/digest/index.ts";
import { OcigenError } from "../src/errors.ts";
import { scanTree } from "../src/bundle/scan.ts";
import { type LayerItem, tarPieces, tarStream } from "../src/repack/layer-writer.ts";
import { concatBytes } from "../src/stream/sink.ts";
import { tmpdir } from "./repack-util.ts";

const B = 64 * 1024; // the smallest block size: many blocks from small trees

/** Deterministic bytes: random-ish (kind 0) or text-like (kind 1). */
function bytes(kind: number, len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = kind === 0 ? x & 0xff : 97 + ((x >>> 3) % 7) + ((x & 15) === 0 ? -87 : 0);
  }
  return out;
}

function itemsOf(root: string): LayerItem[] {
  return scanTree(root).map((e) => ({ kind: "entry", name: e.path, abs: e.path === "." ? root : path.join(root, e.path), entry: e }));
}

/** The tar as the calling thread reads it (the reference), and its gzip. */
async function inThread(items: LayerItem[], workers: number): Promise<{ tar: Uint8Array; gz: Uint8Array }> {
  const tarParts: Uint8Array[] = [];
  async function* tee() {
    for await (const c of tarStream(items, {}, createDigester())) {
      tarParts.push(c.slice());
      yield c;
    }
  }
  const gzParts: Uint8Array[] = [];
  for await (const c of parallelGzip(tee(), { workers, blockSize: B })) gzParts.push(c.slice());
  return { tar: concatBytes(tarParts), gz: concatBytes(gzParts) };
}

/** The tar as the workers read it (what onInput saw), and the gzip they made. */
async function viaSpans(
  source: AsyncIterable<GzipPiece[]>,
  opts: { workers: number; recycle?: boolean },
): Promise<{ tar: Uint8Array; gz: Uint8Array; redone: number[] }> {
  const tarParts: Uint8Array[] = [];
  const gzParts: Uint8Array[] = [];
  const redone: number[] = [];
  const gz = parallelGzipFiles(source, { ...opts, blockSize: B, onInput: (b) => tarParts.push(b.slice()), onRedo: (seq) => redone.push(seq) });
  // copy each chunk before asking for the next: with recycle the buffer is reused afterwards
  for await (const c of gz) gzParts.push(c.slice());
  return { tar: concatBytes(tarParts), gz: concatBytes(gzParts), redone };
}

describe("parallel gzip over file spans", () => {
  test("the same tar and gzip bytes as the in-thread reader, files across block boundaries, with and without workers", async () => {
    const sizes = fc.array(
      fc.oneof(fc.constantFrom(0, 1, 511, 512, 513, B - 512, B - 1, B, B + 1, 2 * B + 7, 40_000), fc.integer({ min: 0, max: 3 * B })),
      { minLength: 1, maxLength: 9 },
    );
    await fc.assert(
      fc.asyncProperty(sizes, fc.integer({ min: 1, max: 1 << 20 }), fc.boolean(), async (lens, seed, recycle) => {
        const dir = tmpdir("ocigen-pgzip-files-");
        try {
          const root = path.join(dir, "root");
          fs.mkdirSync(path.join(root, "d/e"), { recursive: true });
          lens.forEach((n, i) => fs.writeFileSync(path.join(root, i % 2 ? "d" : "d/e", `f${i}`), bytes(i % 2, n, seed + i)));
          fs.symlinkSync("e/f0", path.join(root, "d/link"));
          fs.linkSync(path.join(root, "d/e/f0"), path.join(root, "hard"));
          const items = itemsOf(root);
          const ref = await inThread(items, 0);
          for (const workers of [0, 2]) {
            const got = await viaSpans(tarPieces(items, {}), { workers, recycle });
            assert.deepEqual(got.tar, ref.tar, `tar, ${workers} workers`);
            assert.deepEqual(got.gz, ref.gz, `gzip, ${workers} workers`);
            assert.deepEqual(got.redone, [], "no block deflated twice: every dictionary was read right");
            // uncompressed (--compress none): the same blocks, read by the workers, are the output
            const raw: Uint8Array[] = [];
            const seen: Uint8Array[] = [];
            for await (const c of parallelReadFiles(tarPieces(items, {}), { workers, recycle, blockSize: B, onInput: (b) => seen.push(b.slice()) })) raw.push(c.slice());
            assert.deepEqual(concatBytes(raw), ref.tar, `uncompressed tar, ${workers} workers`);
            assert.deepEqual(concatBytes(seen), ref.tar, `uncompressed tar as hashed, ${workers} workers`);
          }
          assert.deepEqual(new Uint8Array(zlib.gunzipSync(ref.gz)), ref.tar);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 12 },
    );
  });

  test("a file changed between the two reads of a dictionary: the stream still inflates to what was hashed", async () => {
    const dir = tmpdir("ocigen-pgzip-files-");
    try {
      const f = path.join(dir, "f");
      const before = bytes(1, B + B / 2, 1); // ends 32 KiB into the second block: block 1's dictionary reads it again
      const after = bytes(1, before.length, 2);
      fs.writeFileSync(f, before);
      const span = { path: f, name: "f", pos: 0, len: before.length, size: before.length, ino: Number(fs.statSync(f).ino) };
      async function* source(): AsyncGenerator<GzipPiece[]> {
        yield [span]; // block 0 is full and handed to a worker; block 1 holds the rest of f
        // give block 0's worker time to read f before it changes (the assertions below check it did)
        await new Promise((r) => setTimeout(r, 1000));
        fs.writeFileSync(f, after); // same size, new bytes: block 1's worker reads the new ones
        yield [bytes(1, B, 3)];
      }
      const got = await viaSpans(source(), { workers: 2 });
      assert.deepEqual(got.tar.subarray(0, B), before.subarray(0, B), "block 0 was read before the change");
      assert.deepEqual(got.tar.subarray(B, before.length), after.subarray(B), "block 1 after it");
      assert.deepEqual(new Uint8Array(zlib.gunzipSync(got.gz)), got.tar, "inflates to exactly the hashed bytes");
      assert.deepEqual(got.redone, [1], "block 1 was deflated again with the dictionary block 0 really had");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a file replaced or shrunk under the workers fails with the reader's error, not a worker failure", async () => {
    const dir = tmpdir("ocigen-pgzip-files-");
    try {
      const root = path.join(dir, "root");
      fs.mkdirSync(root);
      fs.writeFileSync(path.join(root, "a-pad"), bytes(0, 3 * B, 1)); // "f" lands in a later block: a worker reads it
      fs.writeFileSync(path.join(root, "f"), bytes(1, 5000, 2));
      let items = itemsOf(root);
      fs.writeFileSync(path.join(root, "f.new"), bytes(1, 5000, 3));
      fs.renameSync(path.join(root, "f.new"), path.join(root, "f")); // same size, another inode
      await assert.rejects(viaSpans(tarPieces(items, {}), { workers: 2 }), (e: Error) => {
        return e instanceof OcigenError && e.code === "EREPACK" && e.message === "Cannot repack f: it was replaced while being read";
      });
      items = itemsOf(root);
      fs.truncateSync(path.join(root, "f"), 100);
      await assert.rejects(viaSpans(tarPieces(items, {}), { workers: 2 }), (e: Error) => {
        return e instanceof OcigenError && e.code === "EREPACK" && /^Cannot repack f: file shrank while being read \(100 of 5000 bytes\)$/.test(e.message);
      });
      fs.rmSync(path.join(root, "f"));
      await assert.rejects(viaSpans(tarPieces(items, {}), { workers: 2 }), (e: Error) => {
        return e instanceof OcigenError && e.message.startsWith(`${path.join(root, "f")}: open: ENOENT`);
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("plain parallelGzip refuses file spans (they need the reader's hash)", async () => {
    async function* spans() {
      yield [{ path: "/nonexistent", name: "x", pos: 0, len: 1, size: 1, ino: 0 }] as unknown as Uint8Array;
    }
    await assert.rejects(async () => {
      for await (const _ of parallelGzip(spans(), { workers: 0 })) { /* drain */ }
    }, TypeError);
  });
});
