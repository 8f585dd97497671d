// Property tests: random (adversarial) tar streams applied to a root never
// touch anything outside it and never throw anything but OcigenError.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { OcigenError } from "../src/errors.ts";
import { ApplyState, LayerApplier } from "../src/layer/apply.ts";
import { TarParser } from "../src/tar/parser.ts";
import { TarKernelParser } from "../src/tar/kernel.ts";
import { type TarWriterEntry, tarBytes } from "../src/tar/writer.ts";
import { createDecoder } from "../src/layer/decoder.ts";
import { compress, plantCanary, tmpdir } from "./layer-fixtures.ts";

const ROOT = typeof process.getuid === "function" && process.getuid() === 0;

function arbitraries(outsideDir: string) {
  const comp = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom("a", "b", "canary") },
    { weight: 3, arbitrary: fc.constantFrom("..", ".", "", "outside") },
    { weight: 2, arbitrary: fc.constantFrom(".wh.a", ".wh.b", ".wh.canary", ".wh..wh..opq") },
    { weight: 1, arbitrary: fc.constantFrom(".wh.", ".wh..", ".wh...", "x".repeat(120)) },
  );
  const name = fc.array(comp, { minLength: 1, maxLength: 3 }).chain((cs) =>
    fc.constantFrom("", "", "", "/", "./", "../../").map((p) => p + cs.join("/"))
  );
  const link = fc.oneof(
    name,
    fc.constantFrom(outsideDir, outsideDir, outsideDir + "/canary", outsideDir + "/canary", outsideDir, outsideDir + "/canary", "/", "..", "../../..", "a", "a/b", "/proc/self/root", path.dirname(outsideDir)),
  );
  const type = fc.constantFrom("file", "file", "dir", "symlink", "symlink", "link", "fifo", "char", "other") as fc.Arbitrary<TarWriterEntry["type"]>;
  const entry = fc.record({
    name,
    type,
    linkname: link,
    mode: fc.constantFrom(0o644, 0o755, 0o000, 0o4755, 0o1777, 0o7777),
    data: fc.constantFrom("", "data", "pwned"),
    uid: fc.constantFrom(0, 1, 65534),
    xattr: fc.boolean(),
  }).map((r): TarWriterEntry => ({
    name: r.name,
    type: r.type,
    typeflag: r.type === "other" ? "Q" : undefined,
    linkname: r.linkname,
    mode: r.mode,
    data: r.type === "file" || r.type === "other" ? r.data : undefined,
    uid: r.uid,
    gid: r.uid,
    devmajor: 1,
    devminor: 3,
    xattrs: r.xattr ? { "user.p": "1", "trusted.t": "2" } : undefined,
  }));
  return fc.array(fc.array(entry, { minLength: 1, maxLength: 16 }), { minLength: 1, maxLength: 3 });
}

function check(dir: string, canary: ReturnType<typeof plantCanary>, roots: Set<string>): void {
  canary.check();
  const names = fs.readdirSync(dir).sort();
  for (const n of names) assert.ok(n === "outside" || roots.has(n), `unexpected ${n} beside the roots`);
}

test("random layers never escape the root and only throw OcigenError", () => {
  const dir = tmpdir("ocigen-prop-");
  const canary = plantCanary(dir);
  const roots = new Set<string>();
  let n = 0;
  try {
    fc.assert(
      fc.property(arbitraries(canary.dir), fc.boolean(), (layers, rootless) => {
        const rootName = `r${n++}`;
        roots.add(rootName);
        const root = path.join(dir, rootName);
        fs.mkdirSync(root);
        const state = new ApplyState(root, { rootless: rootless || !ROOT });
        try {
          for (const [i, entries] of layers.entries()) {
            // every other run reads the layers with the WebAssembly tar kernel
            const applier = new LayerApplier(state, `layer ${i}`);
            const p = n % 2 ? new TarKernelParser(applier, { context: `layer ${i}` }) : new TarParser(applier, { context: `layer ${i}` });
            p.write(tarBytes(entries));
            p.end();
          }
        } catch (e) {
          if (!(e instanceof OcigenError)) throw new Error(`non-OcigenError thrown: ${(e as Error)?.stack ?? e}`);
          assert.ok(!e.message.includes("\n"));
        }
        check(dir, canary, roots);
        fs.rmSync(root, { recursive: true, force: true });
      }),
      {
        numRuns: 250,
        seed: 20261123,
        examples: [
          // known attack shapes, always tried first
          [[[{ name: "canary", type: "symlink", linkname: canary.path }, { name: "canary", data: "pwned", mode: 0o777 }]], false],
          [[[{ name: "o", type: "symlink", linkname: canary.dir }], [{ name: "o/canary", data: "" }, { name: "o/.wh.canary" }, { name: "o/.wh..wh..opq" }]], false],
          [[[{ name: "s", type: "symlink", linkname: canary.path }, { name: "h", type: "link", linkname: "s" }], [{ name: "h", type: "dir", mode: 0o777 }]], true],
        ],
      },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("corrupted layer streams (bit flips, truncation) only throw OcigenError", () => {
  const dir = tmpdir("ocigen-prop-");
  const canary = plantCanary(dir);
  const roots = new Set<string>();
  const base = tarBytes([
    { name: "d/", type: "dir" },
    { name: "d/f", data: "hello world ".repeat(50) },
    { name: "s", type: "symlink", linkname: canary.dir },
    { name: "l".repeat(150), data: "long" },
    { name: "x", data: "x", xattrs: { "user.a": "b" } },
    { name: "sp", data: new Uint8Array(3000).fill(1, 1000, 1100), sparse: [{ offset: 1000, size: 100 }, { offset: 3000, size: 0 }] },
  ]);
  const gz = compress(base, "gzip");
  let n = 0;
  try {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 0, maxLength: 4 }),
        fc.option(fc.nat()),
        (useGzip, flips, cut) => {
          let b = (useGzip ? gz : base).slice();
          for (const f of flips) b[f.at % b.length] ^= f.xor;
          if (cut !== null) b = b.subarray(0, cut % (b.length + 1));
          const rootName = `r${n++}`;
          roots.add(rootName);
          const root = path.join(dir, rootName);
          fs.mkdirSync(root);
          const state = new ApplyState(root, { rootless: !ROOT });
          try {
            const applier = new LayerApplier(state, "layer");
            const p = n % 2 ? new TarKernelParser(applier, { context: "layer" }) : new TarParser(applier, { context: "layer" });
            const d = createDecoder(useGzip ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.layer.v1.tar", p, "layer");
            for (let o = 0; o < b.length; o += 700) d.write(b.subarray(o, o + 700));
            d.end();
          } catch (e) {
            if (!(e instanceof OcigenError)) throw new Error(`non-OcigenError thrown: ${(e as Error)?.stack ?? e}`);
          }
          check(dir, canary, roots);
          fs.rmSync(root, { recursive: true, force: true });
        },
      ),
      { numRuns: 200, seed: 42 },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
