// src/fs/stat.ts: the walks' lstat (lstatTree) and a written file's key
// (fstatKey). On Deno they are made from Deno.lstatSync and a stat of
// /proc/self/fd/N instead of node:fs's Stats; every field read must equal what
// node:fs gives on the same runtime: every file type, odd times (before 1970,
// sub-millisecond), a missing path, a descriptor whose file was renamed and
// unlinked.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { fstatKey, lstatTree } from "../src/fs/stat.ts";
import { tmpdir } from "./layer-fixtures.ts";

const FIELDS = ["dev", "ino", "mode", "nlink", "uid", "gid", "rdev", "size", "mtimeNs", "ctimeNs"] as const;
const KINDS = ["isFile", "isDirectory", "isSymbolicLink", "isCharacterDevice", "isBlockDevice", "isFIFO", "isSocket"] as const;

test("lstatTree gives node:fs's fields and types for every kind of file", async () => {
  const dir = tmpdir();
  const server = net.createServer();
  try {
    const p = (n: string) => path.join(dir, n);
    fs.writeFileSync(p("file"), "12345");
    fs.mkdirSync(p("dir"));
    fs.symlinkSync("file", p("link"));
    fs.symlinkSync("/nowhere/at/all", p("dangling"));
    fs.linkSync(p("file"), p("hard"));
    fs.writeFileSync(p("old"), "");
    fs.utimesSync(p("old"), -86_400 * 365 * 5 - 0.25, -86_400 * 365 * 5 - 0.25); // 1965, a fraction of a second
    fs.writeFileSync(p("fine"), "x");
    fs.utimesSync(p("fine"), 1_700_000_000.123456, 1_700_000_000.123456);
    const paths = ["file", "dir", "link", "dangling", "hard", "old", "fine"].map(p);
    if (spawnSync("mkfifo", [p("fifo")]).status === 0) paths.push(p("fifo"));
    paths.push("/dev/null");
    await new Promise<void>((res, rej) => server.once("error", rej).listen(p("sock"), () => res()));
    paths.push(p("sock"));
    for (const f of paths) {
      const want = fs.lstatSync(f, { bigint: true });
      const got = lstatTree(f);
      for (const k of FIELDS) {
        assert.equal(typeof got[k], "bigint", `${f}: ${k} is a bigint`);
        assert.equal(got[k], want[k], `${f}: ${k}`);
      }
      for (const k of KINDS) assert.equal(got[k](), want[k](), `${f}: ${k}()`);
    }
    assert.equal(lstatTree(p("link")).isSymbolicLink(), true, "never follows the final symlink");
    assert.equal(lstatTree(p("sock")).isSocket(), true);
    assert.throws(() => lstatTree(p("missing")), (e: Error & { code?: string }) => e.code === "ENOENT");
    assert.throws(() => lstatTree(p("file") + "/below"), (e: Error & { code?: string }) => e.code === "ENOTDIR");
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("fstatKey gives the open file's own device, inode and size, also once renamed and unlinked", () => {
  const dir = tmpdir();
  const fds: number[] = [];
  try {
    const a = path.join(dir, "a");
    fs.writeFileSync(a, "hello");
    const fd = fs.openSync(a, "r+");
    fds.push(fd);
    fs.writeSync(fd, "hello, world", 0);
    const want = fs.fstatSync(fd);
    const k = fstatKey(fd);
    assert.deepEqual({ dev: k.dev, ino: k.ino, size: k.size }, { dev: want.dev, ino: want.ino, size: 12 });
    // another file now has the old name: the descriptor still names the first one
    fs.renameSync(a, path.join(dir, "b"));
    fs.writeFileSync(a, "a different file");
    assert.equal(fstatKey(fd).ino, want.ino);
    fs.unlinkSync(path.join(dir, "b"));
    assert.equal(fstatKey(fd).ino, want.ino);
    assert.equal(fstatKey(fd).size, 12);
    const other = fs.openSync(a, "r");
    fds.push(other);
    assert.notEqual(fstatKey(other).ino, want.ino);
    assert.equal(fstatKey(other).size, 16);
    assert.throws(() => fstatKey(-1));
  } finally {
    for (const fd of fds) fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const denoBin = path.join(repo, "node_modules", ".bin", "deno");

test("fstatKey on Deno without read access to /proc falls back to node:fs's fstat, same key", { skip: fs.existsSync(denoBin) ? false : "node_modules/.bin/deno not installed (npm ci installs it)" }, () => {
  const dir = tmpdir();
  try {
    fs.writeFileSync(path.join(dir, "f"), "hello\n");
    const script = path.join(dir, "t.mjs");
    fs.writeFileSync(script, [
      `import fs from "node:fs";`,
      `import { fstatKey } from ${JSON.stringify(pathToFileURL(path.join(repo, "src/fs/stat.ts")).href)};`,
      `const fd = fs.openSync(${JSON.stringify(path.join(dir, "f"))}, "r");`,
      `const a = fstatKey(fd), b = fstatKey(fd), w = fs.fstatSync(fd);`,
      `console.log(JSON.stringify([a.dev === w.dev, a.ino === w.ino, b.ino === w.ino, a.size]));`,
    ].join("\n"));
    // reading is allowed for the script and the module only: /proc/self/fd is not readable
    const r = spawnSync(denoBin, ["run", "--no-prompt", `--allow-read=${dir},${path.join(repo, "src")}`, script], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [true, true, true, 6]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
