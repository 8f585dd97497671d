// Hash objects made one per file: noteHashObject runs a full collection every
// HASH_OBJECTS_PER_GC objects when the runtime exposes gc (the Deno launcher
// flags do), and nothing otherwise; under Deno started with those flags,
// 150k node:crypto hashes keep the resident memory bounded.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { HASH_OBJECTS_PER_GC, noteHashObject } from "../src/digest/release.ts";
import { DENO_V8_FLAGS } from "../src/install/self.ts";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

test("a full collection once per HASH_OBJECTS_PER_GC hash objects, only where gc is exposed", () => {
  const exposed = typeof (globalThis as { gc?: unknown }).gc === "function";
  let collected = 0;
  for (let i = 0; i < 2 * HASH_OBJECTS_PER_GC; i++) if (noteHashObject()) collected++;
  assert.equal(collected, exposed ? 2 : 0);
});

const deno = path.join(repo, "node_modules/.bin/deno");
const denoWhy = fs.existsSync(deno) ? undefined : "deno not installed (node_modules/.bin/deno: npm ci installs it)";
if (denoWhy && process.env.CI) throw new Error(`hash-release test cannot run in CI: ${denoWhy}`);

test("Deno with the launcher flags: 150k hash objects stay within a bounded resident size", { skip: denoWhy, timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-hash-release-"));
  try {
    const script = path.join(dir, "hashes.mjs");
    fs.writeFileSync(
      script,
      `import { createHash } from "node:crypto";
import fs from "node:fs";
import { noteHashObject } from ${JSON.stringify(pathToFileURL(path.join(repo, "src/digest/release.ts")).href)};
const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(fs.readFileSync("/proc/self/status", "utf8"))[1]) / 1024;
const buf = new Uint8Array(4096);
let collected = 0;
const before = rss();
let peak = before;
for (let i = 0; i < 150000; i++) {
  createHash("sha256").update(buf).digest("hex");
  if (noteHashObject()) collected++;
  if (i % 5000 === 0) peak = Math.max(peak, rss());
}
console.log(JSON.stringify({ collected, grewMiB: Math.max(peak, rss()) - before }));
`,
    );
    const r = spawnSync(deno, ["run", ...DENO_V8_FLAGS, "-A", script], { encoding: "utf8", cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as { collected: number; grewMiB: number };
    assert.equal(out.collected, Math.floor(150000 / HASH_OBJECTS_PER_GC), "gc not exposed by DENO_V8_FLAGS");
    // measured on Deno 2.9: ~14 MiB (mostly the young generation), ~42 MiB without the collections
    assert.ok(out.grewMiB < 25, `resident size grew by ${out.grewMiB.toFixed(1)} MiB`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
