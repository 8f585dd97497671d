// The worker-thread gzip decoder (src/compress/inflate-worker.ts): same
// results and errors as the in-thread WASM decoder, across chunkings, ring
// wrap-around (streams far larger than the rings) and slow consumers.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import zlib from "node:zlib";
import { OcigenError } from "../src/errors.ts";
import { closeIdleWorkers, createGunzip, createHashingGunzip, WorkerGunzip } from "../src/compress/inflate-worker.ts";
import crypto from "node:crypto";
import { createDecoder } from "../src/layer/decoder.ts";
import type { ByteSink } from "../src/stream/sink.ts";

function data(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = (i >> 12) % 3 === 0 ? s & 0xff : 97 + (s % 7);
  }
  return out;
}

function run(make: (sink: ByteSink) => ByteSink, gz: Uint8Array, chunk: number, slow = false): Uint8Array {
  const parts: Uint8Array[] = [];
  let ended = false;
  const d = make({
    write(c) {
      parts.push(c.slice());
      if (slow) { const t = Date.now(); while (Date.now() - t < 1); }
    },
    end() { ended = true; },
  });
  for (let o = 0; o < gz.length; o += chunk) d.write(gz.subarray(o, o + chunk));
  d.end();
  assert.ok(ended);
  return Buffer.concat(parts);
}

describe("worker gunzip", () => {
  after(async () => { await closeIdleWorkers(); });

  test("round trips across chunk sizes, ring wrap-around and a slow consumer", () => {
    const a = data(12_000_000, 1);
    const gz = new Uint8Array(zlib.gzipSync(a, { level: 1 }));
    for (const chunk of [1 << 20, 65536, 3333, 5_000_000]) {
      const out = run((s) => new WorkerGunzip(s), gz, chunk);
      assert.ok(Buffer.from(out).equals(Buffer.from(a)), `chunk ${chunk}`);
    }
    const small = data(300_000, 2);
    const sgz = new Uint8Array(zlib.gzipSync(small));
    assert.ok(Buffer.from(run((s) => new WorkerGunzip(s), sgz, 1000, true)).equals(Buffer.from(small)), "slow consumer");
    // multi-member and empty
    const mm = Buffer.concat([zlib.gzipSync(small), zlib.gzipSync(new Uint8Array(0)), zlib.gzipSync(a.subarray(0, 1000))]);
    assert.ok(Buffer.from(run((s) => new WorkerGunzip(s), mm, 7777)).equals(Buffer.concat([small, a.subarray(0, 1000)])));
  });

  test("corrupt and truncated streams are EDECOMPRESS naming the stream; the worker is replaced", () => {
    const gz = new Uint8Array(zlib.gzipSync(data(500_000, 3)));
    const bad = gz.slice(); bad[bad.length - 8] ^= 0xff;
    assert.throws(() => run((s) => new WorkerGunzip(s, { name: "layer sha256:abc" }), bad, 65536),
      (e: unknown) => e instanceof OcigenError && e.code === "EDECOMPRESS" && /^Cannot decompress layer sha256:abc: CRC32 mismatch/.test(e.message));
    assert.throws(() => run((s) => new WorkerGunzip(s), gz.subarray(0, gz.length >> 1), 65536),
      (e: unknown) => e instanceof OcigenError && /truncated/.test(e.message));
    assert.throws(() => run((s) => new WorkerGunzip(s), new TextEncoder().encode("not gzip at all, clearly"), 5),
      (e: unknown) => e instanceof OcigenError && /not a gzip stream/.test(e.message));
    // still works afterwards
    const ok = data(1000, 4);
    assert.ok(Buffer.from(run((s) => new WorkerGunzip(s), new Uint8Array(zlib.gzipSync(ok)), 100)).equals(Buffer.from(ok)));
  });

  test("an error thrown by the consumer propagates and does not wedge later streams", () => {
    const gz = new Uint8Array(zlib.gzipSync(data(6_000_000, 5)));
    let n = 0;
    assert.throws(() => {
      const d = new WorkerGunzip({ write() { if (++n === 3) throw new Error("consumer failed"); }, end() {} });
      for (let o = 0; o < gz.length; o += 65536) d.write(gz.subarray(o, o + 65536));
      d.end();
    }, /consumer failed/);
    const ok = data(50_000, 6);
    assert.ok(Buffer.from(run((s) => new WorkerGunzip(s), new Uint8Array(zlib.gzipSync(ok)), 4096)).equals(Buffer.from(ok)));
  });

  test("destroy() abandons a stream mid-way; later streams are unaffected", () => {
    const gz = new Uint8Array(zlib.gzipSync(data(2_000_000, 9)));
    const d = new WorkerGunzip({ write() {}, end() {} });
    d.write(gz.subarray(0, gz.length >> 1));
    d.destroy();
    assert.throws(() => d.write(gz), (e: unknown) => e instanceof OcigenError && e.code === "EDECOMPRESS");
    const ok = data(10_000, 10);
    assert.ok(Buffer.from(run((s) => new WorkerGunzip(s), new Uint8Array(zlib.gzipSync(ok)), 999)).equals(Buffer.from(ok)));
  });

  test("hashing decoders give the sha256 of the output, in the worker and in this thread", () => {
    const a = data(3_000_000, 8);
    const want = "sha256:" + crypto.createHash("sha256").update(a).digest("hex");
    const gz = new Uint8Array(zlib.gzipSync(a, { level: 1 }));
    for (const hint of [undefined, 1 << 30]) {
      const parts: Uint8Array[] = [];
      const d = createHashingGunzip({ write: (c) => void parts.push(c.slice()), end() {} }, "layer h", hint);
      for (let o = 0; o < gz.length; o += 65536) d.write(gz.subarray(o, o + 65536));
      assert.equal(d.outputDigest(), undefined);
      d.end();
      assert.equal(d.outputDigest(), want, `hint ${hint}`);
      assert.ok(Buffer.concat(parts).equals(Buffer.from(a)));
    }
    const w = new WorkerGunzip({ write() {}, end() {} }, { hashOutput: true });
    w.write(gz);
    w.end();
    assert.equal(w.outputDigest(), want);
  });

  test("createDecoder uses the WASM kernel for gzip layers (and createGunzip picks by size and mode)", () => {
    const a = data(100_000, 7);
    const gz = new Uint8Array(zlib.gzipSync(a));
    const out = run((s) => createDecoder("application/vnd.oci.image.layer.v1.tar+gzip", s, "layer x"), gz, 1000);
    assert.ok(Buffer.from(out).equals(Buffer.from(a)));
    assert.equal(createGunzip({ write() {}, end() {} }).constructor.name, "WasmGunzip");
    // a large size hint may select the worker; either way the bytes are the same
    const big = run((s) => createGunzip(s, "layer y", 1 << 30), gz, 4096);
    assert.ok(Buffer.from(big).equals(Buffer.from(a)));
    // the mode forces a decoder whatever the size
    assert.equal(createGunzip({ write() {}, end() {} }, "layer z", 1 << 30, "js").constructor.name, "GzipDecoder");
    assert.equal(createGunzip({ write() {}, end() {} }, "layer z", 1 << 30, "wasm").constructor.name, "WasmGunzip");
    const forced = createGunzip({ write() {}, end() {} }, "layer z", 10, "worker");
    assert.equal(forced.constructor.name, "WorkerGunzip");
    (forced as WorkerGunzip).destroy();
  });
});
