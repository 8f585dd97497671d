// What a new user meets first: a Deno permission not granted is one line
// naming the permission and its flag (not a stack trace); a verb writing
// under /usr/local, /etc or /var/lib as a user says that the path needs root.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { have } from "../src/util/which.ts";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const nodeBin = isDeno ? "node" : process.execPath;
const deno = path.join(root, "node_modules", ".bin", "deno");

describe("Deno permissions", () => {
  const cases: Array<{ perms: string[]; flag: string; what: RegExp }> = [
    { perms: [], flag: "--allow-env", what: /env access/ },
    { perms: ["--allow-env"], flag: "--allow-read", what: /read access to "[^"]*layout-x"/ },
    { perms: ["--allow-env", "--allow-read", "--allow-sys"], flag: "--allow-write", what: /write access/ },
  ];
  for (const c of cases) {
    test(`without ${c.flag}: one line naming the permission, exit 1`, () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-deno-perm-"));
      try {
        const r = spawnSync(deno, ["run", ...c.perms, path.join(root, "src/main.ts"), "init", "--layout", path.join(dir, "layout-x")], {
          cwd: root, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, timeout: 120_000,
        });
        assert.equal(r.status, 1, r.stderr);
        const lines = r.stderr.trimEnd().split("\n");
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0], /^ocigen: Deno permission missing: /);
        assert.match(lines[0], c.what);
        assert.ok(lines[0].includes(`run deno with ${c.flag}`), lines[0]);
        assert.doesNotMatch(r.stderr, /NotCapable|\bat /);
        assert.equal(fs.existsSync(path.join(dir, "layout-x")), false, "nothing written");
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe("not root", () => {
  const asNobody = (args: string[], cwd: string) =>
    spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", nodeBin, "--import", "tsx", path.join(root, "src/main.ts"), ...args], {
      cwd, encoding: "utf8", timeout: 120_000,
    });
  const skip = (t: { skip: (m: string) => void }): boolean => {
    const why = process.getuid?.() !== 0 ? "needs root to drop to uid 65534" : !have("setpriv") ? "setpriv (util-linux) not installed" : "";
    if (!why) return false;
    if (process.env.CI) assert.fail(why);
    t.skip(why);
    return true;
  };

  test("install-generator as a user: the path needs root, one line, exit 1", (t) => {
    if (skip(t)) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-nonroot-"));
    try {
      // a prefix like / : owned by root, not writable by others
      const prefix = path.join(dir, "root");
      fs.mkdirSync(path.join(prefix, "usr/local/bin"), { recursive: true });
      fs.chmodSync(dir, 0o755);
      const r = asNobody(["install-generator", "--prefix", prefix], root);
      assert.equal(r.status, 1, r.stderr);
      const lines = r.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /EACCES/);
      assert.match(lines[0], /not root \(uid 65534\): \S*\/usr\/local\/(bin|lib)\S* needs root or write access; run with sudo/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("init under a root-owned directory as a user: the hint names the directory", (t) => {
    if (skip(t)) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-nonroot-"));
    try {
      fs.chmodSync(dir, 0o755);
      const r = asNobody(["init", "--layout", path.join(dir, "l")], root);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^ocigen: .*EACCES.*; not root \\(uid 65534\\): ${dir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} needs root or write access; run with sudo, or choose a path you own\\n$`));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
