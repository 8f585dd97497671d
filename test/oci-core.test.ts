import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { createDigester, createPortableDigester, digestBytes } from "../src/digest/index.ts";
import { digestProblem, validateDescriptor } from "../src/oci/digest.ts";
import { isValidTag } from "../src/oci/refname.ts";
import { Layout } from "../src/oci/layout.ts";
import { isIndexMediaType } from "../src/oci/media-type.ts";
import { parseImageRef } from "../src/oci/refname.ts";
import { OcigenError } from "../src/errors.ts";
import {
  breakLayout,
  makeLayout,
  makeMultiPlatformLayout,
  mkTemp,
  putJSON,
  rmTemp,
  sha256,
  tarFiles,
  toLegacyRefs,
  writeIndex,
} from "../fixtures/layout.ts";
import { hostPlatform } from "../src/oci/platform.ts";

const H64 = "a".repeat(64);

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as OcigenError).code;
  }
  return undefined;
}

async function rejects(p: Promise<unknown>, codeWanted: string, msg?: RegExp | string): Promise<OcigenError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OcigenError, `not an OcigenError: ${e}`);
    assert.equal(e.code, codeWanted, e.message);
    assert.ok(!e.message.includes("\n"), "one line");
    if (typeof msg === "string") assert.equal(e.message, msg);
    else if (msg) assert.match(e.message, msg);
    return e;
  }
  assert.fail(`expected ${codeWanted}`);
}

describe("digest", () => {
  test("known vectors", () => {
    assert.equal(digestBytes(new TextEncoder().encode("abc")), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert.equal(
      digestBytes(new Uint8Array(0), "sha512"),
      "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
    );
  });
  test("node:crypto and hash-wasm agree (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 6 }), fc.constantFrom("sha256", "sha512" as const), async (chunks, alg) => {
        const a = createDigester(alg);
        const b = await createPortableDigester(alg);
        for (const c of chunks) {
          a.update(c);
          b.update(c);
        }
        assert.equal(a.digest(), b.digest());
      }),
      { numRuns: 60 },
    );
  });
});

describe("digest grammar and descriptors", () => {
  test("grammar", () => {
    assert.equal(digestProblem("sha256:" + H64), null);
    assert.equal(digestProblem("sha512:" + "0".repeat(128)), null);
    assert.equal(digestProblem("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"), null);
    assert.notEqual(digestProblem("sha256:" + "A".repeat(64)), null);
    assert.notEqual(digestProblem("sha256:" + "a".repeat(63)), null);
    assert.notEqual(digestProblem("sha512:" + H64), null);
    assert.notEqual(digestProblem("sha256"), null);
    assert.notEqual(digestProblem(":abc"), null);
    assert.notEqual(digestProblem("SHA256:" + H64), null);
    assert.notEqual(digestProblem("sha256:../../etc"), null);
  });
  test("descriptor validation", () => {
    const ok = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: "sha256:" + H64, size: 3 };
    validateDescriptor(ok, "x");
    assert.equal(code(() => validateDescriptor({ ...ok, size: -1 }, "x")), "ESIZE");
    assert.equal(code(() => validateDescriptor({ ...ok, size: 1.5 }, "x")), "ESIZE");
    assert.equal(code(() => validateDescriptor({ ...ok, size: "3" }, "x")), "ESIZE");
    assert.equal(code(() => validateDescriptor({ ...ok, digest: "sha256:xyz" }, "x")), "EDIGEST");
    assert.equal(code(() => validateDescriptor({ ...ok, mediaType: "nope" }, "x")), "EJSON");
    const data = new TextEncoder().encode("{}");
    const good = { mediaType: "application/json", digest: sha256(data), size: 2, data: Buffer.from(data).toString("base64") };
    validateDescriptor(good, "x");
    assert.equal(code(() => validateDescriptor({ ...good, data: "W10=" }, "x")), "EDIGEST");
    assert.equal(code(() => validateDescriptor({ ...good, data: "e31=" }, "x")), "EJSON");
    assert.equal(code(() => validateDescriptor({ ...good, data: "e30" }, "x")), "EJSON");
    assert.equal(code(() => validateDescriptor({ ...good, size: 3 }, "x")), "ESIZE");
  });
  test("tag grammar", () => {
    for (const t of ["latest", "v1.0", "a/b", "a--b", "1.0:rc@x+y", "A_b"]) assert.ok(isValidTag(t), t);
    for (const t of ["", "-a", "a-", "a//b", "/a", "a b", "a.", "ä", "a---b", "a__b"]) assert.ok(!isValidTag(t), t);
  });
  test("image refs", () => {
    assert.deepEqual(parseImageRef("l"), { dir: "l", tag: "latest" });
    assert.deepEqual(parseImageRef("/x/l:v1"), { dir: "/x/l", tag: "v1" });
    assert.ok(isIndexMediaType("application/vnd.oci.image.index.v1+json"));
  });
});

describe("Layout", () => {
  test("init, write, tag, resolve, readBlob, openBlob, pipeBlob", async () => {
    const tmp = mkTemp("ocigen-core-");
    try {
      const dir = join(tmp, "l");
      const l = await Layout.init(dir);
      assert.deepEqual(await l.listTags(), []);
      assert.deepEqual(fs.readdirSync(dir).sort(), ["blobs", "index.json", "oci-layout"]);
      await assert.rejects(Layout.init(dir), /already an OCI layout/);
      const layer = await l.writeBlob(tarFiles([{ name: "a", data: "x" }]), "application/vnd.oci.image.layer.v1.tar");
      const cfg = await l.writeJSON(
        { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [layer.digest] } },
        "application/vnd.oci.image.config.v1+json",
      );
      const m = await l.writeJSON(
        { schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: cfg, layers: [layer] },
        "application/vnd.oci.image.manifest.v1+json",
      );
      await l.setTag("latest", m);
      await l.setTag("v1", m);
      await l.setTag("v1", m);
      assert.deepEqual(await l.listTags(), ["latest", "v1"]);
      const img = await l.resolve("v1");
      assert.equal(img.manifestDescriptor.digest, m.digest);
      assert.equal(img.config.rootfs.diff_ids[0], layer.digest);
      const chunks: Uint8Array[] = [];
      for await (const c of l.openBlob(layer)) chunks.push(c);
      assert.equal(sha256(Buffer.concat(chunks)), layer.digest);
      let n = 0;
      let ended = false;
      await l.pipeBlob(layer, { write: (c) => (n += c.length), end: () => (ended = true) }, 100);
      assert.equal(n, layer.size);
      assert.ok(ended);
      await l.removeTag("latest");
      assert.deepEqual(await l.listTags(), ["v1"]);
      await rejects(l.removeTag("latest"), "ENOTAG", `Cannot remove tag latest in ${dir}: no such tag`);
      await rejects(l.resolve("nope"), "ENOTAG", `Cannot resolve tag nope in ${dir}: no such tag`);
      await rejects(l.resolve("-x"), "EBADTAG");
      await rejects(l.setTag("bad tag", m), "EBADTAG");
      assert.deepEqual(fs.readdirSync(dir).sort(), ["blobs", "index.json", "oci-layout"]);
    } finally {
      rmTemp(tmp);
    }
  });

  test("blob verification errors name the blob", async () => {
    const tmp = mkTemp("ocigen-core-");
    try {
      for (const how of ["wrong-digest", "truncated-blob", "padded-blob", "missing-blob"] as const) {
        const dir = join(tmp, how);
        const fx = makeLayout(dir, [{ tags: ["latest"], layers: [tarFiles([{ name: "f", data: "1" }])] }]);
        breakLayout(fx, how);
        const l = await Layout.open(dir);
        const short = fx.configs[0].digest.slice(0, 19) + "..";
        const want = {
          "wrong-digest": ["EDIGEST", new RegExp(`^${dir}: config ${short}: digest mismatch: content hashes to sha256:`)],
          "truncated-blob": ["ESIZE", `${dir}: config ${short}: blob is truncated: ${fx.configs[0].size - 1} bytes, descriptor says ${fx.configs[0].size}`],
          "padded-blob": ["ESIZE", `${dir}: config ${short}: blob is padded: ${fx.configs[0].size + 1} bytes, descriptor says ${fx.configs[0].size}`],
          "missing-blob": ["ENOBLOB", new RegExp(`^${dir}: config ${short}: blob is missing`)],
        } as const;
        const [c, msg] = want[how];
        await rejects(l.resolve("latest"), c, msg);
        await rejects(l.readBlob(fx.configs[0]), c, msg);
        await rejects(l.verifyBlob(fx.configs[0]), c, msg);
        const s = l.openBlob(fx.configs[0]);
        await rejects((async () => {
          for await (const _ of s) { /* drain */ }
        })(), c, msg);
        let ended = false;
        await rejects(l.pipeBlob(fx.configs[0], { write() {}, end: () => (ended = true) }), c, msg);
        assert.equal(ended, false);
      }
    } finally {
      rmTemp(tmp);
    }
  });

  test("multi-platform tags, nested indexes, ambiguity", async () => {
    const tmp = mkTemp("ocigen-core-");
    try {
      const host = hostPlatform();
      const other = { os: "linux", architecture: host.architecture === "amd64" ? "arm64" : "amd64" };
      for (const nest of [false, true]) {
        const dir = join(tmp, `multi${nest}`);
        const fx = makeMultiPlatformLayout(dir, "latest", [other, host], nest);
        const l = await Layout.open(dir);
        assert.deepEqual(await l.listTags(), ["latest"]);
        const img = await l.resolve("latest");
        assert.equal(img.manifestDescriptor.digest, fx.manifests[1].digest);
        assert.equal(img.config.architecture, host.architecture);
        await rejects(l.resolve("latest", { os: "linux", architecture: "s390x" }), "EAMBIGUOUS",
          `Cannot resolve tag latest in ${dir}: tag is ambiguous (2 manifests, none for linux/s390x)`);
      }
      // Two manifests tagged directly in index.json, no platform on descriptors: configs decide.
      const dir = join(tmp, "flat");
      const fx = makeLayout(dir, [{ platform: other }, { platform: host }]);
      writeIndex(dir, {
        schemaVersion: 2,
        manifests: fx.manifests.map((m) => ({ ...m, annotations: { "org.opencontainers.image.ref.name": "t" } })),
      });
      const l = await Layout.open(dir);
      assert.equal((await l.resolve("t")).manifestDescriptor.digest, fx.manifests[1].digest);
      // Untagged nested index holding tagged manifests.
      const dir2 = join(tmp, "nested-tags");
      const fx2 = makeLayout(dir2, [{}]);
      const inner = putJSON(dir2, {
        schemaVersion: 2,
        manifests: [{ ...fx2.manifests[0], annotations: { "org.opencontainers.image.ref.name": "inner" } }],
      }, "application/vnd.oci.image.index.v1+json");
      writeIndex(dir2, { schemaVersion: 2, manifests: [inner] });
      const l2 = await Layout.open(dir2);
      assert.deepEqual(await l2.listTags(), ["inner"]);
      assert.equal((await l2.resolve("inner")).manifestDescriptor.digest, fx2.manifests[0].digest);
    } finally {
      rmTemp(tmp);
    }
  });

  test("pre-1.0 refs/ directory", async () => {
    const tmp = mkTemp("ocigen-core-");
    try {
      const fx = makeLayout(tmp, [{ tags: ["old", "v2"] }]);
      toLegacyRefs(tmp);
      const l = await Layout.open(tmp);
      assert.deepEqual(await l.listTags(), ["old", "v2"]);
      assert.equal((await l.resolve("old")).manifestDescriptor.digest, fx.manifests[0].digest);
      await l.removeTag("old");
      assert.deepEqual(await l.listTags(), ["v2"]);
    } finally {
      rmTemp(tmp);
    }
  });

  test("embedded data is used and verified", async () => {
    const tmp = mkTemp("ocigen-core-");
    try {
      const l = await Layout.init(join(tmp, "l"));
      const bytes = new TextEncoder().encode('{"a":1}');
      const d = { mediaType: "application/json", digest: sha256(bytes), size: bytes.length, data: Buffer.from(bytes).toString("base64") };
      assert.deepEqual(await l.readJSON(d), { a: 1 });
      await rejects(l.readBlob({ ...d, data: Buffer.from('{"a":2}').toString("base64") }), "EDIGEST");
    } finally {
      rmTemp(tmp);
    }
  });

  test("property: any corruption of a blob is detected (readBlob, pipeBlob, openBlob)", async () => {
    const tmp = mkTemp("ocigen-core-");
    try {
      const l = await Layout.init(join(tmp, "l"));
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 5000 }), fc.nat(), fc.integer({ min: 1, max: 255 }), fc.constantFrom("flip", "cut", "pad"), async (data, pos, x, how) => {
          const d = await l.writeBlob(data, "application/octet-stream");
          assert.deepEqual(await l.readBlob(d), data);
          const p = l.blobPath(d.digest);
          const bad = new Uint8Array(fs.readFileSync(p));
          const i = pos % bad.length;
          let damaged: Uint8Array = bad;
          if (how === "flip") bad[i] ^= x;
          else if (how === "cut") damaged = bad.subarray(0, i);
          else damaged = Buffer.concat([bad, new Uint8Array(x)]);
          fs.writeFileSync(p, damaged);
          const want = how === "flip" ? "EDIGEST" : "ESIZE";
          await rejects(l.readBlob(d), want);
          await rejects(l.pipeBlob(d, { write() {}, end() {} }, 64), want);
          await rejects((async () => {
            for await (const _ of l.openBlob(d)) { /* drain */ }
          })(), want);
          fs.rmSync(p);
        }),
        { numRuns: 80 },
      );
    } finally {
      rmTemp(tmp);
    }
  });

  test("open errors", async () => {
    const tmp = mkTemp("ocigen-core-");
    try {
      await rejects(Layout.open(join(tmp, "none")), "ENOLAYOUT", `${join(tmp, "none")}: not an OCI image layout (no oci-layout file)`);
      fs.writeFileSync(join(tmp, "oci-layout"), "{nope");
      await rejects(Layout.open(tmp), "ENOLAYOUT", /oci-layout: broken JSON/);
      fs.writeFileSync(join(tmp, "oci-layout"), '{"imageLayoutVersion":"2.0.0"}');
      await rejects(Layout.open(tmp), "ENOLAYOUT", /unsupported imageLayoutVersion "2.0.0"/);
    } finally {
      rmTemp(tmp);
    }
  });
});

test("stat prints times as umoci (Go's RFC3339Nano) does: no trailing zeros in the fraction", async () => {
  const { rfc3339Nano } = await import("../src/oci/stat.ts");
  assert.equal(rfc3339Nano("2026-11-23T17:28:42.450Z"), "2026-11-23T17:28:42.45Z");
  assert.equal(rfc3339Nano("2026-11-23T17:28:42.400416319Z"), "2026-11-23T17:28:42.400416319Z");
  assert.equal(rfc3339Nano("2026-11-23T17:28:42.000+02:00"), "2026-11-23T17:28:42+02:00");
  assert.equal(rfc3339Nano("2026-11-23T17:28:42Z"), "2026-11-23T17:28:42Z");
  assert.equal(rfc3339Nano("yesterday"), "yesterday");
});
