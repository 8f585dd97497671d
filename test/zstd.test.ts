// The zstd decoders (WebAssembly kernel, and the runtime's native zstd where
// there is one): frames, block types, windows and the window limit, corrupt
// input, buffer reuse, and unpacking zstd layers through the CLI (50 times in
// a row; a 1 GiB-window layer refused by default and unpacked with the limit
// raised, in bounded memory; a `zstd --long=31` layer refused as too large).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { OcigenError } from "../src/errors.ts";
import { ZstdDecoder, type ZstdEngine } from "../src/compress/zstd.ts";
import { wasmXxh64 } from "../src/compress/zstd-wasm.ts";
import { nativeZstdAvailable } from "../src/compress/zstd-native.ts";
import { parseZstdFrameHeader } from "../src/compress/zstd-frame.ts";
import { zstdWindowMaxOption } from "../src/cli/zstd-window.ts";
import { parseGeneratorConfig } from "../src/generator/config.ts";
import { tarBytes, type TarWriterEntry } from "../src/tar/writer.ts";
import { CollectSink, concatBytes } from "../src/stream/sink.ts";
import { have, makeImage, sha256, tmpdir } from "./layer-fixtures.ts";
import { prng, randomBytes } from "./prng.ts";

const needZstd = have("zstd") || process.env.CI ? false : "the zstd command is not installed (CI installs it)";
const engines: ZstdEngine[] = nativeZstdAvailable() ? ["wasm", "native"] : ["wasm"];
const MiB = 1024 * 1024;
const ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd";

// zstd reads the data from a file given as its stdin (so the size stays
// undeclared, as in a pipe: windows are not shrunk to fit) and writes to a pipe
// only: no child stdin pipe to deadlock with (Deno's spawnSync with a large
// `input` and a large output can).
let scratch: string | undefined;
function zstd(data: Uint8Array, args: string[]): Uint8Array {
  scratch ??= fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-zstd-in-"));
  const f = path.join(scratch, "in");
  fs.writeFileSync(f, data);
  const r = spawnSync("sh", ["-c", `zstd -q -c ${args.join(" ")} < '${f}'`], { maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`zstd ${args.join(" ")} failed: ${r.stderr}`);
  return new Uint8Array(r.stdout);
}

/** `zstd -dc` of `z` (the reference output). */
function unzstd(z: Uint8Array): Uint8Array {
  scratch ??= fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-zstd-in-"));
  const f = path.join(scratch, "in.zst");
  fs.writeFileSync(f, z);
  const r = spawnSync("zstd", ["-q", "-d", "-c", f], { maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`zstd -dc failed: ${r.stderr}`);
  return new Uint8Array(r.stdout);
}

/** Decodes `z` pushing it in `step`-byte pieces through ONE reused buffer (as the blob reader does). */
function decode(z: Uint8Array, opts: { engine?: ZstdEngine; windowMax?: number; step?: number } = {}): Uint8Array {
  const out = new CollectSink();
  const d = new ZstdDecoder(out, { name: "layer sha256:test", engine: opts.engine ?? "wasm", windowMax: opts.windowMax });
  const step = opts.step ?? 65536;
  const buf = new Uint8Array(step);
  for (let o = 0; o < z.length; o += step) {
    const n = Math.min(step, z.length - o);
    buf.set(z.subarray(o, o + n));
    d.write(buf.subarray(0, n));
    buf.fill(0xa5); // the reader reuses its buffer: whatever the decoder kept is now garbage
  }
  d.end();
  return out.bytes();
}

function decodeError(z: Uint8Array, opts: { engine?: ZstdEngine; windowMax?: number; step?: number } = {}): OcigenError {
  try {
    decode(z, opts);
  } catch (e) {
    assert.ok(e instanceof OcigenError, `not an OcigenError: ${e}`);
    assert.equal(e.code, "EDECOMPRESS");
    assert.ok(!e.message.includes("\n"), "one line");
    assert.match(e.message, /layer sha256:test/);
    return e;
  }
  assert.fail("decoding succeeded");
}

/** Text-like data (Huffman literals, FSE sequences). */
function text(size: number, seed: number): Uint8Array {
  const r = prng(seed);
  const words = ["the", "layer", "window", "frame", "block", "zstd", "literal", "sequence", "offset", "match", "huffman", "table", "\n", "ocigen", "rootfs"];
  const s: string[] = [];
  let n = 0;
  while (n < size) {
    const w = words[r() % words.length] + (r() % 7 === 0 ? String(r() % 1000) : "") + " ";
    s.push(w);
    n += w.length;
  }
  return new TextEncoder().encode(s.join("")).subarray(0, size);
}

const random = randomBytes;

const concat = (...parts: Uint8Array[]): Uint8Array => concatBytes(parts);

function skippable(payload: Uint8Array, n = 0): Uint8Array {
  const h = new Uint8Array(8);
  new DataView(h.buffer).setUint32(0, 0x184d2a50 + n, true);
  new DataView(h.buffer).setUint32(4, payload.length, true);
  return concat(h, payload);
}

/** Block types (0 raw, 1 RLE, 2 compressed) of every block of a stream. */
function blockTypes(z: Uint8Array): Set<number> {
  const types = new Set<number>();
  let off = 0;
  while (off < z.length) {
    const h = parseZstdFrameHeader(z, off);
    assert.ok(h);
    if ("skippable" in h) {
      off += h.skippable;
      continue;
    }
    const cks = (z[off + 4] >> 2) & 1;
    off += h.headerSize;
    for (;;) {
      const v = z[off] | (z[off + 1] << 8) | (z[off + 2] << 16);
      const type = (v >> 1) & 3;
      types.add(type);
      off += 3 + (type === 1 ? 1 : v >>> 3);
      if (v & 1) break;
    }
    off += cks ? 4 : 0;
  }
  return types;
}

/** A hand-made frame: `window` declared in the descriptor (not single-segment), raw blocks. */
function rawFrame(content: Uint8Array, windowLog: number, opts: { fhd?: number; blockType?: number; blockSize?: number } = {}): Uint8Array {
  const hdr = [0x28, 0xb5, 0x2f, 0xfd, opts.fhd ?? 0x00, (windowLog - 10) << 3];
  const bt = opts.blockType ?? 0;
  const size = opts.blockSize ?? content.length;
  const bh = ((size << 3) | (bt << 1) | 1) >>> 0;
  return concat(new Uint8Array(hdr), new Uint8Array([bh & 0xff, (bh >> 8) & 0xff, (bh >> 16) & 0xff]), content);
}

describe("zstd decoder", () => {
  test("XXH64 of the kernel matches the checksums zstd writes", { skip: needZstd }, () => {
    assert.equal(wasmXxh64(new Uint8Array(0)), 0xef46db3751d8e999n);
    for (const n of [1, 3, 4, 7, 8, 31, 32, 33, 63, 100, 1000, 100000]) {
      const data = random(n, n);
      const z = zstd(data, ["--check", "-1"]);
      const stored = new DataView(z.buffer, z.byteOffset + z.length - 4).getUint32(0, true);
      assert.equal(Number(wasmXxh64(data) & 0xffffffffn), stored, `length ${n}`);
    }
  });

  test("many frames, levels and block types, skippable frames, any chunking, reused input buffers", { skip: needZstd }, () => {
    const t = text(1_500_000, 1);
    const rnd = random(400_000, 2);
    const runs = concat(new Uint8Array(300_000).fill(7), new Uint8Array(200_000).fill(9), text(100_000, 3));
    const far = text(2_000_000, 4);
    const pieces: [Uint8Array, string[]][] = [
      [t, ["-1"]],
      [rnd, ["-3"]],
      [runs, ["-19"]],
      [concat(t.subarray(0, 600_000), rnd.subarray(0, 50_000)), ["--ultra", "-22"]],
      [concat(far, far), ["--long=27", "-9"]],
      [t.subarray(0, 300_000), ["--fast=4", "--no-check"]],
      [text(5000, 5), ["-3", `--stream-size=5000`]],
      [new Uint8Array(0), ["-3"]],
      [text(300_000, 6), ["-5", "--zstd=wlog=10"]],
    ];
    const frames = pieces.map(([d, a]) => zstd(d, a));
    const z = concat(frames[0], skippable(random(100, 7), 3), ...frames.slice(1), skippable(new Uint8Array(0)));
    const expect = concat(...pieces.map(([d]) => d));
    const types = blockTypes(z);
    for (const ty of [0, 1, 2]) assert.ok(types.has(ty), `block type ${ty} present in the test stream`);
    for (const engine of engines) {
      for (const step of [777, 65536, z.length]) {
        const out = decode(z, { engine, step });
        assert.equal(out.length, expect.length, `${engine} step ${step}`);
        assert.ok(Buffer.from(out).equals(Buffer.from(expect)), `${engine} step ${step}: content`);
      }
      // byte by byte on a smaller stream
      const small = concat(frames[6], frames[7], zstd(text(20_000, 8), ["-19"]));
      assert.deepEqual(decode(small, { engine, step: 1 }), concat(pieces[6][0], text(20_000, 8)));
    }
  });

  test("small windows: matches reach across the wrap of the window buffer", { skip: needZstd }, () => {
    const base = text(400_000, 11);
    const data = concat(base, random(3000, 12), base, base.subarray(1000, 300_000), base);
    for (const wlog of [10, 17, 20]) {
      const z = zstd(data, ["-19", `--zstd=wlog=${wlog}`]);
      for (const engine of engines) assert.ok(Buffer.from(decode(z, { engine })).equals(Buffer.from(data)), `wlog ${wlog} ${engine}`);
    }
  });

  test("window limit: 1 GiB declared is refused by default, decoded when allowed; --long=31 is too large", { skip: needZstd }, () => {
    const content = text(70_000, 13);
    const f = rawFrame(content, 30);
    for (const engine of engines) {
      const e = decodeError(f, { engine });
      assert.match(e.message, /zstd window too large \(1024 MiB > limit 128 MiB\): raise the limit with --zstd-window-max/);
      assert.deepEqual(decode(f, { engine, windowMax: 1024 * MiB }), content);
      assert.deepEqual(decode(rawFrame(content, 27), { engine }), content, "exactly 128 MiB is allowed by default");
      assert.match(decodeError(f, { engine, windowMax: 512 * MiB }).message, /1024 MiB > limit 512 MiB/);
    }
    const big = text(3_000_000, 14);
    const z31 = zstd(concat(big, big), ["--long=31", "-3"]);
    assert.equal(parseZstdFrameHeader(z31, 0) && "window" in parseZstdFrameHeader(z31, 0)! ? (parseZstdFrameHeader(z31, 0) as { window: number }).window : 0, 2048 * MiB);
    for (const engine of engines) {
      const e = decodeError(z31, { engine });
      assert.match(e.message, /zstd window too large \(2048 MiB > limit 128 MiB\)/);
      assert.doesNotMatch(e.message, /corrupt/);
    }
    assert.equal(zstdWindowMaxOption("1024"), 1024 * MiB);
    assert.equal(zstdWindowMaxOption(undefined), undefined);
    for (const bad of ["0", "2049", "1.5", "-1", "x"]) assert.throws(() => zstdWindowMaxOption(bad), (e: unknown) => e instanceof OcigenError && e.code === "EUSAGE");
  });

  test("corrupt input: truncation, checksum, block type, sizes, dictionary, garbage", { skip: needZstd }, () => {
    const data = concat(text(300_000, 21), random(50_000, 22));
    const z = zstd(data, ["-9", "--check"]);
    for (const engine of engines) {
      for (let i = 0; i < 40; i++) {
        const cut = Math.floor((z.length * i) / 40);
        assert.match(decodeError(z.subarray(0, cut === 0 ? 3 : cut), { engine }).message, /truncated/, `cut at ${cut}`);
      }
      assert.match(decodeError(z.subarray(0, z.length - 1), { engine }).message, /truncated/);
      assert.match(decodeError(new Uint8Array(0), { engine }).message, /empty/);
      const badSum = z.slice();
      badSum[badSum.length - 1] ^= 0x40;
      assert.match(decodeError(badSum, { engine }).message, /checksum/);
      assert.match(decodeError(concat(z, new Uint8Array([1, 2, 3, 4, 5])), { engine }).message, /trailing garbage/);
      assert.match(decodeError(new TextEncoder().encode("not zstd at all"), { engine }).message, /not a zstd stream/);
    }
    const content = text(1000, 23);
    const w = decodeError(rawFrame(content, 20, { blockType: 3 }));
    assert.match(w.message, /bad block type 3/);
    assert.match(decodeError(rawFrame(content, 20, { blockSize: (1 << 21) - 1 })).message, /block size 2097151 larger than the frame's maximum 131072/);
    // single-segment frame declaring a 1 TiB content size: its window is that size
    const huge = concat(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0]), new Uint8Array([1, 0, 0]));
    for (const engine of engines) assert.match(decodeError(huge, { engine }).message, /zstd window too large \(1048576 MiB > limit 128 MiB\)/);
    // declared content size that the blocks do not produce
    const fcs = concat(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x80, 12 << 3, 0xff, 0xff, 0xff, 0x7f]), new Uint8Array([((100 << 3) | 1) & 0xff, (100 << 3) >> 8, 0]), content.subarray(0, 100));
    assert.match(decodeError(fcs).message, /content size mismatch \(declared 2147483647, decoded 100\)/);
    // dictionary id
    const dict = concat(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x01, 10 << 3, 42]), new Uint8Array([1, 0, 0]));
    for (const engine of engines) assert.match(decodeError(dict, { engine }).message, /dictionary 42/);
    // reserved bit
    assert.match(decodeError(rawFrame(content, 20, { fhd: 0x08 })).message, /reserved/);
  });

  test("random damage never hangs or escapes as anything but a clear error", { skip: needZstd }, () => {
    const data = concat(text(200_000, 31), random(20_000, 32), new Uint8Array(50_000));
    const zs = [zstd(data, ["-3"]), zstd(data, ["-19", "--no-check"]), zstd(data, ["--ultra", "-22", "--no-check"])];
    fc.assert(
      fc.property(fc.nat(2), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), (which, flips) => {
        const z = zs[which].slice();
        for (const [at, x] of flips) z[6 + (at % (z.length - 6))] ^= x;
        const t0 = performance.now();
        try {
          const out = decode(z);
          assert.ok(out.length <= 64 * MiB);
        } catch (e) {
          assert.ok(e instanceof OcigenError && e.code === "EDECOMPRESS", `unexpected ${e}`);
        }
        assert.ok(performance.now() - t0 < 5000, "bounded time");
      }),
      { numRuns: 150, seed: 424242 },
    );
  });

  test("property: decodes what zstd -c wrote, for random inputs and levels", { skip: needZstd }, () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(
          fc.uint8Array({ maxLength: 3000 }),
          fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 200_000 })).map(([b, n]) => new Uint8Array(n).fill(b)),
          fc.tuple(fc.integer({ min: 1, max: 1 << 30 }), fc.integer({ min: 1, max: 300_000 })).map(([s, n]) => text(n, s)),
        ), { maxLength: 8 }),
        fc.constantFrom<string[]>(["-1"], ["-3"], ["-7"], ["-13"], ["-19"], ["--fast=7"], ["--ultra", "-21"], ["--long=24", "-5"], ["-9", "--zstd=wlog=12"]),
        (chunks, level) => {
          const data = concat(...chunks, ...chunks.slice(0, 2));
          const z = zstd(data, level);
          const ref = unzstd(z);
          for (const engine of engines) assert.ok(Buffer.from(decode(z, { engine, step: 5000 })).equals(Buffer.from(ref)), `${engine} ${level}`);
        },
      ),
      { numRuns: 40, seed: 8878 },
    );
  });
});

// ---------------------------------------------------------------- through the CLI

const repo = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const cliPath = path.join(repo, "dist", "ocigen.mjs");
const isDeno = Boolean((process.versions as Record<string, string | undefined>).deno);

function ensureBuilt(): void {
  if (fs.existsSync(cliPath)) return;
  const r = spawnSync(isDeno ? "node" : process.execPath, [path.join(repo, ".ci", "build.mjs")], { cwd: repo, stdio: "inherit" });
  assert.equal(r.status, 0, "npm run build failed");
}

/** Runs the built CLI on this test's runtime; reports the child's peak RSS (VmHWM) in bytes. */
function runCli(args: string[], hwmFile: string): { code: number; stderr: string; hwm: number } {
  const cmd = isDeno
    ? [process.execPath, ["run", "-A", "--no-check", "--preload", hwmFile, cliPath, ...args]] as const
    : [process.execPath, ["--import", hwmFile, cliPath, ...args]] as const;
  const r = spawnSync(cmd[0], [...cmd[1]], { encoding: "utf8", cwd: repo, env: { ...process.env, NO_COLOR: "1" } });
  const m = /VMHWM (\d+) kB/.exec(r.stderr ?? "");
  return { code: r.status ?? -1, stderr: r.stderr ?? "", hwm: m ? Number(m[1]) * 1024 : NaN };
}

function treeDigest(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(path.relative(root, p), createHash("sha256").update(fs.readFileSync(p)).digest("hex"));
    }
  };
  walk(root);
  return out;
}

function expectedTree(entries: TarWriterEntry[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of entries) {
    if (e.type === "dir") continue;
    const data = typeof e.data === "string" ? new TextEncoder().encode(e.data) : (e.data ?? new Uint8Array(0));
    out.set(e.name, createHash("sha256").update(data).digest("hex"));
  }
  return out;
}

describe("zstd layers through the CLI", () => {
  test("50 unpacks in a row of a multi-frame, multi-block zstd layer all match the source tree", { skip: needZstd, timeout: 600_000 }, () => {
    ensureBuilt();
    const dir = tmpdir("ocigen-zstd-");
    try {
      const entries: TarWriterEntry[] = [];
      for (let d = 0; d < 8; d++) {
        entries.push({ name: `d${d}/`, type: "dir", mode: 0o755 });
        for (let f = 0; f < 30; f++) {
          const kind = (d * 30 + f) % 4;
          const size = 2000 + ((d * 7919 + f * 104729) % 60000);
          const data = kind === 0 ? random(size, d * 100 + f) : kind === 1 ? new Uint8Array(size).fill(f) : text(size, d * 100 + f);
          entries.push({ name: `d${d}/f${f}`, data });
        }
      }
      entries.push({ name: "big-text", data: text(1_500_000, 99) });
      entries.push({ name: "big-random", data: random(600_000, 98) });
      entries.push({ name: "zeros", data: new Uint8Array(700_000) });
      const tar = tarBytes(entries);
      assert.ok(tar.length > 4 * MiB, `layer is multi-MB (${tar.length})`);
      // several frames at different levels, cut at arbitrary points of the tar
      const cuts = [0, 500_001, 1_300_000, 2_000_003, 2_900_000, 3_600_000, tar.length];
      const levels = [["-1"], ["--ultra", "-22"], ["-19", "--long=27"], ["--fast=3"], ["-9"], ["-3", "--no-check"]];
      const frames = levels.map((lv, i) => zstd(tar.subarray(cuts[i], cuts[i + 1]), lv));
      const blob = concat(...frames);
      assert.deepEqual([...blockTypes(blob)].sort(), [0, 1, 2], "raw, RLE and compressed blocks");
      const layout = makeImage(path.join(dir, "layout"), [{ tar, compression: "none", mediaType: ZSTD_LAYER, mutateBlob: () => blob, digestAfter: true }]);
      const want = expectedTree(entries);
      const hwm = path.join(dir, "hwm.mjs");
      fs.writeFileSync(hwm, HWM_PRELOAD);
      for (let i = 0; i < 50; i++) {
        const rootfs = path.join(dir, `rootfs`);
        const r = runCli(["raw", "unpack", "--image", `${layout}:latest`, rootfs], hwm);
        assert.equal(r.code, 0, `run ${i}: ${r.stderr}`);
        assert.deepEqual(treeDigest(rootfs), want, `run ${i}`);
        fs.rmSync(rootfs, { recursive: true, force: true });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a 1 GiB-window layer: refused by default, unpacked with --zstd-window-max 1024 in bounded memory; --long=31 too large", { skip: needZstd, timeout: 300_000 }, () => {
    ensureBuilt();
    const dir = tmpdir("ocigen-zstd-");
    try {
      const chunk = random(8 * MiB, 77);
      // the second copy is 8 MiB back: only a long window finds it
      const entries: TarWriterEntry[] = [{ name: "a", data: chunk }, { name: "gap", data: text(2 * MiB, 78) }, { name: "b", data: chunk }];
      const tar = tarBytes(entries);
      const z30 = zstd(tar, ["--long=30", "-3"]);
      assert.ok(z30.length < tar.length * 0.7, "the long match was used");
      assert.equal((parseZstdFrameHeader(z30, 0) as { window: number }).window, 1024 * MiB);
      const layout = makeImage(path.join(dir, "layout"), [{ tar, compression: "none", mediaType: ZSTD_LAYER, mutateBlob: () => z30, digestAfter: true }]);
      const digest = sha256(z30);
      const hwm = path.join(dir, "hwm.mjs");
      fs.writeFileSync(hwm, HWM_PRELOAD);
      const rootfs = path.join(dir, "rootfs");
      const refused = runCli(["raw", "unpack", "--image", `${layout}:latest`, rootfs], hwm);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /zstd window too large \(1024 MiB > limit 128 MiB\)/);
      assert.ok(refused.stderr.includes(`layer sha256:${digest.slice(7, 19)}`), `names the layer: ${refused.stderr}`);
      assert.equal(fs.existsSync(rootfs), false, "nothing half-written");
      const ok = runCli(["raw", "unpack", "--zstd-window-max", "1024", "--image", `${layout}:latest`, rootfs], hwm);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(treeDigest(rootfs), expectedTree(entries));
      assert.ok(Number.isFinite(ok.hwm), `VmHWM reported: ${ok.stderr}`);
      assert.ok(ok.hwm < 1024 * MiB + 64 * MiB, `peak RSS ${Math.round(ok.hwm / MiB)} MiB under window + 64 MiB`);
      console.log(`# 1 GiB-window layer (${Math.round(tar.length / MiB)} MiB): peak RSS ${Math.round(ok.hwm / MiB)} MiB`);
      fs.rmSync(rootfs, { recursive: true, force: true });

      const z31 = zstd(tar, ["--long=31", "-3"]);
      const layout31 = makeImage(path.join(dir, "layout31"), [{ tar, compression: "none", mediaType: ZSTD_LAYER, mutateBlob: () => z31, digestAfter: true }]);
      const r31 = runCli(["raw", "unpack", "--image", `${layout31}:latest`, rootfs], hwm);
      assert.notEqual(r31.code, 0);
      assert.match(r31.stderr, /zstd window too large \(2048 MiB > limit 128 MiB\)/);
      assert.doesNotMatch(r31.stderr, /corrupt/);
      const bad = runCli(["raw", "unpack", "--zstd-window-max", "4096", "--image", `${layout31}:latest`, rootfs], hwm);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /--zstd-window-max must be a whole number of MiB from 1 to 2048/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("zstd window limit for extract", () => {
  test("zstdwindowmax in the generator config: parsed, validated, and honoured by extract (the flag wins)", { skip: needZstd, timeout: 300_000 }, () => {
    assert.equal(parseGeneratorConfig("zstdwindowmax = 1024\n", "c").zstdWindowMax, 1024 * MiB);
    assert.equal(parseGeneratorConfig("", "c").zstdWindowMax, undefined);
    for (const bad of ["0", "4096", "12x"]) {
      assert.throws(() => parseGeneratorConfig(`zstdwindowmax = ${bad}\n`, "c"), /zstdwindowmax must be a whole number of MiB from 1 to 2048/);
    }
    ensureBuilt();
    const dir = tmpdir("ocigen-zstd-");
    try {
      const content = text(300_000, 41);
      const tar = tarBytes([{ name: "etc/", type: "dir", mode: 0o755 }, { name: "etc/data", data: content }]);
      // a 1 GiB window declared, data small
      const z = zstd(tar, ["--long=30", "-3"]);
      makeImage(path.join(dir, "layouts", "app"), [{ tar, compression: "none", mediaType: ZSTD_LAYER, mutateBlob: () => z, digestAfter: true }]);
      const conf = (extra: string) => {
        const f = path.join(dir, "gen.conf");
        fs.writeFileSync(f, `imagelayoutdir = ${path.join(dir, "layouts")}\nextractsdir = ${path.join(dir, "extracts")}\nuserdbdir =\n${extra}`);
        return f;
      };
      const hwm = path.join(dir, "hwm.mjs");
      fs.writeFileSync(hwm, HWM_PRELOAD);
      const refused = runCli(["extract", "--name", "app", "--ref", "latest", "--config", conf("")], hwm);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /zstd window too large \(1024 MiB > limit 128 MiB\)/);
      const viaFlag = runCli(["extract", "--name", "app", "--ref", "latest", "--config", conf("zstdwindowmax = 2048\n"), "--zstd-window-max", "512"], hwm);
      assert.notEqual(viaFlag.code, 0, "the flag overrides the config");
      assert.match(viaFlag.stderr, /1024 MiB > limit 512 MiB/);
      const ok = runCli(["extract", "--name", "app", "--ref", "latest", "--config", conf("zstdwindowmax = 1024\n")], hwm);
      assert.equal(ok.code, 0, ok.stderr);
      const rootfs = fs.readdirSync(path.join(dir, "extracts"), { recursive: true }).map(String).find((p) => p.endsWith(path.join("etc", "data")));
      assert.ok(rootfs, "extracted");
      assert.deepEqual(new Uint8Array(fs.readFileSync(path.join(dir, "extracts", rootfs))), content);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

const HWM_PRELOAD = `import fs from "node:fs";
import process from "node:process";
process.on("exit", () => {
  const m = /VmHWM:\\s+(\\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
  process.stderr.write("VMHWM " + (m ? m[1] : "?") + " kB\\n");
});
`;

process.on("exit", () => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});
