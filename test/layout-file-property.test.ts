// Properties of the bounded layout-file readers (src/oci/layout-file.ts) and of
// the blob readers built on them: any content up to the cap round-trips, a
// file over the cap fails with the "too large" error naming it, and anything
// but a regular file inside the layout is refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { OcigenError } from "../src/errors.ts";
import { LayoutRoot, openLayoutFile, readLayoutFile } from "../src/oci/layout-file.ts";
import { Layout } from "../src/oci/layout.ts";
import { tmpdir } from "./layer-fixtures.ts";

function withLayoutDir(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = tmpdir("ocigen-lfprop-");
    try {
      fs.mkdirSync(path.join(dir, "l", "blobs", "sha256"), { recursive: true });
      await fn(path.join(dir, "l"));
    } finally {
      spawnSync("rm", ["-rf", "--", dir]);
    }
  };
}

test("readLayoutFile: content up to the cap round-trips; over the cap is 'too large' naming the file", withLayoutDir((dir) => {
  let n = 0;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: 0, max: 3000 }), (bytes, cap) => {
      const rel = `f${n++}`;
      fs.writeFileSync(path.join(dir, rel), bytes);
      const root = new LayoutRoot(dir);
      const what = path.join(dir, rel);
      if (bytes.length <= cap) {
        assert.deepEqual(readLayoutFile(root, rel, what, cap), bytes);
      } else {
        assert.throws(() => readLayoutFile(root, rel, what, cap), (e: unknown) =>
          e instanceof OcigenError && e.code === "ESIZE" &&
          e.message === `${what}: too large (${bytes.length} bytes, the limit is ${cap})`);
      }
      fs.rmSync(path.join(dir, rel));
    }),
    { numRuns: 300 },
  );
}));

test("openLayoutFile: FIFOs, directories, device links, loops and symlinks out of the layout are always refused", withLayoutDir((dir) => {
  const outside = path.join(path.dirname(dir), "outside");
  fs.writeFileSync(outside, "host file");
  const kinds = ["fifo", "dir", "link-out", "link-dev", "link-dir-out", "dangling", "loop"] as const;
  let n = 0;
  fc.assert(
    fc.property(fc.constantFrom(...kinds), fc.constantFrom("", "blobs/sha256/", "refs/a/"), fc.integer({ min: 0, max: 1 << 30 }), (kind, sub, cap) => {
      const rel = `${sub}x${n++}`;
      const p = path.join(dir, rel);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      if (kind === "fifo") spawnSync("mkfifo", [p]);
      else if (kind === "dir") fs.mkdirSync(p);
      else if (kind === "link-out") fs.symlinkSync(outside, p);
      else if (kind === "link-dev") fs.symlinkSync("/dev/null", p);
      else if (kind === "link-dir-out") fs.symlinkSync(path.join(path.dirname(dir), "outside", "..", "outside"), p);
      else if (kind === "dangling") fs.symlinkSync("nowhere", p);
      else {
        fs.symlinkSync(path.basename(p) + "b", p);
        fs.symlinkSync(path.basename(p), p + "b");
      }
      const t0 = Date.now();
      assert.throws(() => fs.closeSync(openLayoutFile(new LayoutRoot(dir), rel, `file ${rel}`, cap).fd), (e: unknown) => {
        if (kind === "dangling") return (e as NodeJS.ErrnoException).code === "ENOENT"; // missing: the caller's "missing" message
        return e instanceof OcigenError && e.code === "EBADFILE" && e.message.startsWith(`file ${rel}: `) && !e.message.includes("\n");
      });
      assert.ok(Date.now() - t0 < 2000);
    }),
    { numRuns: 200 },
  );
}));

test("Layout blob readers: any blob round-trips through readBlob, pipeBlob and openBlob; a wrong size is refused before reading", withLayoutDir(async (dir) => {
  fs.writeFileSync(path.join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(path.join(dir, "index.json"), '{"schemaVersion":2,"manifests":[]}');
  const layout = await Layout.open(dir);
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 5000 }), fc.integer({ min: 1, max: 700 }), fc.integer({ min: -3, max: 3 }), async (bytes, chunk, skew) => {
      const digest = "sha256:" + createHash("sha256").update(bytes).digest("hex");
      fs.writeFileSync(path.join(dir, "blobs", "sha256", digest.slice(7)), bytes);
      const size = bytes.length + skew;
      if (size < 0) return;
      const desc = { mediaType: "application/octet-stream", digest, size };
      if (skew === 0) {
        assert.deepEqual(await layout.readBlob(desc), bytes);
        const got: number[] = [];
        await layout.pipeBlob(desc, { write: (c) => got.push(...c), end() {} }, chunk);
        assert.deepEqual(Uint8Array.from(got), bytes);
        const parts: Uint8Array[] = [];
        for await (const c of layout.openBlob(desc)) parts.push(c);
        assert.deepEqual(new Uint8Array(Buffer.concat(parts)), bytes);
      } else {
        const how = skew < 0 ? "padded" : "truncated";
        const msg = `blob is ${how}: ${bytes.length} bytes, descriptor says ${size}`;
        const check = (e: unknown) => e instanceof OcigenError && e.code === "ESIZE" && e.message.endsWith(msg);
        await assert.rejects(layout.readBlob(desc), check);
        await assert.rejects(layout.pipeBlob(desc, { write() {}, end() {} }, chunk), check);
      }
    }),
    { numRuns: 150 },
  );
}));

test("a layout named by a relative path (./l, ../x/l) or with a trailing slash reads its blobs", withLayoutDir(async (dir) => {
  fs.writeFileSync(path.join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(path.join(dir, "index.json"), '{"schemaVersion":2,"manifests":[]}');
  const bytes = new TextEncoder().encode("blob");
  const digest = "sha256:" + createHash("sha256").update(bytes).digest("hex");
  fs.writeFileSync(path.join(dir, "blobs", "sha256", digest.slice(7)), bytes);
  const rel = path.relative(process.cwd(), dir);
  for (const name of [rel, `./${rel}`, `${rel}/`, dir + "/", dir]) {
    const layout = await Layout.open(name);
    assert.deepEqual(await layout.readBlob({ mediaType: "application/octet-stream", digest, size: 4 }), bytes, name);
    assert.deepEqual((await layout.readIndex()).manifests, [], name);
  }
}));
