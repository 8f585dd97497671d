// Security review: an OCI layout directory is untrusted input too. Its blobs/
// tree may hold symlinks that point anywhere; reading through them is harmless
// (every blob is verified), but gc must never delete, and writing a blob must
// never create, anything outside the layout.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { OcigenError } from "../src/errors.ts";
import { Layout } from "../src/oci/layout.ts";
import { gcLayout } from "../src/oci/gc.ts";
import { makeImage, plantCanary, tmpdir } from "./layer-fixtures.ts";

function setup(): { dir: string; layout: string; outside: string; canary: ReturnType<typeof plantCanary>; names: string[]; cleanup(): void } {
  const dir = tmpdir("ocigen-sec-layout-");
  const canary = plantCanary(dir);
  const layout = makeImage(path.join(dir, "layout"), [{ entries: [{ name: "f", data: "x" }] }]);
  // a host directory full of files whose names are valid digest encodings
  const outside = path.join(dir, "hostdir");
  fs.mkdirSync(outside);
  const names = ["passwd", "shadow", "a".repeat(64), "sudoers"];
  for (const n of names) fs.writeFileSync(path.join(outside, n), "host file\n");
  return { dir, layout, outside, canary, names, cleanup: () => void spawnSync("rm", ["-rf", "--", dir]) };
}

test("gc never deletes through a symlinked blobs/<alg> directory (unknown algorithm names too)", async () => {
  const s = setup();
  try {
    fs.symlinkSync(s.outside, path.join(s.layout, "blobs", "x"));
    fs.symlinkSync(s.outside, path.join(s.layout, "blobs", "sha512"));
    fs.symlinkSync(s.canary.dir, path.join(s.layout, "blobs", "y"));
    const r = await gcLayout(await Layout.open(s.layout));
    for (const n of s.names) assert.ok(fs.existsSync(path.join(s.outside, n)), `host file ${n} deleted`);
    assert.ok(r.removed.every((d) => d.startsWith("sha256:")), r.removed.join(","));
    s.canary.check();
  } finally {
    s.cleanup();
  }
});

test("gc never deletes through a symlinked blobs directory", async () => {
  const s = setup();
  try {
    fs.mkdirSync(path.join(s.outside, "sha256"));
    fs.writeFileSync(path.join(s.outside, "sha256", "b".repeat(64)), "host file\n");
    // the layout stays valid through the link: its blobs are there too
    for (const n of fs.readdirSync(path.join(s.layout, "blobs", "sha256"))) {
      fs.copyFileSync(path.join(s.layout, "blobs", "sha256", n), path.join(s.outside, "sha256", n));
    }
    fs.renameSync(path.join(s.layout, "blobs"), path.join(s.dir, "realblobs"));
    fs.symlinkSync(s.outside, path.join(s.layout, "blobs"));
    await gcLayout(await Layout.open(s.layout)).catch((e) => assert.ok(e instanceof OcigenError, String(e)));
    assert.ok(fs.existsSync(path.join(s.outside, "sha256", "b".repeat(64))));
    for (const n of s.names) assert.ok(fs.existsSync(path.join(s.outside, n)));
  } finally {
    s.cleanup();
  }
});

test("writing a blob into a layout whose blobs/sha256 is a symlink creates nothing outside", async () => {
  const s = setup();
  try {
    const empty = path.join(s.dir, "empty");
    fs.mkdirSync(empty);
    fs.renameSync(path.join(s.layout, "blobs", "sha256"), path.join(s.dir, "realsha"));
    fs.symlinkSync(empty, path.join(s.layout, "blobs", "sha256"));
    const layout = await Layout.open(s.layout);
    await assert.rejects(layout.writeBlob(new TextEncoder().encode("{}"), "application/json"), (e: Error) => e instanceof OcigenError && !e.message.includes("\n"));
    assert.deepEqual(fs.readdirSync(empty), []);
  } finally {
    s.cleanup();
  }
});
