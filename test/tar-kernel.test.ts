// The WebAssembly tar kernel against the TypeScript reference parser: on
// random archives (writer-made and hand-made hostile headers), cut at random
// chunk boundaries, both must call their handler identically (same headers,
// same content, same holes) and fail with the same error.
import { after, describe, test } from "node:test";
import zlib from "node:zlib";
import { closeIdleWorkers, FileGunzip } from "../src/compress/inflate-worker.ts";
import assert from "node:assert/strict";
import fc from "fast-check";
import { OcigenError } from "../src/errors.ts";
import { TarParser, type TarHandler } from "../src/tar/parser.ts";
import { TarKernel, TarKernelParser } from "../src/tar/kernel.ts";
import { encodeHeader, setChecksum } from "../src/tar/header.ts";
import { encodePax } from "../src/tar/pax.ts";
import { type TarWriterEntry, tarBytes } from "../src/tar/writer.ts";
import { concatBytes } from "../src/stream/sink.ts";
import fs from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import { applyTo, describeTree, makeImage, tmpdir } from "./layer-fixtures.ts";
import { Layout } from "../src/oci/layout.ts";
import { unpackRootfs } from "../src/layer/unpack.ts";

type Ev = unknown[];

interface Sink {
  write(c: Uint8Array): void;
  end(): void;
}

/**
 * Content past this many bytes stops a run (both parsers then must agree up
 * to there): a mutated sparse header can declare gigabytes of zeros.
 */
const OUTPUT_CAP = 64 << 20;

class OutputCap extends Error {}

/**
 * Runs a parser over `tar` cut at `cuts`; returns its event log (data merged
 * into its length and sha256, so that a mutated sparse header declaring
 * gigabytes of zeros costs no memory; holes merged) and error.
 */
function runLog(make: (h: TarHandler) => Sink, tar: Uint8Array, cuts: number[], useHole: boolean): Ev[] {
  const log: Ev[] = [];
  let data: { hash: ReturnType<typeof createHash>; length: number } | undefined;
  let hole = 0;
  let total = 0;
  const flush = () => {
    if (data) log.push(["data", data.length, data.hash.digest("hex")]);
    if (hole) log.push(["hole", hole]);
    data = undefined;
    hole = 0;
  };
  const handler: TarHandler = {
    entry(h) {
      flush();
      log.push(["entry", h]);
    },
    data(c) {
      if (hole) flush();
      total += c.length;
      if (total > OUTPUT_CAP) throw new OutputCap();
      data ??= { hash: createHash("sha256"), length: 0 };
      data.hash.update(c);
      data.length += c.length;
    },
    entryEnd() {
      flush();
      log.push(["entryEnd"]);
    },
    end() {
      flush();
      log.push(["end"]);
    },
  };
  if (useHole) {
    handler.hole = (n) => {
      if (data) flush();
      hole += n;
    };
  }
  const p = make(handler);
  try {
    let at = 0;
    for (const c of [...cuts.filter((x) => x > 0 && x < tar.length).sort((a, b) => a - b), tar.length]) {
      if (c < at) continue;
      p.write(tar.subarray(at, c));
      at = c;
    }
    p.end();
    log.push(["offset", (p as unknown as { offset: number }).offset]);
  } catch (e) {
    flush();
    if (e instanceof OutputCap) {
      log.push(["output cap reached"]);
      return log;
    }
    assert.ok(e instanceof OcigenError, String(e));
    log.push(["error", e.code, e.message]);
  }
  return log;
}

function compare(tar: Uint8Array, cuts: number[] = [], useHole = false, opts: { maxExtendedSize?: number; context?: string } = {}): Ev[] {
  const ref = runLog((h) => new TarParser(h, opts), tar, cuts, useHole);
  const got = runLog((h) => new TarKernelParser(h, opts), tar, cuts, useHole);
  // the first differing event, readable, then the whole logs
  for (let i = 0; i < Math.max(got.length, ref.length); i++) assert.deepStrictEqual(got[i], ref[i], `event ${i} differs`);
  assert.deepStrictEqual(got, ref);
  return ref;
}

const te = new TextEncoder();

function block(fields: Partial<Parameters<typeof encodeHeader>[0]>): Uint8Array {
  return encodeHeader({
    name: "f", mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, typeflag: "0", linkname: "", uname: "", gname: "",
    devmajor: 0, devminor: 0, ...fields,
  });
}

function padded(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(b.length / 512) * 512);
  out.set(b);
  return out;
}

function paxEntry(recs: Array<[string, string | Uint8Array]>, rawBody?: Uint8Array): Uint8Array {
  const body = rawBody ?? encodePax(recs);
  return concatBytes([block({ name: "PaxHeader", typeflag: "x", size: body.length }), padded(body)]);
}

// ---------------------------------------------------------------- arbitraries

const nameArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("a", "dir/", "etc/passwd", "x/.wh.y", "x/.wh..wh..opq", "é/ü", "sp ace") },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-z/]{1,300}$/) },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 40, unit: "binary" }) },
  { weight: 1, arbitrary: fc.constantFrom("d".repeat(99) + "/" + "e".repeat(99), "l".repeat(200), "/".repeat(3)) },
);

const typeArb = fc.constantFrom("file", "file", "file", "dir", "symlink", "link", "fifo", "char", "block") as fc.Arbitrary<TarWriterEntry["type"]>;

const entryArb: fc.Arbitrary<TarWriterEntry> = fc.record({
  name: nameArb,
  type: typeArb,
  linkname: fc.oneof(fc.constant(""), nameArb),
  mode: fc.constantFrom(0o644, 0o755, 0o4755, 0o7777, 0),
  uid: fc.constantFrom(0, 1, 65534, 1e9, 2 ** 40),
  gid: fc.constantFrom(0, 100, 2 ** 33),
  mtime: fc.constantFrom(0, 1.5, 1700000000, 1700000000.123456789, 2 ** 34),
  size: fc.nat(3000),
  xattr: fc.boolean(),
  pax: fc.option(fc.dictionary(fc.constantFrom("comment", "atime", "ctime", "LIBARCHIVE.xattr.user.a", "SCHILY.xattr.user.b"), fc.string({ maxLength: 30 }), { maxKeys: 3 }), { nil: undefined }),
  sparse: fc.option(fc.constantFrom("gnu", "pax-0.0", "pax-0.1", "pax-1.0"), { nil: undefined }),
  devmajor: fc.nat(300),
  devminor: fc.nat(300),
  owner: fc.constantFrom("root", "root", "user", "", "ü"),
}).map((r): TarWriterEntry => {
  const e: TarWriterEntry = {
    name: r.name, type: r.type, linkname: r.linkname, mode: r.mode, uid: r.uid, gid: r.gid, mtime: r.mtime,
    devmajor: r.devmajor, devminor: r.devminor, uname: r.owner, gname: r.owner === "root" ? "root" : "group",
  };
  if (r.type === "file") {
    const data = new Uint8Array(r.size);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + r.size) & 0xff;
    e.data = data;
    if (r.sparse && r.size > 0) {
      e.sparse = [{ offset: Math.min(10, r.size), size: Math.min(100, r.size - Math.min(10, r.size)) }, { offset: r.size, size: 0 }];
      e.sparseFormat = r.sparse as TarWriterEntry["sparseFormat"];
    }
  }
  if (r.xattr) e.xattrs = { "user.k": "v", "security.capability": new Uint8Array([1, 0, 0xff, 2]) };
  if (r.pax) e.pax = r.pax;
  return e;
});

const tarArb = fc.tuple(fc.array(entryArb, { minLength: 0, maxLength: 6 }), fc.constantFrom("pax", "gnu") as fc.Arbitrary<"pax" | "gnu">, fc.boolean())
  .map(([entries, format, endMarker]) => {
    const fixed = format === "gnu" ? entries.map((e) => (e.sparse && e.sparseFormat !== "gnu" ? { ...e, sparseFormat: "gnu" as const } : e)) : entries.map((e) => (e.sparseFormat === "gnu" ? { ...e, sparseFormat: "pax-1.0" as const } : e));
    try {
      return tarBytes(fixed, { format, endMarker });
    } catch {
      return tarBytes([], { format });
    }
  });

const cutsArb = fc.array(fc.nat(40000), { maxLength: 12 });

/** Mutations of a valid archive: byte flips (with the checksum fixed or not), truncation, garbage blocks. */
const mutArb = fc.record({
  flips: fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }),
  fixSum: fc.boolean(),
  cut: fc.option(fc.nat(), { nil: undefined }),
  field: fc.option(fc.tuple(fc.constantFrom(100, 108, 116, 124, 136, 148, 329, 337, 483, 386, 398, 482), fc.constantFrom(0x80, 0xff, 0x20, 0x00, 0x39, 0x37)), { nil: undefined }),
});

function mutate(tar: Uint8Array, m: { flips: Array<[number, number]>; fixSum: boolean; cut?: number; field?: [number, number] }): Uint8Array {
  let t = tar.slice();
  const blocks = Math.max(1, Math.floor(t.length / 512));
  for (const [at, v] of m.flips) {
    if (t.length === 0) break;
    const i = at % t.length;
    t[i] = v;
    if (m.fixSum) setChecksum(t.subarray(i - (i % 512), i - (i % 512) + 512));
  }
  if (m.field && t.length >= 512) {
    const b = (m.flips[0]?.[0] ?? 0) % blocks;
    const [off, v] = m.field;
    t[b * 512 + off] = v;
    if (m.fixSum) setChecksum(t.subarray(b * 512, b * 512 + 512));
  }
  if (m.cut !== undefined && t.length) t = t.subarray(0, m.cut % (t.length + 1));
  return t;
}

// ---------------------------------------------------------------- tests

describe("tar kernel (WebAssembly) against the reference parser", () => {
  test("writer-made archives, random chunking, with and without hole()", () => {
    fc.assert(
      fc.property(tarArb, cutsArb, fc.boolean(), (tar, cuts, useHole) => {
        const log = compare(tar, cuts, useHole);
        assert.deepEqual(log.slice(-2).map((e) => e[0]), ["end", "offset"]);
        assert.equal(log.at(-1)?.[1], tar.length);
      }),
      { numRuns: 300 },
    );
  });

  test("mutated archives: byte flips, checksums fixed or not, base-256 and junk in numeric fields, truncation", () => {
    fc.assert(
      fc.property(tarArb, mutArb, cutsArb, fc.boolean(), (tar, m, cuts, useHole) => {
        compare(mutate(tar, m), cuts, useHole, { context: "layer sha256:abc" });
      }),
      { numRuns: 600 },
    );
  });

  test("hand-made hostile PAX records: identical values or identical errors", () => {
    const values = ["", "0", "1", "dir/", "12", "-1", "1.5", "1.", ".5", "abc", " 12", "0x10", "1e3", "-0", "99999999999999999999", "9007199254740991", "9007199254740992", "00000000000000000000007"];
    const keys = ["size", "uid", "gid", "mtime", "path", "linkpath", "uname", "gname", "GNU.sparse.size", "GNU.sparse.realsize", "GNU.sparse.numblocks", "GNU.sparse.map", "GNU.sparse.offset", "GNU.sparse.numbytes", "GNU.sparse.name", "SCHILY.xattr.user.x", "GNU.sparse.major", "GNU.sparse.minor", "comment"];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...keys), fc.oneof(fc.constantFrom(...values), fc.constantFrom("0,1", "0,1,2", "1,2,3,4", "a,b", "0,5,10,0"))), { maxLength: 6 }),
        fc.constantFrom("0", "\0", "5", "S", "7", "2", "1", "6", "D", "L", "K", "g", "Z"),
        fc.boolean(),
        fc.nat(2000),
        cutsArb,
        (recs, flag, star, size, cuts) => {
          const body = new Uint8Array(size).fill(0x41);
          const hdr = block({ name: "target", typeflag: flag, size, prefix: star ? "p".repeat(140) : "some/prefix" });
          if (star) {
            hdr.set([0x74, 0x61, 0x72, 0], 508); // star's "tar\0" trailer: a 131-byte prefix
            setChecksum(hdr);
          }
          const tar = concatBytes([paxEntry(recs), hdr, padded(body), new Uint8Array(1024)]);
          compare(tar, cuts);
        },
      ),
      { numRuns: 500 },
    );
  });

  test("PAX sparse 1.0 maps: valid, hostile, truncated", () => {
    const maps = ["1\n0\n5\n", "2\n0\n5\n100\n5\n", "0\n", "x\n", "\n", "1\n0\n", "99999999\n", "1\n123456789012345678901\n5\n", "1\n5\n0\n", "2\n10\n5\n0\n5\n"];
    fc.assert(
      fc.property(fc.constantFrom(...maps), fc.nat(1500), fc.constantFrom("0", "5", "200", "abc"), cutsArb, (map, extra, real, cuts) => {
        const m = te.encode(map);
        const data = concatBytes([padded(m), new Uint8Array(extra).fill(7)]);
        const tar = concatBytes([
          paxEntry([["GNU.sparse.major", "1"], ["GNU.sparse.minor", "0"], ["GNU.sparse.name", "real/name"], ["GNU.sparse.realsize", real]]),
          block({ name: "GNUSparseFile.0/x", typeflag: "0", size: data.length }),
          padded(data),
          new Uint8Array(1024),
        ]);
        compare(tar, cuts, true);
        compare(tar.subarray(0, Math.min(tar.length, 1024 + 1 + extra)), cuts, false);
      }),
      { numRuns: 300 },
    );
  });

  test("GNU long names and links, extended header limits, zero blocks", () => {
    const long = te.encode("n".repeat(3000) + "\0junk");
    const tar = concatBytes([
      block({ name: "././@LongLink", typeflag: "L", size: long.length }),
      padded(long),
      block({ name: "././@LongLink", typeflag: "K", size: 5 }),
      padded(te.encode("tgt\0x")),
      block({ name: "short", typeflag: "2" }),
      new Uint8Array(1024),
    ]);
    const log = compare(tar, [1, 513, 700, 3000]);
    assert.equal((log[0][1] as { name: string }).name, "n".repeat(3000));
    compare(tar, [], false, { maxExtendedSize: 100 });
    // data after one zero block; garbage after the end marker is ignored
    compare(concatBytes([new Uint8Array(512), block({ name: "a" })]));
    compare(concatBytes([new Uint8Array(1024), new Uint8Array(700).fill(9)]), [1030]);
    // global headers are validated and ignored
    const g = encodePax([["comment", "x"]]);
    compare(concatBytes([block({ name: "g", typeflag: "g", size: g.length }), padded(g), block({ name: "a" }), new Uint8Array(1024)]));
    compare(concatBytes([block({ name: "g", typeflag: "g", size: 3 }), padded(te.encode("3 x"))]));
  });

  test("many entries and big files: batches and passed-over content", () => {
    const entries: TarWriterEntry[] = [];
    for (let i = 0; i < 3000; i++) entries.push({ name: `d${i % 7}/f${i}`, data: i % 500 === 0 ? new Uint8Array(600000).fill(i & 0xff) : `x${i}` });
    entries.push({ name: "sparse", data: new Uint8Array(200000), sparse: Array.from({ length: 3000 }, (_, k) => ({ offset: k * 60, size: 10 })).concat([{ offset: 200000, size: 0 }]) });
    const tar = tarBytes(entries);
    const cuts: number[] = [];
    for (let c = 0; c < tar.length; c += 65536 + 17) cuts.push(c);
    const log = compare(tar, cuts, true);
    assert.equal(log.filter((e) => e[0] === "entry").length, 3001);
    compare(tar, [], false);
  });

  test("old GNU sparse headers and extension blocks; negative ids; device numbers", () => {
    const oct = (n: number, w: number) => te.encode(n.toString(8).padStart(w - 1, "0") + "\0");
    const gnuSparse = (pairs: Array<[number, number]>, real: number, stored: number, extBlocks: Array<Array<[number, number]>>, raw?: (b: Uint8Array) => void) => {
      const extra = new Uint8Array(155);
      pairs.slice(0, 4).forEach(([o, z], k) => {
        extra.set(oct(o, 12), 41 + k * 24);
        extra.set(oct(z, 12), 41 + k * 24 + 12);
      });
      extra[137] = extBlocks.length ? 1 : 0;
      extra.set(oct(real, 12), 138);
      const hdr = encodeHeader({ name: "gs", mode: 0o644, uid: 0, gid: 0, size: stored, mtime: 0, typeflag: "S", linkname: "", uname: "u", gname: "g", devmajor: 0, devminor: 0, format: "gnu", gnuExtra: extra });
      if (raw) {
        raw(hdr);
        setChecksum(hdr);
      }
      const exts = extBlocks.map((ps, bi) => {
        const b = new Uint8Array(512);
        ps.forEach(([o, z], k) => {
          b.set(oct(o, 12), k * 24);
          b.set(oct(z, 12), k * 24 + 12);
        });
        b[504] = bi < extBlocks.length - 1 ? 1 : 0;
        return b;
      });
      return concatBytes([hdr, ...exts, padded(new Uint8Array(stored).fill(5)), new Uint8Array(1024)]);
    };
    const many = Array.from({ length: 21 }, (_, k): [number, number] => [k * 10, 2]);
    const cases = [
      gnuSparse([[0, 5], [100, 5]], 200, 10, []),
      gnuSparse([[0, 5], [100, 5]], 200, 9, []), // sum mismatch
      gnuSparse([[100, 5], [0, 5]], 200, 10, []), // out of order
      gnuSparse([[0, 5], [100, 5]], 50, 10, []), // beyond the size
      gnuSparse([[0, 1], [2, 1], [4, 1], [6, 1]], 1000, 4 + 42 + 2, [many.map(([o, z]) => [o + 10, z] as [number, number]), [[900, 2]]]),
      gnuSparse([[0, 1]], 1000, 1, [many]), // ext block overlaps
      gnuSparse([[0, 1]], 10, 1, [[]]),
      gnuSparse([[0, 1]], 10, 1, [], (b) => b.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe], 386)), // base-256 -2
      gnuSparse([[0, 1]], 10, 1, [], (b) => b.set(te.encode("12x"), 483)),
      gnuSparse([[0, 1]], 10, 1, [], (b) => b.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe], 108)), // negative uid
    ];
    const big = Array.from({ length: 21 }, (_, k): [number, number] => [k, 0]);
    cases.push(gnuSparse([[0, 0]], 10, 0, Array.from({ length: 6300 }, () => big))); // more than 2^17 regions
    const dev = (major: ArrayLike<number>, flag: string) => {
      const b = block({ name: "dev", typeflag: flag, devmajor: 8, devminor: 1 });
      b.set(major, 329);
      setChecksum(b);
      return concatBytes([b, new Uint8Array(1024)]);
    };
    cases.push(dev(te.encode("12z"), "3"), dev(te.encode("12z"), "0"), dev([0x80, 0, 0, 0, 0, 0, 1, 2], "4"));
    const errors: string[] = [];
    for (const tar of cases) {
      for (const cuts of [[], [1, 511, 513, 1030, 1600], Array.from({ length: 200 }, (_, k) => k * 97)]) {
        const log = compare(tar, cuts, true, { context: "layer t" });
        compare(tar, cuts, false);
        const last = log.at(-1)!;
        if (last[0] === "error") errors.push(String(last[2]).replace(/.*: /, ""));
      }
    }
    for (const m of ["sparse map holds 10 bytes but the entry stores 9", "sparse map entries overlap or are out of order", "sparse map entry beyond the file size", "bad sparse map entry", "bad sparse realsize field", "negative uid or gid", "sparse map too large", "bad devmajor field"]) {
      assert.ok(errors.includes(m), `${m} in ${errors.join("; ")}`);
    }
    // PAX: numblocks mismatch, missing and truncated 1.0 maps
    const pax = (recs: Array<[string, string]>, data: Uint8Array) =>
      concatBytes([paxEntry(recs), block({ name: "s", size: data.length }), padded(data), new Uint8Array(1024)]);
    compare(pax([["GNU.sparse.map", "0,1"], ["GNU.sparse.numblocks", "2"], ["GNU.sparse.size", "5"]], new Uint8Array(1)));
    compare(pax([["GNU.sparse.major", "1"], ["GNU.sparse.minor", "0"]], new Uint8Array(0)));
    compare(pax([["GNU.sparse.major", "1"], ["GNU.sparse.minor", "0"], ["GNU.sparse.realsize", "9"]], te.encode("1\n0\n")));
  });

  test("batch API: entries, data views into the pushed chunk, end", () => {
    const tar = tarBytes([{ name: "a", data: "hello" }, { name: "b/", type: "dir" }]);
    const k = new TarKernel();
    const evs = k.push(tar);
    assert.deepEqual(evs.map((e) => e.kind), ["entry", "data", "entryEnd", "entry", "entryEnd", "end"].slice(0, evs.length));
    const d = evs.find((e) => e.kind === "data");
    assert.ok(d && d.kind === "data");
    assert.equal(d.data.buffer, tar.buffer); // a view, not a copy
    assert.equal(d.at, 512);
    assert.equal(new TextDecoder().decode(d.data), "hello");
    const last = k.end();
    assert.deepEqual([...evs, ...last].map((e) => e.kind), ["entry", "data", "entryEnd", "entry", "entryEnd", "end"]);
    const k2 = new TarKernel({ context: "layer x" });
    k2.push(tar.subarray(0, 700));
    // in the padding: the entry is complete, so the error names only the offset (as the reference)
    assert.throws(() => k2.end(), /^OcigenError: Cannot unpack layer x: tar entry at offset 0: unexpected end of the tar stream \(truncated\)$/);
    const k3 = new TarKernel();
    k3.push(tar.subarray(0, 514));
    assert.throws(() => k3.end(), /^OcigenError: Cannot read tar entry at offset 0 \(a\): unexpected end of the tar stream \(truncated\)$/);
    assert.throws(() => k2.push(tar), /already failed/);
    // a sparse entry: data ranges and holes in order
    const sp = new TarKernel().push(tarBytes([{ name: "s", data: new Uint8Array(3000).fill(1, 1000, 1010), sparse: [{ offset: 1000, size: 10 }, { offset: 3000, size: 0 }] }]));
    assert.deepEqual(sp.filter((e) => e.kind === "hole" || e.kind === "data").map((e) => (e.kind === "hole" ? -e.length : (e as { data: Uint8Array }).data.length)), [-1000, 10, -1990]);
    assert.throws(() => new TarKernel({ maxExtendedSize: 2 ** 40 }), RangeError);
  });
});

describe("layers applied through the kernel", () => {
  test("random hostile layers: the same tree and the same error as through the reference parser", () => {
    const comp = fc.constantFrom("a", "b", "c", "..", ".", ".wh.a", ".wh.b", ".wh..wh..opq", ".wh.", "x".repeat(120));
    const name = fc.array(comp, { minLength: 1, maxLength: 3 }).map((cs) => cs.join("/"));
    const entry = fc.record({
      name,
      type: fc.constantFrom("file", "file", "dir", "symlink", "link", "fifo") as fc.Arbitrary<TarWriterEntry["type"]>,
      linkname: fc.oneof(name, fc.constantFrom("/etc", "../../..", "a")),
      data: fc.constantFrom("", "data", "x".repeat(3000)),
      mode: fc.constantFrom(0o644, 0o755, 0o4755),
      sparse: fc.boolean(),
      xattr: fc.boolean(),
    }).map((r): TarWriterEntry => {
      const e: TarWriterEntry = { name: r.name, type: r.type, linkname: r.linkname, mode: r.mode };
      if (r.type === "file") {
        e.data = r.data;
        if (r.sparse && r.data.length > 100) e.sparse = [{ offset: 50, size: 10 }, { offset: r.data.length, size: 0 }];
      }
      if (r.xattr && r.type === "file") e.xattrs = { "user.k": "v" }; // (user.* xattrs exist on regular files only)
      return e;
    });
    const layers = fc.array(fc.array(entry, { maxLength: 8 }), { minLength: 1, maxLength: 3 });
    fc.assert(
      fc.property(layers, fc.constantFrom(512, 1000, 4096, 1 << 20), (ls, chunk) => {
        const tars = ls.map((l) => {
          try {
            return tarBytes(l);
          } catch {
            return tarBytes([]);
          }
        });
        const a = tmpdir("ocigen-tk-ref-");
        const b = tmpdir("ocigen-tk-wasm-");
        try {
          const ea = applyTo(a, tars, { rootless: true }, chunk) as Error | undefined;
          const eb = applyTo(b, tars, { rootless: true, tarKernel: true }, chunk) as Error | undefined;
          assert.equal(eb?.message?.replaceAll(b, "ROOT"), ea?.message?.replaceAll(a, "ROOT"));
          assert.equal((eb as OcigenError | undefined)?.code, (ea as OcigenError | undefined)?.code);
          // (times of directories a layer creates implicitly are "now": not compared)
          assert.deepStrictEqual(describeTree(b), describeTree(a));
        } finally {
          fs.rmSync(a, { recursive: true, force: true });
          fs.rmSync(b, { recursive: true, force: true });
        }
      }),
      { numRuns: 120 },
    );
  });
});

describe("unpack with the tarKernel option", () => {
  test("worker and in-thread layers: the same rootfs, the same error as the TypeScript parser", async () => {
    const dir = tmpdir("ocigen-tk-unpack-");
    try {
      const big = new Uint8Array(3 << 20);
      for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
      const files: TarWriterEntry[] = [{ name: "usr/", type: "dir" }];
      for (let i = 0; i < 400; i++) files.push({ name: `usr/f${i}`, data: `file ${i}\n`, mode: 0o640, mtime: 1700000000 + i });
      files.push({ name: "usr/big", data: big }, { name: "usr/link", type: "symlink", linkname: "big" });
      files.push({ name: "usr/" + "long/".repeat(40) + "x", data: "deep" });
      makeImage(path.join(dir, "l"), [
        { entries: files }, // gzip, over 1 MiB: the worker path
        { entries: [{ name: "usr/.wh.f1" }, { name: "usr/f2", data: "changed" }, { name: "sp", data: new Uint8Array(9000).fill(2, 4000, 4100), sparse: [{ offset: 4000, size: 100 }, { offset: 9000, size: 0 }] }], compression: "zstd" },
        { entries: [{ name: "usr/long/.wh..wh..opq" }, { name: "usr/long/new", data: "n" }], compression: "none" },
      ]);
      const layout = await Layout.open(path.join(dir, "l"));
      const img = await layout.resolve("latest");
      await unpackRootfs(layout, img, path.join(dir, "ref"), { rootless: true });
      await unpackRootfs(layout, img, path.join(dir, "wasm"), { rootless: true, tarKernel: true });
      // (directories a layer creates implicitly get "now": times compared on files only)
      const tree = describeTree(path.join(dir, "wasm"));
      assert.deepStrictEqual(tree, describeTree(path.join(dir, "ref")));
      for (const f of ["usr/f3", "usr/big", "sp"]) {
        assert.equal(fs.statSync(path.join(dir, "wasm", f)).mtimeMs, fs.statSync(path.join(dir, "ref", f)).mtimeMs, f);
      }
      assert.ok(tree.has("usr/long/new") && !tree.has("usr/long/long") && !tree.has("usr/f1") && tree.has("usr/f2") && tree.has("usr/big") && tree.has("sp"));
      // a truncated tar inside a valid gzip layer: the same error both ways
      const tar = tarBytes(files);
      makeImage(path.join(dir, "bad"), [{ tar: tar.subarray(0, tar.length - 3000) }]);
      const bad = await Layout.open(path.join(dir, "bad"));
      const badImg = await bad.resolve("latest");
      const msgs: string[] = [];
      for (const tarKernel of [false, true]) {
        await assert.rejects(unpackRootfs(bad, badImg, path.join(dir, `bad-${tarKernel}`), { rootless: true, tarKernel }), (e: unknown) => {
          assert.ok(e instanceof OcigenError);
          msgs.push(`${e.code} ${e.message}`);
          return true;
        });
      }
      assert.equal(msgs[1], msgs[0]);
      assert.match(msgs[0], /^ETAR .*truncated/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the tar kernel inside the inflate worker (tarRecords jobs)", () => {
  after(() => closeIdleWorkers());
  const dir = tmpdir("ocigen-tk-worker-");
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  let n = 0;

  /** Event log of the worker parsing `tar` (gzipped to a file), in the shape of runLog's. */
  function workerLog(tar: Uint8Array, useHole: boolean, slow = false): Ev[] {
    const f = path.join(dir, `t${n++}.gz`);
    const gz = zlib.gzipSync(tar, { level: 1 });
    fs.writeFileSync(f, gz);
    let job: FileGunzip | null = null;
    const log = runLog((h) => ({
      write() {},
      end() {
        job = new FileGunzip(f, { name: "layer sha256:abc", size: gz.length, tarRecords: true });
        const wrapped: TarHandler = { ...h, data: (c) => {
          if (slow) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
          h.data(c);
        } };
        if (!h.hole) delete wrapped.hole;
        job.pumpEntries(wrapped);
      },
    }), tar, [], useHole);
    fs.rmSync(f);
    if (log.at(-1)?.[0] === "offset") log.pop();
    const j = job as FileGunzip | null;
    if (j && log.at(-1)?.[0] === "end") {
      assert.equal(j.outputDigest(), "sha256:" + createHash("sha256").update(tar).digest("hex"));
      assert.equal(j.inputDigest(), "sha256:" + createHash("sha256").update(gz).digest("hex"));
    }
    return log;
  }

  function refLog(tar: Uint8Array, useHole: boolean): Ev[] {
    const log = runLog((h) => new TarParser(h, { context: "layer sha256:abc" }), tar, [], useHole);
    if (log.at(-1)?.[0] === "offset") log.pop();
    return log;
  }

  test("random archives: the same entries, data, holes and end as the reference parser, and the digests", () => {
    fc.assert(
      fc.property(tarArb, fc.boolean(), (tar, useHole) => {
        const ref = refLog(tar, useHole);
        assert.deepStrictEqual(workerLog(tar, useHole), ref);
        assert.equal(ref.at(-1)?.[0], "end");
      }),
      { numRuns: 40 },
    );
  });

  test("hostile archives (flips, bad checksums, truncation): the same events before the error, the same ETAR message", () => {
    let errors = 0;
    fc.assert(
      fc.property(tarArb, mutArb, fc.boolean(), (tar, m, useHole) => {
        const bad = mutate(tar, m);
        const ref = refLog(bad, useHole);
        if (ref.at(-1)?.[0] === "error") errors++;
        assert.deepStrictEqual(workerLog(bad, useHole), ref);
      }),
      { numRuns: 40 },
    );
    assert.ok(errors > 0, "some hostile archives fail");
    const good = tarBytes([{ name: "a", data: "x".repeat(5000) }, { name: "b", data: "y" }]);
    const sum = good.slice();
    sum[512 * 11 + 148] ^= 1; // the checksum of the second header
    const log = workerLog(sum, false);
    assert.deepStrictEqual(log.at(-1), ["error", "ETAR", "Cannot unpack layer sha256:abc: tar entry at offset 5632: bad header checksum"]);
    assert.deepStrictEqual(log.at(-1), refLog(sum, false).at(-1));
    const cut = workerLog(good.subarray(0, 3000), false);
    assert.match(String(cut.at(-1)?.[2]), /^Cannot unpack layer sha256:abc: .*truncated/);
    assert.deepStrictEqual(cut, refLog(good.subarray(0, 3000), false));
  });

  test("more than a ring of content with a slow consumer, many entries per batch", () => {
    const big = new Uint8Array(20 << 20);
    for (let i = 0; i < big.length; i += 997) big[i] = i & 0xff;
    const entries: TarWriterEntry[] = [];
    for (let i = 0; i < 3000; i++) entries.push({ name: `d/f${i}`, data: i % 7 ? "" : `content ${i}` });
    entries.push({ name: "big", data: big }, { name: "after", data: "z" });
    const tar = tarBytes(entries);
    assert.deepStrictEqual(workerLog(tar, false, true), refLog(tar, false));
  });
});
