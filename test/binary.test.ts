// The single-file executable (npm run build:binary -> dist/ocigen) works on
// its own: copied to an empty directory with no node_modules anywhere, it
// prints its version, runs as the generator under the name ocigen-generator,
// and (once those verbs exist) generates units and unpacks an image.
//
// Uses dist/ocigen when it is newer than every source file, else builds a
// fresh binary into a temp dir with .ci/build-binary.mjs (about 5 s).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { makeLayout, tarFiles } from "../fixtures/layout.ts";
import { VERSION } from "../src/version.ts";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const nodeBin = isDeno ? "node" : process.execPath;

function newestSource(dir: string): number {
  let t = 0;
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = fs.statSync(p);
    t = Math.max(t, st.isDirectory() ? newestSource(p) : st.mtimeMs);
  }
  return t;
}

let work = "";
let bin = "";
let verbs: string[] = [];
/** Environment without anything that could make node look for modules. */
const env = (() => {
  const e: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("NODE_")) e[k] = v;
  return e;
})();

function run(args: string[], opts: { cwd?: string; argv0Path?: string; extraEnv?: Record<string, string> } = {}) {
  return spawnSync(opts.argv0Path ?? bin, args, { cwd: opts.cwd ?? work, encoding: "utf8", env: { ...env, ...opts.extraEnv }, timeout: 120_000 });
}

describe("single binary (dist/ocigen)", () => {
  before(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-binary-"));
    const dist = path.join(root, "dist/ocigen");
    const fresh = fs.existsSync(dist) &&
      fs.statSync(dist).mtimeMs > Math.max(newestSource(path.join(root, "src")), fs.statSync(path.join(root, "package.json")).mtimeMs);
    let built = dist;
    if (!fresh) {
      built = path.join(work, "build", "ocigen");
      const r = spawnSync(nodeBin, [path.join(root, ".ci/build-binary.mjs"), "--out", built], { cwd: root, encoding: "utf8", timeout: 300_000 });
      assert.equal(r.status, 0, `build-binary failed: ${r.stderr}`);
    }
    // an empty directory: no node_modules here or in any parent (os.tmpdir())
    fs.mkdirSync(path.join(work, "bin"));
    bin = path.join(work, "bin", "ocigen");
    fs.copyFileSync(built, bin);
    fs.chmodSync(bin, 0o755);
    fs.rmSync(path.join(work, "build"), { recursive: true, force: true });
    const help = run(["--help"]);
    assert.equal(help.status, 0, help.stderr);
    const cmds = help.stdout.slice(help.stdout.indexOf("Commands:"));
    verbs = [...cmds.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]);
  });
  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test("--version with no node_modules present", () => {
    let d = path.dirname(bin);
    for (;;) {
      assert.ok(!fs.existsSync(path.join(d, "node_modules")), `${d}/node_modules exists`);
      if (path.dirname(d) === d) break;
      d = path.dirname(d);
    }
    const r = run(["--version"], { cwd: "/" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), VERSION);
    assert.equal(r.stderr, "", "no SEA warning on stderr");
    assert.ok(verbs.includes("install-generator"), verbs.join(","));
  });

  test("errors: one line on stderr, exit 1", () => {
    const r = run(["no-such-verb"]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  });

  test("under the name ocigen-generator it is `ocigen generate`", (t) => {
    const link = path.join(work, "bin", "ocigen-generator");
    fs.symlinkSync("ocigen", link);
    if (!verbs.includes("generate")) {
      t.skip("generate verb not registered yet");
      return;
    }
    const viaLink = run(["--help"], { argv0Path: link });
    const direct = run(["generate", "--help"]);
    assert.equal(direct.status, 0, direct.stderr);
    assert.equal(viaLink.status, 0, viaLink.stderr);
    assert.equal(viaLink.stdout, direct.stdout);
  });

  /** A layouts dir with one tagged image that has a command, and a config file pointing at it. */
  function example(): { layouts: string; conf: string; layout: string } {
    const layouts = path.join(work, "layouts");
    const layout = path.join(layouts, "example.com", "hello");
    fs.mkdirSync(layout, { recursive: true });
    makeLayout(layout, [{
      tags: ["latest"],
      layers: [tarFiles([{ name: "bin/", dir: true }, { name: "bin/hello", data: "#!/bin/sh\necho hello\n", mode: 0o755 }, { name: "etc/", dir: true }, { name: "etc/hostname", data: "hello\n" }])],
      config: { config: { Entrypoint: ["/bin/hello"], Cmd: ["world"], Env: ["PATH=/bin"] } },
    }]);
    const conf = path.join(work, "oci-generator.conf");
    fs.writeFileSync(conf, `[system]\nimagelayoutdir = ${layouts}\nextractsdir = ${path.join(work, "extracts")}\n`);
    return { layouts, conf, layout };
  }

  test("generate --dry-run on an example layout", (t) => {
    if (!verbs.includes("generate")) {
      t.skip("generate verb not registered yet");
      return;
    }
    const { conf } = example();
    const out = path.join(work, "gen-out");
    fs.mkdirSync(out, { recursive: true });
    const r = run(["generate", "--config", conf, "--dry-run", out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /---.*com\.example\.hello\.ref\.latest\.service---/);
    assert.match(r.stdout, /^ExecStart=.*\/bin\/hello.*world/m);
    assert.deepEqual(fs.readdirSync(out), [], "dry run writes nothing");
    // units run `extract` with the binary itself, by absolute path (not the name it was called by)
    const ex = r.stdout.split("\n").find((l) => /^ExecStart(Pre)?=/.test(l) && l.includes(" extract "));
    assert.ok(ex?.includes(`${bin} extract `), `the extract command names ${bin}: ${ex}`);
    // the same through the generator name, config from the environment
    const link = path.join(work, "bin", "ocigen-generator");
    if (!fs.existsSync(link)) fs.symlinkSync("ocigen", link);
    const g = run(["--dry-run", out], { argv0Path: link, extraEnv: { OCIGEN_GENERATOR_CONF: conf } });
    assert.equal(g.status, 0, g.stderr);
    assert.equal(g.stdout, r.stdout);
  });

  test("unpack an example image into a bundle", (t) => {
    if (!verbs.includes("unpack")) {
      t.skip("unpack verb not registered yet");
      return;
    }
    const { layout } = example();
    const bundle = path.join(work, "bundle");
    const r = run(["unpack", "--image", `${layout}:latest`, bundle]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.readFileSync(path.join(bundle, "rootfs/etc/hostname"), "utf8"), "hello\n");
    assert.equal(fs.statSync(path.join(bundle, "rootfs/bin/hello")).mode & 0o777, 0o755);
    assert.ok(fs.existsSync(path.join(bundle, "config.json")));
    fs.rmSync(bundle, { recursive: true, force: true });
    // the inflate worker is inside the binary too (its program is embedded as text)
    const w = run(["raw", "unpack", "--image", `${layout}:latest`, bundle], { extraEnv: { OCIGEN_INFLATE: "worker" } });
    assert.equal(w.status, 0, w.stderr);
    assert.equal(fs.readFileSync(path.join(bundle, "etc/hostname"), "utf8"), "hello\n");
    fs.rmSync(bundle, { recursive: true, force: true });
  });

  test("build with pre and post hooks (host scripts) and copy", () => {
    const dir = path.join(work, "build-hooks");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "app.conf"), "answer = 42\n");
    fs.writeFileSync(path.join(dir, "spec.yaml"), [
      "app:",
      "  base: empty",
      "  pre: mkdir -p \"$ROOTFS/etc\" && echo from-pre > \"$ROOTFS/etc/pre\"",
      "  copy: app.conf /etc/app.conf",
      "  entrypoint: /bin/app",
      "  post: echo \"$OCIGEN_TARGET\" > post-ran",
      "",
    ].join("\n"));
    const layout = path.join(dir, "oci");
    const r = run(["build", "spec.yaml", "--layout", layout], { cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /ERR_VM_DYNAMIC_IMPORT|import\(/);
    assert.equal(fs.readFileSync(path.join(dir, "post-ran"), "utf8"), "app\n", "the post hook ran in the spec's directory");
    const ls = run(["ls", "--layout", layout]);
    assert.equal(ls.status, 0, ls.stderr);
    assert.match(ls.stdout, /^app$/m);
    const bundle = path.join(dir, "bundle");
    const u = run(["unpack", "--image", `${layout}:app`, bundle]);
    assert.equal(u.status, 0, u.stderr);
    assert.equal(fs.readFileSync(path.join(bundle, "rootfs/etc/pre"), "utf8"), "from-pre\n");
    assert.equal(fs.readFileSync(path.join(bundle, "rootfs/etc/app.conf"), "utf8"), "answer = 42\n");
  });

  test("install-generator from the binary installs the binary itself", () => {
    const prefix = path.join(work, "prefix");
    const r = run(["install-generator", "--prefix", prefix]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /single binary/);
    const installed = path.join(prefix, "usr/local/bin/ocigen");
    assert.equal(fs.statSync(installed).size, fs.statSync(bin).size);
    const gen = path.join(prefix, "usr/local/lib/systemd/system-generators/ocigen-generator");
    assert.equal(fs.realpathSync(gen), fs.realpathSync(installed));
    const v = spawnSync(installed, ["--version"], { encoding: "utf8", env: {} });
    assert.equal(v.stdout.trim(), VERSION, v.stderr);
    const u = run(["uninstall-generator", "--prefix", prefix]);
    assert.equal(u.status, 0, u.stderr);
    assert.deepEqual(fs.readdirSync(prefix), []);
  });
});
