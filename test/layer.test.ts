// Layer application: adversarial layers for every class of attack and every
// semantic (whiteouts, type changes, links, devices, modes, mtimes, xattrs).
// Every test plants a canary outside the root and checks it is untouched.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { OcigenError } from "../src/errors.ts";
import { ApplyState, LayerApplier, type ApplyOptions } from "../src/layer/apply.ts";
import { TarParser } from "../src/tar/parser.ts";
import { type TarWriterEntry, tarBytes } from "../src/tar/writer.ts";
import { cleanEntryPath } from "../src/rootfs/resolve.ts";
import { describeTree, have, plantCanary, tmpdir, applyTo } from "./layer-fixtures.ts";

const ROOT = typeof process.getuid === "function" && process.getuid() === 0;

interface Env {
  dir: string;
  root: string;
  canary: ReturnType<typeof plantCanary>;
  cleanup(): void;
}

function env(): Env {
  const dir = tmpdir("ocigen-layer-");
  const root = path.join(dir, "root");
  fs.mkdirSync(root);
  const canary = plantCanary(dir);
  return {
    dir,
    root,
    canary,
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Applies layers; returns the error thrown, if any. */
function apply(root: string, layers: Array<TarWriterEntry[] | Uint8Array>, opts: ApplyOptions = {}): unknown {
  return applyTo(root, layers, opts);
}

function ok(root: string, layers: Array<TarWriterEntry[] | Uint8Array>, opts: ApplyOptions = {}): void {
  const e = apply(root, layers, opts);
  if (e) throw e;
}

function fails(root: string, layers: Array<TarWriterEntry[] | Uint8Array>, code: string, re?: RegExp, opts: ApplyOptions = {}): OcigenError {
  const e = apply(root, layers, opts);
  assert.ok(e instanceof OcigenError, `expected OcigenError ${code}, got ${e}`);
  assert.equal((e as OcigenError).code, code, (e as Error).message);
  if (re) assert.match((e as Error).message, re);
  assert.ok(!(e as Error).message.includes("\n"), "one-line message");
  return e as OcigenError;
}

const read = (p: string) => fs.readFileSync(p, "utf8");
const lst = (p: string) => fs.lstatSync(p);
const exists = (p: string) => {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

function withEnv(name: string, fn: (e: Env) => void, opts: { skip?: string | false } = {}): void {
  test(name, { skip: opts.skip || false }, () => {
    const e = env();
    try {
      fn(e);
      e.canary.check();
    } finally {
      e.cleanup();
    }
  });
}

describe("cleanEntryPath", () => {
  test("clamps .. at the root and drops absolute prefixes", () => {
    assert.deepEqual(cleanEntryPath("../../etc/passwd"), ["etc", "passwd"]);
    assert.deepEqual(cleanEntryPath("/a/./b//c/"), ["a", "b", "c"]);
    assert.deepEqual(cleanEntryPath("a/../../b"), ["b"]);
    assert.deepEqual(cleanEntryPath("./"), []);
  });
});

describe("path escapes", () => {
  withEnv("../ and absolute names stay inside the root", (e) => {
    const rel = path.relative(e.root, e.canary.path); // ../outside/canary
    ok(e.root, [[
      { name: rel, data: "pwned" },
      { name: "../../../../../../../../" + e.canary.path, data: "pwned2" },
      { name: e.canary.path, data: "pwned3" },
      { name: "/outside/x", data: "x" },
    ]]);
    assert.equal(read(path.join(e.root, "outside/canary")), "pwned");
    assert.equal(read(path.join(e.root, e.canary.path)), "pwned3");
    assert.equal(read(path.join(e.root, "outside/x")), "x");
  });

  withEnv("symlink parent (absolute target) in the same layer", (e) => {
    ok(e.root, [[
      { name: "evil", type: "symlink", linkname: e.canary.dir },
      { name: "evil/canary", data: "pwned", mode: 0o777 },
      { name: "evil/new", data: "new" },
      { name: "rel", type: "symlink", linkname: "../../../../../../outside" },
      { name: "rel/canary", data: "pwned" },
    ]]);
    assert.equal(read(path.join(e.root, e.canary.dir, "canary")), "pwned");
    assert.equal(read(path.join(e.root, "outside/canary")), "pwned");
    assert.equal(lst(path.join(e.root, "evil")).isSymbolicLink(), true);
  });

  withEnv("symlink parent from a lower layer, and chains of symlinks", (e) => {
    ok(e.root, [
      [
        { name: "a", type: "symlink", linkname: "b" },
        { name: "b", type: "symlink", linkname: "/c/../../.." },
        { name: "c", type: "symlink", linkname: e.canary.dir + "/.." },
      ],
      [{ name: "a/outside/canary", data: "pwned" }, { name: "c/outside/canary2", data: "x" }],
    ]);
    assert.equal(read(path.join(e.root, "outside/canary")), "pwned");
    assert.ok(exists(path.join(e.root, path.dirname(e.canary.dir), "outside/canary2")));
  });

  withEnv("symlink at the final component is replaced, never followed", (e) => {
    ok(e.root, [
      [
        { name: "f", type: "symlink", linkname: e.canary.path },
        { name: "d", type: "symlink", linkname: e.canary.dir },
        { name: "s", type: "symlink", linkname: e.canary.path },
        { name: "fifo", type: "symlink", linkname: e.canary.path },
      ],
      [
        { name: "f", data: "new", mode: 0o777 },
        { name: "d", type: "dir", mode: 0o777 },
        { name: "s", type: "symlink", linkname: "elsewhere" },
        { name: "fifo", type: "fifo", mode: 0o777 },
      ],
    ]);
    assert.equal(read(path.join(e.root, "f")), "new");
    assert.ok(lst(path.join(e.root, "d")).isDirectory());
    assert.equal(fs.readlinkSync(path.join(e.root, "s")), "elsewhere");
  });

  withEnv("dir entry over an escaping symlink with --keep-dirlinks stays inside", (e) => {
    ok(e.root, [
      [{ name: "d", type: "symlink", linkname: e.canary.dir }],
      [{ name: "d", type: "dir", mode: 0o777, mtime: 5 }, { name: "d/canary", data: "pwned" }],
    ], { keepDirlinks: true });
    // d resolves (inside the root) to root/<canary dir>, which does not exist: d is replaced
    assert.ok(exists(path.join(e.root, "d/canary")) || exists(path.join(e.root, e.canary.dir, "canary")));
  });

  withEnv("--keep-dirlinks keeps a symlink to a directory inside the root", (e) => {
    ok(e.root, [
      [{ name: "real/", type: "dir" }, { name: "d", type: "symlink", linkname: "/real" }],
      [{ name: "d/", type: "dir", mode: 0o711 }, { name: "d/x", data: "x" }],
    ], { keepDirlinks: true });
    assert.ok(lst(path.join(e.root, "d")).isSymbolicLink());
    assert.equal(read(path.join(e.root, "real/x")), "x");
    assert.equal(lst(path.join(e.root, "real")).mode & 0o7777, 0o711);
  });

  withEnv("hard links cannot reach outside", (e) => {
    fails(e.root, [[{ name: "h", type: "link", linkname: path.relative(e.root, e.canary.path) }]], "EUNPACK", /does not exist/);
    fails(e.root, [[{ name: "h", type: "link", linkname: e.canary.path }]], "EUNPACK", /does not exist/);
    fails(e.root, [[
      { name: "l", type: "symlink", linkname: e.canary.dir },
      { name: "h", type: "link", linkname: "l/canary" },
    ]], "EUNPACK", /does not exist/);
  });

  withEnv("hard link to an escaping symlink links the symlink itself; rewriting it does not follow", (e) => {
    ok(e.root, [
      [{ name: "s", type: "symlink", linkname: e.canary.path }, { name: "h", type: "link", linkname: "s" }],
      [{ name: "h", data: "pwned", mode: 0o777 }, { name: "s", type: "dir" }],
    ]);
    assert.equal(read(path.join(e.root, "h")), "pwned");
  });

  withEnv("whiteouts and opaque markers through symlinks stay inside", (e) => {
    ok(e.root, [
      [
        { name: "s", type: "symlink", linkname: e.canary.dir },
        { name: "up", type: "symlink", linkname: "../../.." },
        { name: "keep", data: "k" },
      ],
      [
        { name: "s/.wh.canary" },
        { name: "s/.wh..wh..opq" },
        { name: "up/outside/.wh.canary" },
        { name: "up/.wh..wh..opq" },
        { name: "../.wh.outside" },
        { name: "../../.wh..wh..opq" },
      ],
    ]);
    // `up` resolves to the root: its opaque marker cleared the root's lower entries
    assert.equal(exists(path.join(e.root, "keep")), false);
  });

  withEnv("whiteout of a symlink removes the link, not its target", (e) => {
    ok(e.root, [[{ name: "s", type: "symlink", linkname: e.canary.path }], [{ name: ".wh.s" }]]);
    assert.equal(exists(path.join(e.root, "s")), false);
  });

  withEnv("symlink loops are a clear error", (e) => {
    fails(e.root, [[
      { name: "a", type: "symlink", linkname: "b" },
      { name: "b", type: "symlink", linkname: "a" },
      { name: "a/x", data: "x" },
    ]], "EUNPACK", /too many levels of symbolic links/);
    fails(e.root, [[{ name: "self", type: "symlink", linkname: "self/x" }, { name: "self/y", data: "" }]], "EUNPACK", /too many levels/);
  });

  withEnv("a file as a parent is an error", (e) => {
    fails(e.root, [[{ name: "f", data: "x" }, { name: "f/g", data: "y" }]], "EUNPACK", /f is not a directory/);
  });

  withEnv("NUL bytes in PAX names are refused", (e) => {
    fails(e.root, [[{ name: "x", data: "", pax: { path: "a\0b" } }]], "ETAR", /NUL/);
  });
});

describe("whiteouts", () => {
  withEnv(".wh., .wh.. and .wh... are refused and delete nothing", (e) => {
    for (const bad of [".wh.", ".wh..", ".wh...", "sub/.wh..", "sub/.wh..."]) {
      const root = path.join(e.dir, "r" + Math.random().toString(16).slice(2));
      fs.mkdirSync(root);
      fs.mkdirSync(path.join(root, "sub"));
      fs.writeFileSync(path.join(root, "sub/file"), "x");
      fails(root, [[{ name: bad }]], "EWHITEOUT", /invalid whiteout/);
      assert.equal(read(path.join(root, "sub/file")), "x");
    }
  });

  withEnv("whiteout hides lower entries; same-layer entries survive", (e) => {
    ok(e.root, [
      [
        { name: "a/x", data: "1" },
        { name: "a/y", data: "1" },
        { name: "d/sub/f", data: "1" },
        { name: "gone", data: "1" },
      ],
      [
        { name: "a/.wh.x" },
        { name: "a/z", data: "2" },
        { name: "a/.wh.z" }, // same layer: z survives
        { name: ".wh.d" },
        { name: ".wh.gone" },
        { name: ".wh.never-existed" },
        { name: "nodir/.wh.x" },
      ],
    ]);
    assert.equal(exists(path.join(e.root, "a/x")), false);
    assert.equal(read(path.join(e.root, "a/y")), "1");
    assert.equal(read(path.join(e.root, "a/z")), "2");
    assert.equal(exists(path.join(e.root, "d")), false);
    assert.equal(exists(path.join(e.root, "gone")), false);
    assert.equal(exists(path.join(e.root, "nodir")), false);
  });

  withEnv("opaque whiteout removes lower children wherever it sits in the layer", (e) => {
    const lower: TarWriterEntry[] = [
      { name: "o1/old", data: "1" },
      { name: "o1/olddir/x", data: "1" },
      { name: "o2/old", data: "1" },
      { name: "o2/keepdir/lower", data: "1" },
    ];
    ok(e.root, [
      lower,
      [
        { name: "o1/.wh..wh..opq" }, // before the layer's own entries
        { name: "o1/new", data: "2" },
        { name: "o2/new", data: "2" },
        { name: "o2/keepdir/upper", data: "2" },
        { name: "o2/.wh..wh..opq" }, // after them
      ],
    ]);
    const t = [...describeTree(e.root).keys()];
    assert.deepEqual(t, [".", "o1", "o1/new", "o2", "o2/keepdir", "o2/keepdir/upper", "o2/new"]);
  });

  withEnv("aufs metadata (.wh..wh.plnk) is skipped", (e) => {
    ok(e.root, [[{ name: ".wh..wh.plnk/123.456", data: "x" }, { name: ".wh..wh.aufs", data: "" }]]);
    assert.deepEqual(fs.readdirSync(e.root), []);
  });
});

describe("types, duplicates, links", () => {
  withEnv("type changes across layers and within a layer", (e) => {
    ok(e.root, [
      [
        { name: "f2d", data: "f" },
        { name: "d2f/child", data: "c" },
        { name: "d2s/child", data: "c" },
        { name: "s2d", type: "symlink", linkname: "target" },
        { name: "f2s", data: "f" },
        { name: "dup", data: "first" },
        { name: "dup", data: "second" },
        { name: "dd", type: "dir", mode: 0o700 },
        { name: "dd/keep", data: "k" },
        { name: "dd", type: "dir", mode: 0o750 },
      ],
      [
        { name: "f2d", type: "dir" },
        { name: "f2d/x", data: "x" },
        { name: "d2f", data: "now a file" },
        { name: "d2s", type: "symlink", linkname: "f2d" },
        { name: "s2d", type: "dir" },
        { name: "f2s", type: "symlink", linkname: "dup" },
      ],
    ]);
    assert.ok(lst(path.join(e.root, "f2d")).isDirectory());
    assert.equal(read(path.join(e.root, "f2d/x")), "x");
    assert.equal(read(path.join(e.root, "d2f")), "now a file");
    assert.equal(fs.readlinkSync(path.join(e.root, "d2s")), "f2d");
    assert.ok(lst(path.join(e.root, "s2d")).isDirectory());
    assert.equal(fs.readlinkSync(path.join(e.root, "f2s")), "dup");
    assert.equal(read(path.join(e.root, "dup")), "second");
    assert.equal(read(path.join(e.root, "dd/keep")), "k");
    assert.equal(lst(path.join(e.root, "dd")).mode & 0o7777, 0o750);
  });

  withEnv("hard links within a layer and to lower-layer files", (e) => {
    ok(e.root, [
      [{ name: "lower", data: "L", mode: 0o640 }, { name: "same", data: "S" }, { name: "h1", type: "link", linkname: "same" }],
      [{ name: "h2", type: "link", linkname: "/lower" }, { name: "sub/h3", type: "link", linkname: "../lower" }, { name: "self", data: "s" }, { name: "self", type: "link", linkname: "self" }],
    ]);
    assert.equal(lst(path.join(e.root, "h1")).ino, lst(path.join(e.root, "same")).ino);
    assert.equal(lst(path.join(e.root, "h2")).ino, lst(path.join(e.root, "lower")).ino);
    assert.equal(lst(path.join(e.root, "sub/h3")).ino, lst(path.join(e.root, "lower")).ino);
    assert.equal(lst(path.join(e.root, "lower")).nlink, 3);
    assert.equal(read(path.join(e.root, "self")), "s");
  });

  withEnv("hard link to a directory is refused", (e) => {
    fails(e.root, [[{ name: "d", type: "dir" }, { name: "h", type: "link", linkname: "d" }]], "EUNPACK", /is a directory/);
  });

  withEnv("the root entry sets root metadata; replacing the root is refused", (e) => {
    ok(e.root, [[{ name: "./", type: "dir", mode: 0o750, mtime: 1000 }, { name: "x", data: "" }]]);
    assert.equal(lst(e.root).mode & 0o7777, 0o750);
    assert.equal(Math.floor(lst(e.root).mtimeMs / 1000), 1000);
    fails(e.root, [[{ name: "/", data: "x" }]], "EUNPACK", /root directory/);
  });

  withEnv("unknown entry types are refused", (e) => {
    fails(e.root, [[{ name: "weird", type: "other", typeflag: "Z", data: "" }]], "EUNPACK", /unsupported tar entry type 'Z'/);
  });

  withEnv("long names, base-256 numbers (GNU) and PAX records", (e) => {
    const long = "d".repeat(120) + "/" + "e".repeat(150) + "/" + "f".repeat(200);
    const tarGnu = tarBytes([{ name: long, data: "gnu", uid: ROOT ? 3000000 : 0, mtime: 2 ** 33 + 5 }, { name: "ln", type: "symlink", linkname: "x".repeat(300) }], { format: "gnu" });
    const tarPax = tarBytes([{ name: long + "2", data: "pax", gid: ROOT ? 2500000 : 0, mtime: 1234.25 }, { name: "ünï", data: "u" }]);
    ok(e.root, [tarGnu, tarPax]);
    assert.equal(read(path.join(e.root, long)), "gnu");
    assert.equal(read(path.join(e.root, long + "2")), "pax");
    assert.equal(read(path.join(e.root, "ünï")), "u");
    assert.equal(fs.readlinkSync(path.join(e.root, "ln")), "x".repeat(300));
    assert.equal(lst(path.join(e.root, long)).mtimeMs, (2 ** 33 + 5) * 1000);
    assert.equal(lst(path.join(e.root, long + "2")).mtimeMs, 1234250);
    if (ROOT) {
      assert.equal(lst(path.join(e.root, long)).uid, 3000000);
      assert.equal(lst(path.join(e.root, long + "2")).gid, 2500000);
    }
  });

  withEnv("sparse files (GNU old, PAX 0.0, 0.1, 1.0) are expanded", (e) => {
    const data = new Uint8Array(200000);
    data.fill(1, 5000, 6000);
    data.fill(2, 150000, 150100);
    const sparse = [{ offset: 5000, size: 1000 }, { offset: 150000, size: 100 }, { offset: 200000, size: 0 }];
    ok(e.root, [
      tarBytes([{ name: "gnu", data, sparse, sparseFormat: "gnu" }], { format: "gnu" }),
      [
        { name: "p00", data, sparse, sparseFormat: "pax-0.0" },
        { name: "p01", data, sparse, sparseFormat: "pax-0.1" },
        { name: "dir/p10", data, sparse, sparseFormat: "pax-1.0" },
        { name: "many", data, sparse: Array.from({ length: 30 }, (_, i) => ({ offset: i * 1000, size: 10 })), sparseFormat: "pax-1.0" },
      ],
      tarBytes([{ name: "gnumany", data, sparse: Array.from({ length: 50 }, (_, i) => ({ offset: i * 100, size: 7 })), sparseFormat: "gnu" }], { format: "gnu" }),
    ]);
    for (const n of ["gnu", "p00", "p01", "dir/p10"]) {
      const got = fs.readFileSync(path.join(e.root, n));
      assert.equal(got.length, 200000, n);
      assert.ok(Buffer.from(data).equals(got), n);
    }
    const many = fs.readFileSync(path.join(e.root, "many"));
    const exp = new Uint8Array(200000);
    for (let i = 0; i < 30; i++) exp.set(data.subarray(i * 1000, i * 1000 + 10), i * 1000);
    assert.ok(Buffer.from(exp).equals(many));
    assert.equal(fs.statSync(path.join(e.root, "gnumany")).size, 200000);
  });
});

describe("metadata", () => {
  withEnv("modes: setuid/setgid/sticky survive chown; odd directory modes", (e) => {
    ok(e.root, [[
      { name: "suid", data: "x", mode: 0o4755, uid: 1, gid: 1 },
      { name: "sgid", data: "x", mode: 0o2711, uid: 2, gid: 2 },
      { name: "sticky", type: "dir", mode: 0o1777 },
      { name: "locked", type: "dir", mode: 0o000 },
      { name: "locked/inside", data: "x", mode: 0o000 },
      { name: "sgiddir", type: "dir", mode: 0o2755, uid: 5, gid: 5 },
    ]], { rootless: !ROOT });
    assert.equal(lst(path.join(e.root, "suid")).mode & 0o7777, 0o4755);
    assert.equal(lst(path.join(e.root, "sgid")).mode & 0o7777, 0o2711);
    assert.equal(lst(path.join(e.root, "sticky")).mode & 0o7777, 0o1777);
    assert.equal(lst(path.join(e.root, "locked")).mode & 0o7777, 0o000);
    assert.equal(lst(path.join(e.root, "sgiddir")).mode & 0o7777, 0o2755);
    if (ROOT) {
      assert.equal(lst(path.join(e.root, "suid")).uid, 1);
      assert.equal(lst(path.join(e.root, "sgid")).gid, 2);
      assert.equal(lst(path.join(e.root, "sgiddir")).uid, 5);
    }
    fs.chmodSync(path.join(e.root, "locked"), 0o755);
  });

  withEnv("directory mtimes are restored after their children; symlink mtimes set", (e) => {
    ok(e.root, [[
      { name: "d/", type: "dir", mtime: 1000 },
      { name: "d/sub/", type: "dir", mtime: 2000.5 },
      { name: "d/sub/f", data: "x", mtime: 3000 },
      { name: "d/g", data: "y", mtime: 4000 },
      { name: "d/l", type: "symlink", linkname: "g", mtime: 5000 },
    ]]);
    assert.equal(lst(path.join(e.root, "d")).mtimeMs, 1000000);
    assert.equal(lst(path.join(e.root, "d/sub")).mtimeMs, 2000500);
    assert.equal(lst(path.join(e.root, "d/sub/f")).mtimeMs, 3000000);
    assert.equal(lst(path.join(e.root, "d/l")).mtimeMs, 5000000);
  });

  withEnv("devices and FIFOs as root; placeholders in rootless mode", (e) => {
    const entries: TarWriterEntry[] = [
      { name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "dev/loop0", type: "block", devmajor: 7, devminor: 0, mode: 0o660 },
      { name: "pipe", type: "fifo", mode: 0o600 },
    ];
    if (ROOT) {
      const r1 = path.join(e.dir, "asroot");
      fs.mkdirSync(r1);
      ok(r1, [entries], { rootless: false });
      assert.ok(lst(path.join(r1, "dev/null")).isCharacterDevice());
      assert.equal(lst(path.join(r1, "dev/null")).rdev, 259);
      assert.ok(lst(path.join(r1, "dev/loop0")).isBlockDevice());
      assert.ok(lst(path.join(r1, "pipe")).isFIFO());
      assert.equal(lst(path.join(r1, "dev/null")).mode & 0o7777, 0o666);
    }
    const r2 = path.join(e.dir, "rootless");
    fs.mkdirSync(r2);
    ok(r2, [entries, [{ name: "owned", data: "x", uid: 1000, gid: 1000 }]], { rootless: true });
    assert.ok(lst(path.join(r2, "dev/null")).isFile());
    assert.equal(lst(path.join(r2, "dev/null")).size, 0);
    assert.ok(lst(path.join(r2, "pipe")).isFIFO());
    assert.equal(lst(path.join(r2, "owned")).uid, process.getuid?.() ?? 0);
  });

  withEnv("uid/gid maps", (e) => {
    ok(e.root, [[{ name: "f", data: "x", uid: 5, gid: 6 }]], {
      rootless: !ROOT,
      uidMap: [{ containerID: 0, hostID: 100000, size: 65536 }],
      gidMap: [{ containerID: 0, hostID: 200000, size: 65536 }],
    });
    if (ROOT) {
      assert.equal(lst(path.join(e.root, "f")).uid, 100005);
      assert.equal(lst(path.join(e.root, "f")).gid, 200006);
    }
    fails(e.root, [[{ name: "g", data: "x", uid: 70000 }]], "EUNPACK", /outside the uid map/, {
      rootless: !ROOT,
      uidMap: [{ containerID: 0, hostID: 100000, size: 65536 }],
    });
  });

  const getfattr = have("getfattr") && have("setfattr");
  withEnv("xattrs: user.* applied, security.selinux dropped", (e) => {
    ok(e.root, [[
      { name: "x", data: "x", xattrs: { "user.a": "1", "user.bin": new Uint8Array([0, 255, 10]), "security.selinux": "system_u:object_r:bin_t:s0" } },
      { name: "d", type: "dir", xattrs: { "user.d": "dir" } },
      { name: "replaced", data: "1", xattrs: { "user.old": "1" } },
      { name: "replaced", data: "2" },
    ]]);
    const r = spawnSync("getfattr", ["-h", "-d", "-m", "-", "-e", "hex", "x", "d", "replaced"], { cwd: e.root, encoding: "utf8" });
    assert.match(r.stdout, /user\.a=0x31/);
    assert.match(r.stdout, /user\.bin=0x00ff0a/);
    assert.match(r.stdout, /user\.d=0x646972/);
    assert.doesNotMatch(r.stdout, /selinux/);
    assert.doesNotMatch(r.stdout, /user\.old/);
  }, { skip: getfattr ? false : "getfattr/setfattr (attr) not installed" });
});

describe("rootless", () => {
  withEnv("owners are recorded, not applied", (e) => {
    const state = new ApplyState(e.root, { rootless: true });
    const tar = tarBytes([{ name: "a", data: "", uid: 7, gid: 8 }, { name: "b", type: "dir", uid: 9, gid: 9 }]);
    const p = new TarParser(new LayerApplier(state, "layer"));
    p.write(tar);
    p.end();
    assert.deepEqual(state.owners.get("a"), { uid: 7, gid: 8 });
    assert.deepEqual(state.owners.get("b"), { uid: 9, gid: 9 });
  });
});
