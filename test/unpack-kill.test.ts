// `kill -9` of `ocigen unpack` at random moments never leaves anything under
// the target name: the bundle appears complete or not at all. Uses the built
// CLI (dist/ocigen.mjs, from `npm run build`; built here if missing).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { makeImage, tmpdir } from "./layer-fixtures.ts";
import type { TarWriterEntry } from "../src/tar/writer.ts";

const repo = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const cli = path.join(repo, "dist", "ocigen.mjs");
// the CLI runs on Node (`node dist/ocigen.mjs`), also when the tests run under Deno
const nodeBin = (process.versions as Record<string, string | undefined>).deno ? "node" : process.execPath;

function ensureBuilt(): void {
  if (fs.existsSync(cli)) return;
  const r = spawnSync(nodeBin, [path.join(repo, ".ci", "build.mjs")], { cwd: repo, stdio: "inherit" });
  assert.equal(r.status, 0, "npm run build failed");
}

function bigImage(dir: string): number {
  const layers: TarWriterEntry[][] = [];
  let files = 0;
  for (let l = 0; l < 3; l++) {
    const es: TarWriterEntry[] = [];
    for (let d = 0; d < 20; d++) {
      es.push({ name: `l${l}/d${d}/`, type: "dir", mode: 0o755 });
      for (let f = 0; f < 40; f++) {
        es.push({ name: `l${l}/d${d}/f${f}`, data: `layer ${l} dir ${d} file ${f}\n`.repeat(1 + ((f * 37) % 200)) });
        files++;
      }
    }
    es.push({ name: `l${l}/big`, data: new Uint8Array(1 << 20).fill(l + 1) });
    layers.push(es);
  }
  makeImage(path.join(dir, "layout"), layers.map((entries) => ({ entries })));
  return files;
}

function run(args: string[]): { child: ReturnType<typeof spawn>; done: Promise<number | null> } {
  const child = spawn(nodeBin, [cli, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr!.resume();
  const done = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, done };
}

test("kill -9 at random moments never leaves a partial bundle under the target name", { timeout: 120000 }, async () => {
  ensureBuilt();
  const dir = tmpdir("ocigen-kill-");
  try {
    bigImage(dir);
    const image = path.join(dir, "layout") + ":latest";
    // one full run to learn how long an unpack takes here
    const t0 = Date.now();
    const full = run(["unpack", "--image", image, path.join(dir, "ref")]);
    assert.equal(await full.done, 0, "a full unpack must succeed");
    let duration = Date.now() - t0;
    const refFiles = fs.readdirSync(path.join(dir, "ref")).sort();
    let killed = 0;
    let firstKilled = -1;
    let completed = 0;
    for (let i = 0; killed < 20 && i < 60; i++) {
      const target = path.join(dir, `b${i}`);
      const p = run(["unpack", "--image", image, target]);
      const delay = Math.floor(Math.random() * duration);
      const started = Date.now();
      const timer = setTimeout(() => p.child.kill("SIGKILL"), delay);
      const code = await p.done;
      clearTimeout(timer);
      if (code === 0 || fs.existsSync(target)) {
        // finished (possibly killed between the rename and the exit): the bundle must be whole
        completed++;
        if (code === 0) duration = Math.min(duration, Date.now() - started);
        assert.deepEqual(fs.readdirSync(target).sort(), refFiles, `attempt ${i}: a published bundle is whole`);
        assert.equal(fs.readdirSync(path.join(target, "rootfs")).length, 3);
        JSON.parse(fs.readFileSync(path.join(target, "config.json"), "utf8"));
      } else {
        killed++;
        if (firstKilled < 0 && fs.readdirSync(dir).some((n) => n.startsWith(`.b${i}.tmp-`))) firstKilled = i;
        assert.equal(fs.existsSync(target), false, `attempt ${i} (killed after ${delay} ms) left ${target}`);
      }
      // whatever happened, nothing else appears beside the target but our temp dir
      for (const n of fs.readdirSync(dir)) {
        assert.ok(n === "layout" || n === "ref" || /^b[0-9]+$/.test(n) || /^\.b[0-9]+\.tmp-[0-9]+-[0-9a-f]{8}$/.test(n), `unexpected ${n}`);
      }
    }
    assert.ok(killed >= 20, `only ${killed} runs were killed (${completed} completed)`);
    process.stderr.write(`# kill test: full unpack ${duration} ms, ${killed} killed, ${completed} completed\n`);
    // a later unpack to the same target removes the dead run's temp tree
    if (firstKilled >= 0) {
      const last = run(["unpack", "--image", image, path.join(dir, `b${firstKilled}`)]);
      assert.equal(await last.done, 0);
      assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith(`.b${firstKilled}.tmp-`)), []);
      assert.deepEqual(fs.readdirSync(path.join(dir, `b${firstKilled}`)).sort(), refFiles);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
