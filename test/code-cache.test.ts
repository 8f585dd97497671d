// The Node bundle's loader (dist/ocigen.mjs, made by .ci/build.mjs with
// .ci/code-cache.mjs): it runs the program beside it (ocigen.mjs.program)
// with the V8 code cache the build trained (ocigen.mjs.cache), uses a cache
// only when it was made for that very program, still runs without one or
// with one V8 rejects, and says in one line when its program is missing;
// the program is ASCII and makes one ES interop object per builtin; the
// training chains its steps (.ci/code-cache.mjs).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { VERSION } from "../src/version.ts";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const nodeBin = "Deno" in globalThis ? "node" : process.execPath;
const loader = path.join(root, "dist/ocigen.mjs");

function built(): string | undefined {
  if (fs.existsSync(loader + ".program")) return undefined;
  const why = "dist/ocigen.mjs.program is not built (npm ci / npm run build)";
  if (process.env.CI) assert.fail(why);
  return why;
}

/** A copy of the loader and its program in a fresh directory (the cache is up to each test). */
function copy(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-code-cache-test-"));
  fs.copyFileSync(loader, path.join(dir, "ocigen.mjs"));
  fs.copyFileSync(loader + ".program", path.join(dir, "ocigen.mjs.program"));
  return dir;
}

const run = (script: string, ...args: string[]) => spawnSync(nodeBin, [script, ...args], { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } });
/** `node .ci/code-cache.mjs ARGS` (the build's training and check tool). */
const codeCache = (...args: string[]) =>
  spawnSync(nodeBin, [path.join(root, ".ci/code-cache.mjs"), ...args], { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } });
const check = (script: string) => codeCache("--check", script);
/** Runs the ES module text `js` with `wrapProgram` (.ci/code-cache.mjs) in scope. */
const withWrapProgram = (js: string) =>
  spawnSync(nodeBin, ["--input-type=module", "-e", `const { wrapProgram } = await import(${JSON.stringify(new URL("../.ci/code-cache.mjs", import.meta.url).href)});\n${js}`], {
    encoding: "utf8",
  });

describe("dist/ocigen.mjs loader and its code cache", () => {
  test("the build's cache is accepted by this Node and the program runs with it", { skip: built() }, () => {
    assert.ok(fs.existsSync(loader + ".cache"), "the build made no dist/ocigen.mjs.cache (see its warning)");
    const c = check(loader);
    assert.equal(c.stdout.trim(), "accepted", c.stderr);
    const v = run(loader, "--version");
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout.trim(), VERSION);
  });

  test("a cache made for another program is not used; a damaged one is rejected by V8; neither stops the program", { skip: built() }, () => {
    const dir = copy();
    try {
      const script = path.join(dir, "ocigen.mjs");
      const cache = fs.readFileSync(loader + ".cache");
      // another program's id (first 64 bytes), same V8 data
      const other = Buffer.from(cache);
      other.write("0".repeat(64), 0, "latin1");
      fs.writeFileSync(script + ".cache", other);
      assert.equal(check(script).stdout.trim(), "other program");
      let v = run(script, "--version");
      assert.equal(v.status, 0, v.stderr);
      assert.equal(v.stdout.trim(), VERSION);
      // the right id, garbage after it
      fs.writeFileSync(script + ".cache", Buffer.concat([cache.subarray(0, 64), Buffer.alloc(4096, 0x5a)]));
      assert.equal(check(script).stdout.trim(), "rejected");
      v = run(script, "ls", "--layout", path.join(dir, "no-such-layout"));
      assert.equal(v.status, 1);
      assert.match(v.stderr, /no-such-layout/);
      // no cache at all
      fs.rmSync(script + ".cache");
      assert.equal(check(script).stdout.trim(), "missing");
      v = run(script, "--version");
      assert.equal(v.stdout.trim(), VERSION, v.stderr);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("training chains its steps: each compiles with the cache the step before wrote, so the last holds what all of them ran", { skip: built() }, () => {
    const dir = copy();
    try {
      const script = path.join(dir, "ocigen.mjs");
      const program = script + ".program";
      const train = (out: string, from: string | undefined, ...args: string[]) => {
        const r = codeCache("--run", program, out, script, ...(from ? [from] : []), "--", ...args);
        assert.equal(r.status, 0, r.stderr);
        return fs.statSync(out).size;
      };
      const layout = path.join(dir, "layout");
      const init = train(path.join(dir, "a"), undefined, "init", "--layout", layout);
      const chained = train(path.join(dir, "b"), path.join(dir, "a"), "ls", "--layout", layout);
      const alone = train(path.join(dir, "c"), undefined, "ls", "--layout", layout);
      // `init` and `ls` run different functions: the chained cache holds both sets
      assert.ok(chained > alone && chained > init, `chained ${chained} bytes, ls alone ${alone}, init alone ${init}`);
      // a previous cache V8 rejects stops the training (a silent restart would lose the steps before)
      fs.writeFileSync(path.join(dir, "bad"), Buffer.alloc(4096, 0x5a));
      const r = codeCache("--run", program, path.join(dir, "d"), script, path.join(dir, "bad"), "--", "--version");
      assert.equal(r.status, 3);
      assert.match(r.stderr, /rejected the previous step's cache/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the program is ASCII, and the build refuses one that is not (V8 would hold all of it as a two-byte string)", { skip: built() }, () => {
    const program = fs.readFileSync(loader + ".program");
    const at = program.findIndex((b) => b > 0x7f);
    assert.equal(at, -1, `non-ASCII byte in dist/ocigen.mjs.program at ${at}: ${program.subarray(Math.max(0, at - 40), at + 10).toString("latin1")}`);
    const wrap = (text: string) =>
      withWrapProgram(`try { wrapProgram(${JSON.stringify(text)}); console.log("wrapped"); } catch (e) { console.log(e.message); }`);
    assert.equal(wrap('a = /^[\\u25cf*]/;\n').stdout.trim(), "wrapped");
    const r = wrap('a = 1;\nb = /^[\u25cf*]/;\n');
    assert.match(r.stdout, /^the program must be ASCII: U\+25cf on line 2: .*b = \/\^\[/, r.stderr);
  });

  test("every builtin's ES interop object is made once, not once per importing module", { skip: built() }, () => {
    const program = fs.readFileSync(loader + ".program", "latin1");
    assert.doesNotMatch(program, /__toESM\(require\("node:/);
    assert.match(program, /__ocigenBuiltin\("node:fs"\)/);
    // the rewrite on a sample: two modules importing node:path get the same object, which is node:path's
    const r = withWrapProgram(`
      const { createRequire } = await import("node:module");
      const body = 'var __toESM=(m,n)=>({default:m,...m});var a=__toESM(require("node:path"),1);var b=__toESM(require("node:path"),1);' +
        'var c=__toESM(require("node:os"),1);globalThis.out=[a===b,a.default===require("node:path"),a.join===require("node:path").join,c!==a];';
      const text = wrapProgram(body);
      (0, eval)(text)(createRequire(import.meta.url), "f", "d", "u");
      console.log(JSON.stringify([globalThis.out, (text.match(/__ocigenBuiltin\\(/g) ?? []).length]));`);
    assert.equal(r.stdout.trim(), JSON.stringify([[true, true, true, true], 3]), r.stderr);
  });

  test("a loader without its program says so in one line and exits 1", { skip: built() }, () => {
    const dir = copy();
    try {
      const script = path.join(dir, "ocigen.mjs");
      fs.rmSync(script + ".program");
      const v = run(script, "--version");
      assert.equal(v.status, 1);
      assert.equal(v.stdout, "");
      assert.equal(v.stderr.trim().split("\n").length, 1, v.stderr);
      assert.match(v.stderr, /^ocigen: .*ocigen\.mjs\.program: cannot read ocigen's program beside its loader \(ENOENT\)/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
