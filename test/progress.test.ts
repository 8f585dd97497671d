// The progress line: drawn on a TTY only, rate-limited, erased at the end;
// never a byte of it in pipes or with --quiet.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { makeLayout, tarFiles } from "../fixtures/layout.ts";
import { clearLine, formatBytes, layerProgress, formatDuration, type ProgressStream, start, withProgress } from "../src/progress.ts";
import { have } from "../src/util/which.ts";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const nodeBin = isDeno ? "node" : process.execPath;

/** A fake terminal: records writes, and a clock we move by hand. */
function fakeTty(columns = 120) {
  const writes: string[] = [];
  let t = 1000;
  const stream: ProgressStream = { isTTY: true, columns, write: (s: string) => writes.push(s) };
  return { stream, writes, now: () => t, tick: (ms: number) => (t += ms) };
}

/** What a terminal would show last: the text after the last carriage return. */
function screen(writes: string[]): string {
  const all = writes.join("");
  return all.slice(all.lastIndexOf("\r") + 1).replace("\x1b[K", "");
}

describe("progress reporter", () => {
  test("draws nothing before the first interval, then at most 10 times a second", () => {
    const f = fakeTty();
    const p = start("unpack", { enabled: true, stream: f.stream, now: f.now, total: 4 << 20, layers: 2 });
    p.update({ layerIndex: 0, layer: "sha256:" + "ab".repeat(32) });
    p.add(1 << 20, 10);
    assert.equal(f.writes.length, 0, "nothing in the first 100 ms (quick work prints nothing)");
    f.tick(100);
    p.add(1 << 20, 10);
    assert.equal(f.writes.length, 1);
    for (let i = 0; i < 50; i++) {
      f.tick(1);
      p.add(1, 0);
    }
    assert.equal(f.writes.length, 1, "rate-limited to one draw per 100 ms");
    f.tick(60);
    p.update({ entries: 25 });
    assert.equal(f.writes.length, 2);
    const s = screen(f.writes);
    assert.match(s, /^unpack  layer 1\/2 sha256:abababababab  2\.0 MiB\/4\.0 MiB 50%  25 entries  [0-9.]+ MiB\/s  ETA 0:0\d$/);
    assert.ok(f.writes.every((w) => w.startsWith("\r") && w.endsWith("\x1b[K")), "each draw rewrites one line");
    assert.ok(f.writes.every((w) => !w.includes("\n")), "never a newline");
    p.done();
    assert.equal(f.writes.at(-1), "\r\x1b[K", "erased at the end");
    p.done(); // idempotent
    p.add(5);
    assert.equal(f.writes.at(-1), "\r\x1b[K");
  });

  test("nested reporters share the line; items done/total and ETA", () => {
    const f = fakeTty();
    const outer = start("bench", { enabled: true, stream: f.stream, now: f.now, items: 4 });
    f.tick(500);
    outer.itemDone();
    const inner = start("unpack", { enabled: true, stream: f.stream, now: f.now });
    f.tick(150);
    inner.add(1536, 3);
    assert.match(screen(f.writes), /^bench  1\/4  ETA 0:0\d › unpack  1\.5 KiB  3 entries/);
    inner.done();
    assert.notEqual(f.writes.at(-1), "\r\x1b[K", "line stays while the outer reporter runs");
    outer.done();
    assert.equal(f.writes.at(-1), "\r\x1b[K");
  });

  test("clearLine erases a drawn line; the next update redraws", () => {
    const f = fakeTty();
    const p = start("repack", { enabled: true, stream: f.stream, now: f.now });
    clearLine();
    assert.deepEqual(f.writes, [], "nothing drawn, nothing to erase");
    f.tick(150);
    p.add(10, 1);
    assert.equal(f.writes.length, 1);
    clearLine();
    assert.equal(f.writes.at(-1), "\r\x1b[K");
    p.add(10, 1);
    assert.match(f.writes.at(-1)!, /^\rrepack  20 B  2 entries/);
    p.done();
    assert.equal(f.writes.at(-1), "\r\x1b[K");
  });

  test("layerProgress: callbacks for the unpack engine's options", () => {
    const f = fakeTty();
    const lp = layerProgress("unpack", { enabled: true, stream: f.stream, now: f.now });
    lp.onLayer(1, 2, { digest: "sha256:" + "cd".repeat(32) });
    lp.onBytes(2048);
    lp.onEntry();
    f.tick(150);
    lp.onLayer(2, 2, { digest: "sha256:" + "ef".repeat(32) });
    assert.match(screen(f.writes), /^unpack  layer 2\/2 sha256:efefefefefef  2\.0 KiB  1 entry/);
    lp.done();
    assert.equal(f.writes.at(-1), "\r\x1b[K");
  });

  test("the line never exceeds the terminal width; detail goes before the numbers", () => {
    const f = fakeTty(40);
    const p = start("unpack", { enabled: true, stream: f.stream, now: f.now, total: 1e12, layers: 99 });
    f.tick(200);
    p.update({ layerIndex: 97, layer: "a-very-long-layer-name-".repeat(5), bytes: 123456789, entries: 999999, note: "x".repeat(50) });
    const s = screen(f.writes);
    assert.ok(s.length <= 39, `${s.length}: ${s}`);
    assert.match(s, /118 MiB\/931 GiB 0%/, "the byte count stays on screen");
    p.done();
    // nested reporters that cannot fit even without detail: the end is cut
    const g = fakeTty(20);
    const outer = start("a-long-task-name", { enabled: true, stream: g.stream, now: g.now, items: 9 });
    const inner = start("another-long-task-name", { enabled: true, stream: g.stream, now: g.now });
    g.tick(200);
    inner.add(10);
    const t = screen(g.writes);
    assert.ok(t.length <= 20 && t.endsWith("…"), t);
    inner.done();
    outer.done();
  });

  test("a narrow terminal: the digest is shortened, then dropped; bytes and percent stay", () => {
    const digest = "sha256:" + "ab".repeat(32);
    const at = (columns: number) => {
      const f = fakeTty(columns);
      const p = start("unpack", { enabled: true, stream: f.stream, now: f.now, total: 4 << 20, layers: 2 });
      f.tick(300);
      p.update({ layerIndex: 0, layer: digest, bytes: 2 << 20, entries: 25 });
      p.done();
      return screen(f.writes.slice(0, -1));
    };
    const wide = at(120);
    assert.match(wide, /layer 1\/2 sha256:abababababab  2\.0 MiB\/4\.0 MiB 50%  25 entries/);
    for (const columns of [70, 60, 50, 40, 30, 24]) {
      const s = at(columns);
      assert.ok(s.length <= columns - 1, `${columns}: ${s}`);
      assert.match(s, /2\.0 MiB(\/4\.0 MiB)? 50%/, `${columns} columns: numbers on screen: ${s}`);
      assert.ok(!s.includes("…"), `${columns} columns: nothing cut: ${s}`);
      if (s.includes("abab")) assert.match(s, /layer 1\/2 (sha256:abababababab|abababab) /);
    }
    assert.match(at(60), /layer 1\/2 abababab  2\.0 MiB\/4\.0 MiB 50%/, "8 hex digits of the digest at 60 columns");
  });

  test("single small layers report their file bytes while they are written, not only at the end", async () => {
    const { applyLayers } = await import("../src/layer/unpack.ts");
    const { Layout } = await import("../src/oci/layout.ts");
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-progress-bytes-"));
    try {
      const files = Array.from({ length: 24 }, (_, i) => ({ name: `d/f${i}`, data: new Uint8Array(128 << 10).fill(i) }));
      const fx = makeLayout(path.join(work, "img"), [{ tags: ["latest"], layers: [tarFiles([{ name: "d/", dir: true }, ...files])] }]);
      const layout = await Layout.open(fx.dir);
      const img = await layout.resolve("latest");
      fs.mkdirSync(path.join(work, "root"));
      const calls: number[] = [];
      await applyLayers(layout, img.manifest.layers, img.config.rootfs.diff_ids, path.join(work, "root"), { onBytes: (n) => calls.push(n) });
      assert.equal(calls.reduce((a, b) => a + b, 0), 24 * (128 << 10), "every file byte counted once");
      assert.ok(calls.length >= 8, `reported in steps (${calls.length} calls for a 3 MiB layer)`);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  test("disabled: a no-op reporter that writes nothing", async () => {
    const f = fakeTty();
    const p = start("unpack", { enabled: false, stream: f.stream, now: f.now });
    assert.equal(p.enabled, false);
    f.tick(1000);
    p.add(100, 1);
    p.update({ bytes: 5 });
    p.itemDone();
    p.done();
    assert.deepEqual(f.writes, []);
    // default: enabled only when stderr is a TTY (the test runner pipes it)
    if (!process.stderr.isTTY) assert.equal(start("x").enabled, false);
    // withProgress ends the reporter even when fn throws
    const g = fakeTty();
    await assert.rejects(withProgress("gc", { enabled: true, stream: g.stream, now: g.now }, (q) => {
      g.tick(200);
      q.add(10, 1);
      throw new Error("boom");
    }), /boom/);
    assert.equal(g.writes.at(-1), "\r\x1b[K");
  });

  test("formatting", () => {
    assert.equal(formatBytes(0), "0 B");
    assert.equal(formatBytes(1023), "1023 B");
    assert.equal(formatBytes(1536), "1.5 KiB");
    assert.equal(formatBytes(300 * 1024 * 1024), "300 MiB");
    assert.equal(formatDuration(0), "0:00");
    assert.equal(formatDuration(75.2), "1:16");
    assert.equal(formatDuration(3725), "1:02:05");
  });
});

describe("progress through the CLI", () => {
  const cli = [nodeBin, "--import", "tsx", path.join(root, "src/main.ts")];
  const q = (a: string[]) => a.map((s) => `'${s.replaceAll("'", `'\\''`)}'`).join(" ");

  test("appears on a terminal (script(1) pseudo-terminal), erased at the end", (t) => {
    if (!have("script")) {
      if (process.env.CI) assert.fail("script (util-linux) not installed");
      t.skip("script (util-linux) not installed");
      return;
    }
    const r = spawnSync("script", ["-qec", q([...cli, "__progress-demo", "--ms", "1200"]), "/dev/null"], {
      cwd: root, encoding: "utf8", env: { ...process.env, COLUMNS: "120" }, timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const out = r.stdout;
    assert.match(out, /\rdemo  0\/1 › unpack  layer [123]\/3 sha256:[0-9]{12}  [0-9.]+ [KM]iB\/24\.0 MiB/);
    assert.match(out, /\d+ entries/);
    assert.ok(out.includes("\r\x1b[K"), "line erased");
    // the line is erased before the command's output
    assert.match(out, /\r\x1b\[Kdemo done\r?\n/);
  });

  test("--quiet on a terminal: no progress", (t) => {
    if (!have("script")) {
      if (process.env.CI) assert.fail("script (util-linux) not installed");
      t.skip("script (util-linux) not installed");
      return;
    }
    const r = spawnSync("script", ["-qec", q([...cli, "--quiet", "__progress-demo", "--ms", "600"]), "/dev/null"], {
      cwd: root, encoding: "utf8", timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.replaceAll("\r", ""), "demo done\n");
  });

  test("TERM=dumb on a terminal: no escape sequences, no progress", (t) => {
    if (!have("script")) {
      if (process.env.CI) assert.fail("script (util-linux) not installed");
      t.skip("script (util-linux) not installed");
      return;
    }
    const r = spawnSync("script", ["-qec", q([...cli, "__progress-demo", "--ms", "600"]), "/dev/null"], {
      cwd: root, encoding: "utf8", env: { ...process.env, TERM: "dumb", OCIGEN_PROGRESS_INTERVAL_MS: "0" }, timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.ok(!r.stdout.includes("\x1b"), JSON.stringify(r.stdout.slice(0, 200)));
    assert.equal(r.stdout.replaceAll("\r", ""), "demo done\n");
  });

  test("extract --all on a terminal: bytes move while a single-layer image is applied in this thread", (t) => {
    if (!have("script")) {
      if (process.env.CI) assert.fail("script (util-linux) not installed");
      t.skip("script (util-linux) not installed");
      return;
    }
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-progress-all-"));
    try {
      const files = Array.from({ length: 24 }, (_, i) => ({ name: `d/f${i}`, data: new Uint8Array(128 << 10).fill(i) }));
      makeLayout(path.join(work, "layouts", "one"), [{ tags: ["latest"], layers: [tarFiles([{ name: "d/", dir: true }, ...files])] }]);
      fs.writeFileSync(path.join(work, "conf"), `[system]\nimagelayoutdir = ${work}/layouts\nextractsdir = ${work}/extracts\n`);
      const r = spawnSync("script", ["-qec", q([...cli, "extract", "--all", "--config", path.join(work, "conf")]), "/dev/null"], {
        cwd: root, encoding: "utf8", env: { ...process.env, OCIGEN_PROGRESS_INTERVAL_MS: "0", OCIGEN_INFLATE: "wasm", COLUMNS: "200" }, timeout: 120_000,
      });
      assert.equal(r.status, 0, r.stdout);
      const lines = r.stdout.split("\r").filter((l) => l.startsWith("extract --all  0/1"));
      assert.ok(lines.length > 0, r.stdout.slice(0, 500));
      // 3 MiB of files: some line shows part of them (not 0 B, not all 3.0 MiB) before the image is done
      assert.ok(lines.some((l) => /0\/1  ([1-9][0-9.]* KiB|[12]\.\d MiB)\//.test(l)), `bytes while applying:\n${lines.join("\n")}`);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  test("never in pipes", () => {
    const r = spawnSync(cli[0], [...cli.slice(1), "__progress-demo", "--ms", "600"], { cwd: root, encoding: "utf8", timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.equal(r.stdout, "demo done\n");
  });

  /** Source files (relative to root) under `paths` that import src/progress.ts. */
  function progressUsers(paths: string[]): string[] {
    const out: string[] = [];
    const walk = (p: string) => {
      const abs = path.join(root, p);
      if (!fs.existsSync(abs)) return;
      if (fs.statSync(abs).isDirectory()) for (const n of fs.readdirSync(abs)) walk(path.join(p, n));
      else if (p.endsWith(".ts") && /from "[./]*progress\.ts"/.test(fs.readFileSync(abs, "utf8"))) out.push(p);
    };
    for (const p of paths) walk(p);
    return out;
  }

  test("a real verb: unpack draws progress on a terminal, nothing in a pipe", (t) => {
    const help = spawnSync(cli[0], [...cli.slice(1), "--help"], { cwd: root, encoding: "utf8" });
    if (!/^ {2}unpack\b/m.test(help.stdout)) {
      t.skip("unpack verb not registered yet");
      return;
    }
    // Whether unpack draws through src/progress.ts (then the line also counts entries/bytes and is erased at the end).
    const viaReporter = progressUsers(["src/cli/commands/unpack.ts", "src/layer", "src/bundle"]).length > 0;
    if (!have("script")) {
      if (process.env.CI) assert.fail("script (util-linux) not installed");
      t.skip("script (util-linux) not installed");
      return;
    }
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-progress-"));
    try {
      const files = (n: number, p: string) => Array.from({ length: n }, (_, i) => ({ name: `${p}/f${i}`, data: `file ${i}\n`.repeat(50) }));
      makeLayout(path.join(work, "img"), [{
        tags: ["latest"],
        layers: [tarFiles([{ name: "a/", dir: true }, ...files(300, "a")]), tarFiles([{ name: "b/", dir: true }, ...files(300, "b")])],
      }]);
      const args = [...cli, "unpack", "--image", `${path.join(work, "img")}:latest`];
      const env = { ...process.env, OCIGEN_PROGRESS_INTERVAL_MS: "0", COLUMNS: "200" };
      const tty = spawnSync("script", ["-qec", q([...args, path.join(work, "b1")]), "/dev/null"], { cwd: root, encoding: "utf8", env, timeout: 120_000 });
      assert.equal(tty.status, 0, tty.stdout);
      assert.match(tty.stdout, /\r[^\r\n]*unpack[^\r\n]*\x1b\[K/, "a progress line was drawn");
      if (viaReporter) {
        assert.match(tty.stdout, /\d+ (B|KiB|MiB)/);
        assert.ok(tty.stdout.includes("\r\x1b[K"), "and erased");
      }
      const pipe = spawnSync(args[0], [...args.slice(1), path.join(work, "b2")], { cwd: root, encoding: "utf8", env, timeout: 120_000 });
      assert.equal(pipe.status, 0, pipe.stderr);
      assert.equal(pipe.stderr, "", "nothing on stderr in a pipe");
      const quiet = spawnSync("script", ["-qec", q([...cli, "--quiet", ...args.slice(cli.length), path.join(work, "b3")]), "/dev/null"], { cwd: root, encoding: "utf8", env, timeout: 120_000 });
      assert.equal(quiet.status, 0, quiet.stdout);
      assert.ok(!quiet.stdout.includes("\x1b[K"), "no progress with --quiet");
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
