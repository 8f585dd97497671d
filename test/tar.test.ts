// Tar reader/writer and decompression stages.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { OcigenError } from "../src/errors.ts";
import { TarParser, type TarHandler } from "../src/tar/parser.ts";
import { type TarEntryHeader, encodeHeader, setChecksum } from "../src/tar/header.ts";
import { decodeHeader, parseNumeric } from "../src/tar/header-decode.ts";
import { type TarWriterEntry, tarBytes } from "../src/tar/writer.ts";
import { encodePax, parsePax } from "../src/tar/pax.ts";
import { CollectSink, concatBytes } from "../src/stream/sink.ts";
import { GzipDecoder, ZstdDecoder } from "../src/compress/index.ts";
import { createDecoder } from "../src/layer/decoder.ts";
import { LayerDecompressStream, TarStream, UntarStream, type TarEvent } from "../src/web/tar-streams.ts";
import { have, sha256, tmpdir } from "./layer-fixtures.ts";

interface Got {
  h: TarEntryHeader;
  data: Uint8Array;
}

function parse(tar: Uint8Array, step = 512, useHole = false): Got[] {
  const out: Got[] = [];
  let cur: Got | null = null;
  let parts: Uint8Array[] = [];
  const handler: TarHandler = {
    entry(h) {
      cur = { h, data: new Uint8Array(0) };
      parts = [];
    },
    data(c) {
      parts.push(c.slice());
    },
    entryEnd() {
      cur!.data = concatBytes(parts);
      out.push(cur!);
    },
    end() {},
  };
  if (useHole) handler.hole = (n) => parts.push(new Uint8Array(n));
  const p = new TarParser(handler);
  for (let i = 0; i < tar.length; i += step) p.write(tar.subarray(i, i + step));
  p.end();
  return out;
}

function etar(fn: () => unknown, re?: RegExp): OcigenError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof OcigenError, String(e));
    assert.equal(e.code, "ETAR", e.message);
    if (re) assert.match(e.message, re);
    return e;
  }
  assert.fail("expected ETAR");
}

const td = new TextDecoder();

describe("tar header encoding", () => {
  test("octal and base-256 numbers round-trip, negative too", () => {
    for (const n of [0, 1, 0o7777777, 0o7777777 + 1, 2 ** 40, -1, -(2 ** 33)]) {
      const b = encodeHeader({ name: "x", mode: 0, uid: n >= 0 ? n : 0, gid: 0, size: 0, mtime: n, typeflag: "0", linkname: "", uname: "", gname: "", devmajor: 0, devminor: 0 });
      assert.equal(parseNumeric(b, 136, 12, "mtime"), n);
      if (n >= 0) assert.equal(parseNumeric(b, 108, 8, "uid"), n);
    }
  });

  test("the writer is deterministic and pads to blocks", () => {
    const entries: TarWriterEntry[] = [{ name: "a", data: "x", mtime: 1.5, xattrs: { "user.z": "1", "user.a": "2" } }, { name: "d/", type: "dir" }];
    const a = tarBytes(entries);
    const b = tarBytes(entries);
    assert.deepEqual(a, b);
    assert.equal(a.length % 512, 0);
  });

  test("PAX records encode lengths that include themselves", () => {
    for (const v of ["", "x", "y".repeat(5), "z".repeat(90), "w".repeat(995)]) {
      const rec = encodePax([["path", v]]);
      assert.equal(parsePax(rec).text.path, v);
      assert.equal(Number(td.decode(rec).split(" ")[0]), rec.length);
    }
    assert.throws(() => parsePax(new TextEncoder().encode("99 path=x\n")));
  });
});

describe("tar reader", () => {
  test("round-trips every entry type and feature through the writer", () => {
    const long = "dir/".repeat(40) + "file";
    const entries: TarWriterEntry[] = [
      { name: "d/", type: "dir", mode: 0o1755, uid: 1, gid: 2, uname: "u", gname: "g", mtime: 1700000000 },
      { name: "d/f", data: "hello", mode: 0o4755, mtime: 12.75 },
      { name: long, data: "long" },
      { name: "s", type: "symlink", linkname: "t".repeat(200) },
      { name: "h", type: "link", linkname: "d/f" },
      { name: "c", type: "char", devmajor: 1, devminor: 3 },
      { name: "b", type: "block", devmajor: 8, devminor: 0 },
      { name: "p", type: "fifo" },
      { name: "x", data: "xa", xattrs: { "user.k": "v", "security.capability": new Uint8Array([1, 0, 0, 2]) } },
      { name: "big", data: "b", uid: 3000000, gid: 9999999, uname: "n".repeat(40) },
      { name: "ünïcode/名前", data: "u" },
    ];
    for (const format of ["pax", "gnu"] as const) {
      for (const step of [1, 100, 512, 1 << 20]) {
        const got = parse(tarBytes(entries, { format }), step);
        assert.equal(got.length, entries.length);
        const byName = new Map(got.map((g) => [g.h.name, g]));
        assert.equal(td.decode(byName.get("d/f")!.data), "hello");
        assert.equal(byName.get("d/f")!.h.mode, 0o4755);
        assert.equal(byName.get("d/")!.h.type, "dir");
        assert.equal(byName.get("d/")!.h.uname, "u");
        assert.equal(td.decode(byName.get(long)!.data), "long");
        assert.equal(byName.get("s")!.h.linkname, "t".repeat(200));
        assert.equal(byName.get("h")!.h.type, "link");
        assert.equal(byName.get("c")!.h.devminor, 3);
        assert.equal(byName.get("b")!.h.devmajor, 8);
        assert.equal(byName.get("p")!.h.type, "fifo");
        assert.equal(byName.get("big")!.h.uid, 3000000);
        assert.equal(byName.get("big")!.h.gid, 9999999);
        assert.equal(td.decode(byName.get("ünïcode/名前")!.data), "u");
        if (format === "pax") {
          assert.equal(byName.get("d/f")!.h.mtime, 12.75);
          assert.equal(td.decode(byName.get("x")!.h.xattrs["user.k"] as Uint8Array), "v");
          assert.deepEqual([...(byName.get("x")!.h.xattrs["security.capability"] as Uint8Array)], [1, 0, 0, 2]);
          assert.equal(byName.get("big")!.h.uname, "n".repeat(40));
        }
      }
    }
  });

  test("sparse formats expand identically, with and without hole()", () => {
    const data = new Uint8Array(70000);
    for (let i = 0; i < data.length; i++) if (i % 9000 < 100) data[i] = (i * 31) & 0xff;
    const sparse = [];
    for (let o = 0; o < data.length; o += 9000) sparse.push({ offset: o, size: Math.min(100, data.length - o) });
    for (const sf of ["gnu", "pax-0.0", "pax-0.1", "pax-1.0"] as const) {
      const tar = tarBytes([{ name: "sp", data, sparse, sparseFormat: sf }], { format: sf === "gnu" ? "gnu" : "pax" });
      for (const hole of [false, true]) {
        const [g] = parse(tar, 333, hole);
        assert.equal(g.h.name, "sp", sf);
        assert.equal(g.h.size, data.length, sf);
        assert.deepEqual(g.data, data, sf);
      }
    }
  });

  test("header-only types ignore their size field (as Go's archive/tar)", () => {
    const dir = encodeHeader({ name: "d/", mode: 0o755, uid: 0, gid: 0, size: 1024, mtime: 0, typeflag: "5", linkname: "", uname: "", gname: "", devmajor: 0, devminor: 0 });
    const tar = concatBytes([dir, tarBytes([{ name: "f", data: "x" }])]);
    const got = parse(tar);
    assert.deepEqual(got.map((g) => g.h.name), ["d/", "f"]);
  });

  test("global PAX headers are ignored; old-style dirs with a trailing slash", () => {
    const g = tarBytes([{ name: "g", type: "other", typeflag: "g", data: encodePax([["path", "ignored"], ["comment", "x"]]) }], { endMarker: false });
    const v7 = encodeHeader({ name: "old/", mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0, typeflag: "\0", linkname: "", uname: "", gname: "", devmajor: 0, devminor: 0, format: "v7" });
    const got = parse(concatBytes([g, v7, tarBytes([{ name: "f", data: "1" }])]));
    assert.deepEqual(got.map((x) => [x.h.name, x.h.type]), [["old/", "dir"], ["f", "file"]]);
  });

  test("tolerates a missing end-of-archive marker and trailing junk after it", () => {
    const entries = [{ name: "a", data: "1" }, { name: "b", data: "2" }];
    assert.equal(parse(tarBytes(entries, { endMarker: false })).length, 2);
    const oneZero = concatBytes([tarBytes(entries, { endMarker: false }), new Uint8Array(512)]);
    assert.equal(parse(oneZero).length, 2);
    const junk = concatBytes([tarBytes(entries), new TextEncoder().encode("junk".repeat(1000))]);
    assert.equal(parse(junk).length, 2);
  });

  test("malformed input is ETAR naming the entry offset", () => {
    const tar = tarBytes([{ name: "a", data: "1" }, { name: "b", data: "2" }]);
    const bad = tar.slice();
    bad[1024 + 5] ^= 1; // name of the second header: checksum breaks
    etar(() => parse(bad), /offset 1024: bad header checksum/);
    const badOctal = tar.slice();
    badOctal[1024 + 124] = 0x39; // '9' in size
    setChecksum(badOctal.subarray(1024, 1536));
    etar(() => parse(badOctal), /offset 1024: bad size field/);
    etar(() => parse(tar.subarray(0, 700)), /truncated/);
    etar(() => parse(tar.subarray(0, 1024 + 100)), /offset 1024.*truncated/);
    const zeroThenData = concatBytes([new Uint8Array(512), tar]);
    etar(() => parse(zeroThenData), /zero block/);
    const hugePax = encodeHeader({ name: "x", mode: 0, uid: 0, gid: 0, size: 2 << 20, mtime: 0, typeflag: "x", linkname: "", uname: "", gname: "", devmajor: 0, devminor: 0 });
    etar(() => parse(hugePax), /too large/);
    const badPax = tarBytes([{ name: "p", type: "other", typeflag: "x", data: "5 a\n" }, { name: "f", data: "" }]);
    etar(() => parse(badPax), /PAX/);
    const badSparse = tarBytes([{ name: "s", data: "abc", pax: { "GNU.sparse.map": "0,10", "GNU.sparse.numblocks": "1", "GNU.sparse.size": "5" } }]);
    etar(() => parse(badSparse), /sparse/);
  });

  test("reading is independent of chunking (property)", () => {
    const tar = tarBytes([
      { name: "a".repeat(150), data: new Uint8Array(3000).fill(7) },
      { name: "s", data: new Uint8Array(5000).fill(3, 1000, 1100), sparse: [{ offset: 1000, size: 100 }, { offset: 5000, size: 0 }] },
      { name: "x", data: "x", xattrs: { "user.a": "b" } },
    ]);
    const ref = parse(tar, tar.length);
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 4096 }), { minLength: 1, maxLength: 40 }), (cuts) => {
      const out: Got[] = [];
      let parts: Uint8Array[] = [];
      let h: TarEntryHeader;
      const p = new TarParser({ entry: (x) => { h = x; parts = []; }, data: (c) => parts.push(c.slice()), entryEnd: () => out.push({ h, data: concatBytes(parts) }), end() {} });
      let o = 0;
      let k = 0;
      while (o < tar.length) {
        const n = cuts[k++ % cuts.length];
        p.write(tar.subarray(o, o + n));
        o += n;
      }
      p.end();
      assert.deepEqual(out.map((g) => [g.h.name, sha256(g.data)]), ref.map((g) => [g.h.name, sha256(g.data)]));
    }), { numRuns: 60 });
  });

  test("random and mutated streams only ever throw ETAR (property)", () => {
    const seedTar = tarBytes([
      { name: "d/", type: "dir" },
      { name: "n".repeat(130), data: "abc" },
      { name: "x", data: "x", xattrs: { "user.a": "b" }, mtime: 1.5 },
      { name: "s", data: new Uint8Array(2000).fill(5, 100, 200), sparse: [{ offset: 100, size: 100 }, { offset: 2000, size: 0 }] },
    ]);
    const gnu = tarBytes([{ name: "g".repeat(120), data: "1", uid: 1e9 }, { name: "gs", data: new Uint8Array(700).fill(1, 0, 10), sparse: [{ offset: 0, size: 10 }, { offset: 700, size: 0 }], sparseFormat: "gnu" }], { format: "gnu" });
    const sink: TarHandler = { entry() {}, data() {}, entryEnd() {}, end() {} };
    fc.assert(fc.property(
      fc.constantFrom(seedTar, gnu),
      fc.array(fc.record({ at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }), { maxLength: 8 }),
      fc.boolean(),
      fc.integer({ min: 1, max: 600 }),
      (base, muts, fixSum, step) => {
        const b = base.slice();
        for (const m of muts) b[m.at % b.length] = m.v;
        if (fixSum) for (let o = 0; o + 512 <= b.length; o += 512) if (b[o + 257] === 0x75) setChecksum(b.subarray(o, o + 512));
        try {
          const p = new TarParser(sink);
          for (let o = 0; o < b.length; o += step) p.write(b.subarray(o, o + step));
          p.end();
        } catch (e) {
          assert.ok(e instanceof OcigenError && e.code === "ETAR", String((e as Error)?.stack ?? e));
        }
      },
    ), { numRuns: 400, seed: 7 });
  });

  const gnuTar = have("tar");
  test("reads archives made by GNU tar (ustar, gnu, pax, sparse, xattrs, long names)", { skip: gnuTar ? false : "tar not installed" }, () => {
    const dir = tmpdir("ocigen-tar-");
    try {
      const src = path.join(dir, "src");
      fs.mkdirSync(path.join(src, "d".repeat(99), "e".repeat(99)), { recursive: true });
      fs.writeFileSync(path.join(src, "d".repeat(99), "e".repeat(99), "f".repeat(120)), "deep");
      fs.writeFileSync(path.join(src, "small"), "s");
      fs.symlinkSync("l".repeat(150), path.join(src, "link"));
      fs.linkSync(path.join(src, "small"), path.join(src, "hard"));
      const fd = fs.openSync(path.join(src, "sparse"), "w");
      fs.writeSync(fd, "A".repeat(5000), 100000);
      fs.writeSync(fd, "B".repeat(10), 300000);
      fs.ftruncateSync(fd, 400000);
      fs.closeSync(fd);
      const files = new Map<string, string>();
      for (const rel of ["small", "sparse", path.join("d".repeat(99), "e".repeat(99), "f".repeat(120))]) {
        files.set(rel, sha256(fs.readFileSync(path.join(src, rel))));
      }
      for (const [fmt, extra] of [["gnu", ["-S"]], ["pax", ["-S"]], ["pax", ["-S", "--sparse-version=0.0"]], ["pax", ["-S", "--sparse-version=0.1"]], ["ustar", []], ["pax", ["--xattrs"]]] as const) {
        const out = path.join(dir, "t.tar");
        const args = ["-C", src, `--format=${fmt}`, ...extra, "-cf", out];
        const names = fmt === "ustar" ? ["small", "link2", "hard"] : ["."];
        if (fmt === "ustar") fs.symlinkSync("short", path.join(src, "link2"));
        const r = spawnSync("tar", [...args, ...names], { encoding: "utf8" });
        if (fmt === "ustar") fs.unlinkSync(path.join(src, "link2"));
        assert.equal(r.status, 0, r.stderr);
        const got = parse(new Uint8Array(fs.readFileSync(out)), 4096);
        const byName = new Map(got.map((g) => [g.h.name.replace(/^\.\//, ""), g]));
        for (const [rel, digest] of files) {
          if (fmt === "ustar" && rel !== "small") continue;
          const g = byName.get(rel);
          assert.ok(g, `${fmt} ${extra.join(" ")}: ${rel} missing`);
          assert.equal(sha256(g.data), digest, `${fmt} ${rel}`);
        }
        if (fmt !== "ustar") assert.equal(byName.get("link")!.h.linkname, "l".repeat(150));
        assert.equal(byName.get("hard")!.h.type, "link");
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("archives from the writer extract with GNU tar", { skip: gnuTar ? false : "tar not installed" }, () => {
    const dir = tmpdir("ocigen-tar-");
    try {
      const data = new Uint8Array(50000).fill(9, 20000, 21000);
      const tar = tarBytes([
        { name: "a/", type: "dir" },
        { name: "a/" + "n".repeat(200), data: "long" },
        { name: "a/sp", data, sparse: [{ offset: 20000, size: 1000 }, { offset: 50000, size: 0 }] },
        { name: "a/l", type: "symlink", linkname: "x".repeat(180) },
        { name: "a/h", type: "link", linkname: "a/sp" },
      ]);
      fs.writeFileSync(path.join(dir, "w.tar"), tar);
      fs.mkdirSync(path.join(dir, "x"));
      const r = spawnSync("tar", ["-C", path.join(dir, "x"), "-xf", path.join(dir, "w.tar")], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(fs.readFileSync(path.join(dir, "x/a", "n".repeat(200)), "utf8"), "long");
      assert.deepEqual(new Uint8Array(fs.readFileSync(path.join(dir, "x/a/sp"))), data);
      assert.equal(fs.readlinkSync(path.join(dir, "x/a/l")), "x".repeat(180));
      assert.equal(fs.statSync(path.join(dir, "x/a/h")).ino, fs.statSync(path.join(dir, "x/a/sp")).ino);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("decompression", () => {
  const payload = new Uint8Array(300000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7919) % 251 & (i % 1000 < 500 ? 0xff : 0);
  const gz = new Uint8Array(zlib.gzipSync(payload));

  function dec(kind: "gzip" | "zstd", data: Uint8Array, step = 1000): Uint8Array {
    const out = new CollectSink();
    const d = kind === "gzip" ? new GzipDecoder(out) : new ZstdDecoder(out);
    for (let i = 0; i < data.length; i += step) d.write(data.subarray(i, i + step));
    d.end();
    return out.bytes();
  }
  function edec(fn: () => unknown, re: RegExp): void {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof OcigenError, String(e));
      assert.equal(e.code, "EDECOMPRESS");
      assert.match(e.message, re);
      return;
    }
    assert.fail("expected EDECOMPRESS");
  }

  test("gzip: single and multi-member, any chunking", () => {
    const two = concatBytes([gz, new Uint8Array(zlib.gzipSync(new TextEncoder().encode("tail")))]);
    for (const step of [1, 13, 4096, 1 << 22]) {
      assert.deepEqual(dec("gzip", gz, step), payload);
      assert.equal(dec("gzip", two, step).length, payload.length + 4);
    }
    const named = new Uint8Array(zlib.gzipSync(payload)); // FNAME etc. handled by header parsing
    assert.deepEqual(dec("gzip", named), payload);
  });

  test("gzip: truncated, corrupt, trailing junk and empty streams are EDECOMPRESS", () => {
    edec(() => dec("gzip", gz.subarray(0, gz.length - 3)), /truncated/);
    edec(() => dec("gzip", gz.subarray(0, gz.length >> 1)), /truncated/);
    edec(() => dec("gzip", gz.subarray(0, 5)), /truncated gzip header/);
    const badCrc = gz.slice();
    badCrc[badCrc.length - 6] ^= 1;
    edec(() => dec("gzip", badCrc), /CRC-32/);
    const badData = gz.slice();
    badData[gz.length >> 1] ^= 0xff;
    edec(() => dec("gzip", badData), /corrupt|CRC|length/);
    edec(() => dec("gzip", concatBytes([gz, new Uint8Array(10)])), /trailing data/);
    edec(() => dec("gzip", new Uint8Array(0)), /empty/);
    edec(() => dec("gzip", new TextEncoder().encode("plain text, not gzip")), /not in gzip format/);
  });

  test("zstd: streams, truncation is EDECOMPRESS", { skip: have("zstd") ? false : "zstd not installed" }, () => {
    const z = new Uint8Array(spawnSync("zstd", ["-q", "-c"], { input: payload, maxBuffer: 1 << 26 }).stdout);
    for (const step of [1, 777, 1 << 22]) assert.deepEqual(dec("zstd", z, step), payload);
    edec(() => dec("zstd", z.subarray(0, z.length - 7)), /truncated|corrupt/);
    edec(() => dec("zstd", new Uint8Array(0)), /empty/);
  });

  test("createDecoder: unknown layer media types are EMEDIATYPE", () => {
    assert.throws(() => createDecoder("application/vnd.oci.image.layer.v1.tar+bzip2", new CollectSink()), (e: unknown) => e instanceof OcigenError && e.code === "EMEDIATYPE");
    const out = new CollectSink();
    const d = createDecoder("application/vnd.oci.image.layer.v1.tar", out);
    d.write(new Uint8Array([1, 2]));
    d.end();
    assert.deepEqual(out.bytes(), new Uint8Array([1, 2]));
  });
});

describe("web streams", () => {
  test("TarStream -> gzip -> LayerDecompressStream -> UntarStream", async () => {
    const entries: TarWriterEntry[] = [{ name: "a", data: "hello" }, { name: "d/", type: "dir" }];
    const tarStream = new ReadableStream<TarWriterEntry>({
      start(c) {
        for (const e of entries) c.enqueue(e);
        c.close();
      },
    }).pipeThrough(new TarStream());
    const chunks: Uint8Array[] = [];
    for await (const c of tarStream as unknown as AsyncIterable<Uint8Array>) chunks.push(c);
    const gz = new Uint8Array(zlib.gzipSync(concatBytes(chunks)));
    const events: TarEvent[] = [];
    const src = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(gz.subarray(0, 10));
        c.enqueue(gz.subarray(10));
        c.close();
      },
    });
    const evs = src.pipeThrough(new LayerDecompressStream("application/vnd.oci.image.layer.v1.tar+gzip")).pipeThrough(new UntarStream());
    for await (const ev of evs as unknown as AsyncIterable<TarEvent>) events.push(ev);
    assert.deepEqual(events.filter((e) => e.kind === "entry").map((e) => (e as { header: TarEntryHeader }).header.name), ["a", "d/"]);
    assert.equal(td.decode((events.find((e) => e.kind === "data") as { chunk: Uint8Array }).chunk), "hello");
    // the WebAssembly kernel gives the same events
    const kernelEvents: TarEvent[] = [];
    const tar = concatBytes(chunks);
    const src2 = new ReadableStream<Uint8Array>({
      start(c) {
        for (let o = 0; o < tar.length; o += 300) c.enqueue(tar.slice(o, o + 300));
        c.close();
      },
    });
    for await (const ev of src2.pipeThrough(new UntarStream({ kernel: true })) as unknown as AsyncIterable<TarEvent>) kernelEvents.push(ev);
    const merged = (evs: TarEvent[]) => evs.reduce<unknown[]>((acc, e) => {
      const last = acc.at(-1) as { kind: string; chunk?: Uint8Array } | undefined;
      if (e.kind === "data" && last?.kind === "data") last.chunk = concatBytes([last.chunk!, e.chunk]);
      else acc.push(e.kind === "data" ? { kind: "data", chunk: e.chunk } : e);
      return acc;
    }, []);
    assert.deepStrictEqual(merged(kernelEvents), merged(events));
  });

  test("decodeHeader rejects bad checksums", () => {
    const b = tarBytes([{ name: "a", data: "" }]).slice(0, 512);
    b[0] = 0x62;
    assert.throws(() => decodeHeader(b));
  });
});
