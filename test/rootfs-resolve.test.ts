// RootResolver's cache: a resolution that resumes after a cached prefix, or
// that uses a directory recorded with learnDir, must give exactly what a walk
// from the root gives (the same real path, the same error, the same symlink
// limit), on trees full of relative, absolute, chained, looping and dangling
// symlinks.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { MAX_SYMLINKS, RootResolver } from "../src/rootfs/resolve.ts";
import { prng } from "./prng.ts";

const NAMES = ["a", "b", "c", "l1", "l2", "l3", "f", "..", "."];

function outcome(r: RootResolver, comps: string[]): string {
  try {
    const res = r.resolveDir(comps, false);
    return res ? `ok ${res.rel} ${res.abs}` : "missing";
  } catch (e) {
    return `error ${(e as Error).message}`;
  }
}

function buildTree(root: string, next: () => number): void {
  const pick = <T>(xs: T[]) => xs[next() % xs.length];
  const dirs = [""];
  for (let i = 0; i < 12; i++) {
    const d = path.posix.join(pick(dirs), pick(["a", "b", "c"]));
    fs.mkdirSync(path.join(root, d), { recursive: true });
    if (!dirs.includes(d)) dirs.push(d);
  }
  for (let i = 0; i < 14; i++) {
    const at = path.join(root, pick(dirs), pick(["l1", "l2", "l3"]));
    const target = pick([
      "a", "../a", "../../b/c", "/a", "/b/../c", "l1", "l2", "../l3", "/l1", ".", "..", "a/b", "nowhere", "f", "/",
    ]);
    try {
      fs.symlinkSync(target, at);
    } catch { /* name taken */ }
  }
  for (const d of dirs) {
    try {
      fs.writeFileSync(path.join(root, d, "f"), "");
    } catch { /* a symlink there */ }
  }
}

test("resolutions through the cache equal walks from the root (seeded random trees)", () => {
  for (let seed = 1; seed <= 25; seed++) {
    const next = prng(seed * 7919);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-resolve-"));
    try {
      const root = path.join(dir, "root");
      fs.mkdirSync(root);
      buildTree(root, next);
      const shared = new RootResolver(root);
      const paths: string[][] = [];
      for (let i = 0; i < 300; i++) {
        const n = 1 + (next() % 6);
        paths.push(Array.from({ length: n }, () => NAMES[next() % NAMES.length]));
      }
      let checked = 0;
      for (const comps of paths) {
        // prefixes first now and then, so that later resolutions resume after them
        if (next() % 2) outcome(shared, comps.slice(0, comps.length - 1));
        const want = outcome(new RootResolver(root), comps);
        assert.equal(outcome(shared, comps), want, `seed ${seed}: ${comps.join("/")}`);
        checked++;
      }
      assert.equal(checked, 300);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
});

test("the symlink limit counts the links of the cached prefix", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-resolve-"));
  try {
    const root = path.join(dir, "root");
    fs.mkdirSync(path.join(root, "d"), { recursive: true });
    // s0 -> s1 -> ... -> s(N-1) -> d: N links to reach d
    const n = MAX_SYMLINKS - 1;
    for (let i = 0; i < n; i++) fs.symlinkSync(i === n - 1 ? "d" : `s${i + 1}`, path.join(root, `s${i}`));
    fs.symlinkSync("../s0", path.join(root, "d", "up")); // another N+1 links from d
    const fresh = outcome(new RootResolver(root), ["s0", "up"]);
    assert.match(fresh, /too many levels of symbolic links/);
    const cached = new RootResolver(root);
    assert.match(outcome(cached, ["s0"]), /^ok d /);
    assert.equal(outcome(cached, ["s0", "up"]), fresh);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("learnDir: a directory just made resolves as a walk would find it", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-resolve-"));
  try {
    const root = path.join(dir, "root");
    fs.mkdirSync(path.join(root, "real"), { recursive: true });
    fs.symlinkSync("real", path.join(root, "via"));
    const r = new RootResolver(root);
    const parent = r.resolveDir(["via"], false)!;
    assert.equal(parent.rel, "real");
    fs.mkdirSync(path.join(parent.abs, "new"));
    r.learnDir(["via", "new"], { abs: path.join(parent.abs, "new"), rel: "real/new" });
    assert.equal(outcome(r, ["via", "new", "."]), outcome(new RootResolver(root), ["via", "new", "."]));
    assert.deepEqual(r.resolveDir(["via", "new"], false), { abs: path.join(root, "real/new"), rel: "real/new" });
    // a parent not in the cache, or a claimed path the parent does not give: nothing learnt
    const r2 = new RootResolver(root);
    r2.learnDir(["via", "new"], { abs: path.join(root, "elsewhere"), rel: "elsewhere" });
    assert.equal(r2.resolveDir(["via", "new"], false)?.rel, "real/new");
    r2.learnDir(["via", "new"], { abs: path.join(root, "elsewhere"), rel: "elsewhere" });
    assert.equal(r2.resolveDir(["via", "new"], false)?.rel, "real/new");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
