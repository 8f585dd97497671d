// No engine reads the environment: the engines' test suites run with a
// process.env that throws on any access from an engine (test/env-guard.mjs,
// preloaded with --import). Only src/settings.ts and the command line
// (src/cli/**, src/main.ts) may read it; engines get their settings as
// options. A grep would not do: `const { env } = process` passes a grep.
//
// The guard itself is checked first, on a throw-away tree it treats as
// src/: an engine reading the environment (directly, through a destructured
// `process`, or through the settings module, even inside a try/catch) makes
// the process fail naming the file; the command line and the settings
// module called by it do not.
//
// Node only: the guard replaces Node's process.env; under Deno this file
// skips.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), "..");
const GUARD = path.join(ROOT, "test", "env-guard.mjs");
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const skip = isDeno ? "the env guard replaces Node's process.env (Node only)" : false;

/**
 * Engines that still read the environment while their owners move them to
 * settings options (none left). Their reads are reported, not fatal. Remove a
 * file here once it reads nothing: the last test fails until then.
 */
const PENDING: string[] = [];

/**
 * Suites that drive the engines in this process (layout, tar, unpack,
 * repack, generator, store, bulk, status, update, recipes). Not
 * security-unpack: its wall-clock limits (10 s, 20 s) are too tight for a
 * second pass on a loaded machine; layer and unpack cover the same engine.
 */
const SUITES = [
  "tar.test.ts",
  "layer.test.ts",
  "oci-core.test.ts",
  "oci-write.test.ts",
  "oci-errors.test.ts",
  "repack.test.ts",
  "insert-whiteout-targets.test.ts",
  "library-api.test.ts",
  "generator.test.ts",
  "generator-golden.test.ts",
  "generator-extract.test.ts",
  "generator-settings.test.ts",
  "generator-plan.test.ts",
  "bulk.test.ts",
  "store-api.test.ts",
  "store-permissions.test.ts",
  "status.test.ts",
  "update.test.ts",
  "unpack.test.ts",
  "unpack-pipeline.test.ts",
  "security-layout.test.ts",
  "recipe-build.test.ts",
].map((f) => path.join("test", f));

/** Runs `node --import GUARD <args>` in `cwd` with `env` added. */
function guarded(args: string[], env: Record<string, string>, cwd = ROOT) {
  return spawnSync(process.execPath, ["--import", GUARD, ...args], {
    cwd,
    env: { ...process.env, ...env },
    encoding: "utf8",
    maxBuffer: 256 << 20,
    timeout: 20 * 60_000,
  });
}

describe("the env guard", { skip }, () => {
  test("trips on an engine reading the environment, directly, destructured, through settings or inside try/catch", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-envguard-"));
    try {
      const src = path.join(dir, "src");
      fs.mkdirSync(path.join(src, "cli"), { recursive: true });
      fs.writeFileSync(path.join(dir, "package.json"), '{ "type": "module" }\n');
      fs.writeFileSync(path.join(src, "settings.ts"), "export const home = () => process.env.HOME;\n");
      fs.writeFileSync(path.join(src, "direct.ts"), "export const v = () => process.env.HOME;\n");
      fs.writeFileSync(path.join(src, "destructured.ts"), "const { env } = process;\nexport const v = () => env.HOME;\n");
      fs.writeFileSync(path.join(src, "swallowed.ts"), "export const v = () => { try { return process.env.HOME; } catch { return undefined; } };\n");
      fs.writeFileSync(path.join(src, "via-settings.ts"), 'import { home } from "./settings.ts";\nexport const v = () => home();\n');
      fs.writeFileSync(path.join(src, "cli", "main.ts"), 'import { home } from "../settings.ts";\nexport const v = () => [process.env.HOME, home()];\n');
      const run = (file: string) =>
        guarded(["--import", "tsx", "--input-type=module", "-e", `const m = await import(${JSON.stringify(path.join(src, file))}); m.v();`], { ENV_GUARD_SRC: src });
      for (const f of ["direct.ts", "destructured.ts", "swallowed.ts", "via-settings.ts"]) {
        const r = run(f);
        assert.notEqual(r.status, 0, `${f}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`env-guard: engines read the environment: src/${f.replace(".", "\\.")}`), r.stderr);
      }
      const ok = run(path.join("cli", "main.ts"));
      assert.equal(ok.status, 0, ok.stderr);
      assert.doesNotMatch(ok.stderr, /env-guard/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("classifier: settings.ts is allowed for the command line, not for an engine calling it", async () => {
    const g = await import(GUARD) as {
      classify(f: string): string;
      offender(files: string[]): string | undefined;
    };
    const src = (f: string) => path.join(ROOT, "src", f);
    assert.equal(g.classify(src("settings.ts")), "settings");
    assert.equal(g.classify(src("cli/commands/unpack.ts")), "edge");
    assert.equal(g.classify(src("main.ts")), "edge");
    assert.equal(g.classify(src("layer/unpack.ts")), "engine");
    assert.equal(g.classify(path.join(ROOT, "test", "x.test.ts")), "other");
    assert.equal(g.classify("<internal>"), "other");
    assert.equal(g.offender([src("settings.ts"), src("cli/program.ts")]), undefined);
    assert.equal(g.offender([src("settings.ts"), src("settings.ts"), src("layer/unpack.ts")]), src("layer/unpack.ts"));
    assert.equal(g.offender(["<internal>", src("layer/unpack.ts")]), undefined); // node internals (os.tmpdir, spawn) may read it
    assert.equal(g.offender([src("oci/layout.ts"), src("cli/main.ts")]), src("oci/layout.ts"));
  });
});

describe("no engine reads the environment", { skip }, () => {
  test(`the engines' suites pass under the guard (${SUITES.length} files)`, { timeout: 30 * 60_000 }, () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", "--import", GUARD, "--test", "--test-concurrency=1", ...SUITES], {
      cwd: ROOT,
      // NODE_TEST_CONTEXT unset: a `node --test` started by a test would not run its files
      env: { ...process.env, ENV_GUARD_PENDING: PENDING.join(","), NODE_TEST_CONTEXT: undefined },
      encoding: "utf8",
      maxBuffer: 256 << 20,
    });
    const out = r.stdout + r.stderr;
    const offences = [...new Set(out.match(/env-guard: (?!still allowed)[^\n]*/g) ?? [])];
    assert.deepEqual(offences, [], offences.join("\n"));
    // each failed test with the lines that follow it (its error)
    const lines = out.split("\n");
    const failed = lines.flatMap((l, i) => (/^\s*not ok /.test(l) ? [lines.slice(i, i + 25).join("\n")] : []));
    assert.equal(r.status, 0, `suites failed under the guard:\n${failed.join("\n")}\n${out.slice(-2000)}`);
    assert.match(out, /^# pass [1-9]/m);
  });

  test("every pending engine still reads the environment (else take it off the list)", () => {
    const code = (f: string) => fs.readFileSync(path.join(ROOT, "src", f), "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
    const done = PENDING.filter((f) => !fs.existsSync(path.join(ROOT, "src", f)) || !/process\.env|Deno\.env|\bprocess\b[^;\n]*\benv\b/.test(code(f)));
    assert.deepEqual(done, [], `no longer read the environment: remove from PENDING in ${path.relative(ROOT, new URL(import.meta.url).pathname)}`);
  });
});
