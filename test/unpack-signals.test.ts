// Ctrl-C and friends: SIGINT, SIGTERM or SIGHUP sent to `ocigen unpack` while
// it writes a large image end the process promptly and leave no temporary
// tree behind (before: the half-written tree stayed forever). A run killed
// with SIGKILL cannot clean up; the next run in that directory removes its
// tree. Runs the CLI from source as a child process.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { cliCommand, ROOT } from "./oci-helpers.ts";
import { makeImage, tmpdir } from "./layer-fixtures.ts";
import type { TarWriterEntry } from "../src/tar/writer.ts";

/** 8 layers x 1500 files x 8 KiB: long enough to be interrupted in the middle. */
function bigImage(dir: string): string {
  const layers: { entries: TarWriterEntry[] }[] = [];
  for (let l = 0; l < 8; l++) {
    const entries: TarWriterEntry[] = [];
    for (let d = 0; d < 15; d++) {
      entries.push({ name: `l${l}/d${d}/`, type: "dir", mode: 0o755 });
      for (let f = 0; f < 100; f++) entries.push({ name: `l${l}/d${d}/f${f}`, data: `${l}/${d}/${f} `.repeat(1000).slice(0, 8192) });
    }
    layers.push({ entries });
  }
  return makeImage(path.join(dir, "layout"), layers);
}

function start(args: string[]) {
  const [cmd, pre] = cliCommand();
  const child = spawn(cmd, [...pre, ...args], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stderr })));
  return { child, done };
}

const temps = (dir: string) => fs.readdirSync(dir).filter((n) => n.includes(".tmp-"));

/** Waits until a temporary tree of the run exists and holds some files of the image. */
async function waitMidway(dir: string, limitMs = 60000): Promise<string> {
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    for (const t of temps(dir)) {
      const root = [path.join(dir, t, "rootfs", "l0"), path.join(dir, t, "l0")].find((p) => fs.existsSync(p));
      if (root && fs.readdirSync(root).length > 0) return t;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("the unpack never got going");
}

const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

test("SIGINT, SIGTERM and SIGHUP during unpack and raw unpack: prompt exit, no temporary tree left", { timeout: 300000 }, async () => {
  const dir = tmpdir("ocigen-signals-");
  try {
    const layout = bigImage(dir);
    const out = path.join(dir, "out");
    fs.mkdirSync(out);
    let i = 0;
    for (const [sig, n] of Object.entries(SIGNALS) as [keyof typeof SIGNALS, number][]) {
      for (const verb of [["unpack"], ["raw", "unpack"]]) {
        const target = path.join(out, `t${i++}`);
        const p = start([...verb, "--image", `${layout}:latest`, target]);
        const tmp = await waitMidway(out);
        const t0 = Date.now();
        p.child.kill(sig);
        const r = await p.done;
        const ms = Date.now() - t0;
        assert.ok(r.signal === sig || r.code === 128 + n, `${verb.join(" ")} ${sig}: exit ${r.code} signal ${r.signal}: ${r.stderr}`);
        assert.ok(ms < 30000, `${sig}: took ${ms} ms to exit`);
        assert.deepEqual(temps(out), [], `${sig} left ${tmp}`);
        assert.equal(fs.existsSync(target), false, `${sig}: a partial target was published`);
        process.stderr.write(`# ${verb.join(" ")} ${sig}: exited ${ms} ms after the signal, nothing left\n`);
      }
    }
  } finally {
    spawnSync("rm", ["-rf", "--", dir]);
  }
});

test("kill -9 during unpack: the next run in that directory removes the dead run's tree", { timeout: 300000 }, async () => {
  const dir = tmpdir("ocigen-signals-");
  try {
    const layout = bigImage(dir);
    const out = path.join(dir, "out");
    fs.mkdirSync(out);
    const p = start(["unpack", "--image", `${layout}:latest`, path.join(out, "a")]);
    const tmp = await waitMidway(out);
    p.child.kill("SIGKILL");
    const r = await p.done;
    assert.equal(r.signal, "SIGKILL");
    assert.deepEqual(temps(out), [tmp], "SIGKILL cannot clean up");
    // 0700: the dead run's half-written tree was never open to other users
    assert.equal(fs.statSync(path.join(out, tmp)).mode & 0o777, 0o700);
    // another target in the same directory
    const next = start(["unpack", "--image", `${layout}:latest`, path.join(out, "b")]);
    const r2 = await next.done;
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(temps(out), []);
    assert.deepEqual(fs.readdirSync(out).sort(), ["b"]);
    assert.equal(fs.statSync(path.join(out, "b")).mode & 0o777, 0o700, "a bundle is 0700");
    assert.equal(fs.statSync(path.join(out, "b", "rootfs")).mode & 0o777, 0o755);
  } finally {
    spawnSync("rm", ["-rf", "--", dir]);
  }
});
