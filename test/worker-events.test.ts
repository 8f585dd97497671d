// The binary tar events of the inflate worker (src/compress/worker/events.ts):
// whatever the parser hands over (any number, NaN and -0 too, UTF-8 and
// latin1 names, binary and text xattrs, pax records, sparse maps, digests,
// holes) comes back to the caller's handler exactly, in order, also from a
// view of shared memory.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { EVENT_TYPES, EventWriter, replayEvents } from "../src/compress/worker/events.ts";
import type { TarEntryHeader } from "../src/tar/header.ts";
import type { TarHandler } from "../src/tar/parser.ts";

type Ev = ["entry", TarEntryHeader] | ["end", string | undefined] | ["hole", number] | ["data", Uint8Array];

const num = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(NaN, -0, 2 ** 53, -1, 0o7777));
const text = fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)) }), fc.constant(""), fc.string({ minLength: 200, maxLength: 400 }));
const header: fc.Arbitrary<TarEntryHeader> = fc.record({
  name: text, type: fc.constantFrom(...EVENT_TYPES), typeflag: fc.option(fc.string({ minLength: 1, maxLength: 1 }), { nil: undefined }),
  size: num, mode: num, uid: num, gid: num, uname: text, gname: text, mtime: num, linkname: text, devmajor: num, devminor: num,
  // (plain objects, as the parser makes them)
  xattrs: fc.dictionary(fc.string({ minLength: 1 }), fc.oneof(text, fc.uint8Array({ maxLength: 40 })), { maxKeys: 3 }).map((d) => ({ ...d })),
  pax: fc.dictionary(fc.string({ minLength: 1 }), text, { maxKeys: 3 }).map((d) => ({ ...d })),
  sparse: fc.option(fc.array(fc.record({ offset: num, size: num }).map((r) => ({ ...r })), { maxLength: 4 }), { nil: undefined }),
}, { requiredKeys: ["name", "type", "size", "mode", "uid", "gid", "uname", "gname", "mtime", "linkname", "devmajor", "devminor", "xattrs", "pax"] });
const event: fc.Arbitrary<Ev> = fc.oneof(
  header.map((h): Ev => ["entry", h]),
  fc.option(fc.stringMatching(/^[0-9a-f]{64}$/), { nil: undefined }).map((d): Ev => ["end", d]),
  fc.nat(200_000).map((n): Ev => ["hole", n]),
  fc.uint8Array({ maxLength: 3000 }).map((b): Ev => ["data", b]),
);

function replay(bytes: Uint8Array, withHole: boolean): Ev[] {
  const got: Ev[] = [];
  let digest: string | undefined;
  const h: TarHandler = {
    entry: (e) => void got.push(["entry", e]),
    data: (d) => void got.push(["data", d.slice()]),
    contentDigest: (hex) => void (digest = hex),
    entryEnd: () => {
      got.push(["end", digest]);
      digest = undefined;
    },
    end() {},
  };
  if (withHole) h.hole = (n) => void got.push(["hole", n]);
  replayEvents(bytes, h);
  return got;
}

test("events come back exactly, in order, from plain and shared memory", () => {
  fc.assert(
    fc.property(fc.array(event, { maxLength: 12 }), fc.boolean(), (evs, shared) => {
      const w = new EventWriter();
      for (const e of evs) {
        if (e[0] === "entry") w.entry(e[1]);
        else if (e[0] === "end") w.end(e[1]);
        else if (e[0] === "data") w.data(e[1]);
        else w.hole(e[1]);
      }
      assert.equal(w.count, evs.length);
      let bytes = w.bytes();
      if (shared) {
        const sab = new Uint8Array(new SharedArrayBuffer(bytes.length + 16), 8, bytes.length);
        sab.set(bytes);
        bytes = sab;
      }
      // with a hole handler, holes come as holes; without, as that many zero bytes
      assert.deepStrictEqual(replay(bytes, true), evs.map((e) => (e[0] === "entry" ? [e[0], withoutUndefined(e[1])] : e)));
      // without a hole handler, a hole comes as that many zero bytes of data
      const zeros = replay(bytes, false);
      const flat = (l: Ev[]) => l.flatMap((e): Ev[] => (e[0] === "hole" ? [] : e[0] === "data" ? (e[1].length ? [e] : []) : [e]));
      assert.deepStrictEqual(flat(zeros.filter((e) => e[0] !== "data" || e[1].some((b) => b !== 0))), flat(evs.filter((e) => e[0] !== "data" || e[1].some((b) => b !== 0))).map((e) => (e[0] === "entry" ? [e[0], withoutUndefined(e[1])] : e)));
      const zeroBytes = (l: Ev[]) => l.reduce((n, e) => n + (e[0] === "hole" ? e[1] : e[0] === "data" && e[1].every((b) => b === 0) ? e[1].length : 0), 0);
      assert.equal(zeroBytes(zeros), zeroBytes(evs));
      w.clear();
      assert.equal(w.count, 0);
      assert.equal(w.bytes().length, 0);
    }),
    { numRuns: 300 },
  );
});

test("a batch larger than the first buffer grows it", () => {
  const w = new EventWriter();
  const h: TarEntryHeader = { name: "é".repeat(40000), type: "file", size: 1, mode: 0o644, uid: 0, gid: 0, uname: "", gname: "", mtime: 1, linkname: "", devmajor: 0, devminor: 0, xattrs: {}, pax: { comment: "x".repeat(100000) } };
  w.entry(h);
  w.end("a".repeat(64));
  const got = replay(w.bytes(), true);
  assert.deepStrictEqual(got, [["entry", h], ["end", "a".repeat(64)]]);
});

test("a damaged payload throws instead of replaying garbage", () => {
  const w = new EventWriter();
  w.entry({ name: "a", type: "file", size: 1, mode: 0, uid: 0, gid: 0, uname: "", gname: "", mtime: 0, linkname: "", devmajor: 0, devminor: 0, xattrs: {}, pax: {} });
  const b = w.bytes().slice(0, 40);
  assert.throws(() => replay(b, true));
  assert.throws(() => replay(new Uint8Array([9]), true), /unknown kind 9/);
  assert.throws(() => replay(new Uint8Array([3, 0x61]), true), /truncated/);
});

/** The header as a decoder gives it: optional fields left out when undefined. */
function withoutUndefined(h: TarEntryHeader): TarEntryHeader {
  const o = { ...h } as Record<string, unknown>;
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o as unknown as TarEntryHeader;
}
