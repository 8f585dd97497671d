import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { BUNDLE_MANIFEST_NAME, decodeEntry, encodeEntry, readBundleManifest, writeBundleManifest } from "../src/bundle/manifest.ts";
import { comparePaths, CtimeWitness, sameTime, scanTree, settleTimestamps } from "../src/bundle/scan.ts";
import { diffTree } from "../src/bundle/diff.ts";
import { parseMtree, unvis } from "../src/bundle/mtree.ts";
import { readTreeXattrs, setXattr, xattrsSupported } from "../src/bundle/xattr.ts";
import { makeMask, normalizeImagePath } from "../src/repack/repack.ts";
import { tmpdir } from "./repack-util.ts";

function withTree(fn: (root: string, dir: string) => void | Promise<void>) {
  return async () => {
    const dir = tmpdir("ocigen-bundle-");
    const root = path.join(dir, "rootfs");
    fs.mkdirSync(root);
    try {
      await fn(root, dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
}

const w = (root: string, p: string, data = "x") => {
  fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
  fs.writeFileSync(path.join(root, p), data);
};

function changes(old: ReturnType<typeof scanTree>, root: string) {
  return diffTree(old, scanTree(root), { rootfs: root, compareXattrs: true }).map((c) => `${c.kind} ${c.path}`);
}

describe("bundle manifest", () => {
  test("comparePaths is depth-first order with sorted siblings", () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.constantFrom("a", "b", "a-b", "a.b", "ab", "Z", "é"), { minLength: 1, maxLength: 4 }), { maxLength: 30 }), (parts) => {
        const paths = [...new Set(parts.map((p) => p.join("/")))];
        const sorted = [...paths].sort(comparePaths);
        // every path comes after all of its ancestors that are in the list
        for (let i = 0; i < sorted.length; i++) {
          for (let j = i + 1; j < sorted.length; j++) assert.ok(!sorted[i].startsWith(sorted[j] + "/"));
        }
        // component-wise comparison
        const cmp = (a: string, b: string) => {
          const x = a.split("/"), y = b.split("/");
          for (let k = 0; k < Math.min(x.length, y.length); k++) if (x[k] !== y[k]) return x[k] < y[k] ? -1 : 1;
          return x.length - y.length;
        };
        assert.deepEqual(sorted, [...paths].sort(cmp));
      }),
    );
    assert.equal(comparePaths(".", "a"), -1);
  });

  test("entries survive encode/decode; the file is written atomically and read back", withTree(async (root, dir) => {
    w(root, "etc/a", "hello");
    fs.symlinkSync("a", path.join(root, "etc/l"));
    fs.linkSync(path.join(root, "etc/a"), path.join(root, "etc/h"));
    const entries = scanTree(root);
    for (const e of entries) assert.deepEqual(decodeEntry(encodeEntry(e)), e);
    await writeBundleManifest(dir, root, { digests: true });
    const m = readBundleManifest(dir);
    assert.equal(m.header.rootfs, "rootfs");
    assert.equal(m.header.digests, true);
    assert.deepEqual(m.entries.map((e) => e.path), [".", "etc", "etc/a", "etc/h", "etc/l"]);
    assert.equal(m.entries[2].digest, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    assert.equal(m.entries[4].link, "a");
    assert.deepEqual(fs.readdirSync(dir).sort(), [BUNDLE_MANIFEST_NAME, "rootfs"]);
    fs.writeFileSync(path.join(dir, BUNDLE_MANIFEST_NAME), "garbage\n");
    assert.throws(() => readBundleManifest(dir), /line 1: not a bundle manifest header/);
  }));

  test("diff: add, modify, delete, deleted tree = one whiteout, type changes, chmod", withTree(async (root) => {
    w(root, "keep", "k");
    w(root, "mod", "m");
    w(root, "del", "d");
    w(root, "tree/a/b/c", "c");
    w(root, "f2d", "f");
    w(root, "d2l/child", "c");
    w(root, "perm", "p");
    const old = scanTree(root);
    await settleTimestamps(old);
    assert.deepEqual(changes(old, root), [], "nothing changed");
    w(root, "new/x", "n");
    fs.appendFileSync(path.join(root, "mod"), "more");
    fs.unlinkSync(path.join(root, "del"));
    fs.rmSync(path.join(root, "tree"), { recursive: true });
    fs.unlinkSync(path.join(root, "f2d"));
    w(root, "f2d/inside", "i");
    fs.rmSync(path.join(root, "d2l"), { recursive: true });
    fs.symlinkSync("keep", path.join(root, "d2l"));
    fs.chmodSync(path.join(root, "perm"), 0o600);
    assert.deepEqual(changes(old, root), [
      "modify .",
      "replace d2l",
      "delete del",
      "replace f2d",
      "add f2d/inside",
      "modify mod",
      "add new",
      "add new/x",
      "modify perm",
      "delete tree",
    ]);
  }));

  test("diff: a new hard link re-emits its whole inode group; sockets are skipped", withTree(async (root) => {
    w(root, "a", "same");
    w(root, "other", "o");
    const old = scanTree(root);
    await settleTimestamps(old);
    fs.linkSync(path.join(root, "a"), path.join(root, "b"));
    assert.deepEqual(changes(old, root), ["modify .", "modify a", "add b"]);
  }));

  test("diff: sockets are skipped; an xattr removal is a change", withTree(async (root) => {
    w(root, "f", "x");
    if (xattrsSupported()) setXattr(path.join(root, "f"), "user.k", new Uint8Array([1]));
    const old = scanTree(root);
    await settleTimestamps(old);
    const net = await import("node:net");
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(path.join(root, "sock"), r));
    try {
      assert.ok(fs.lstatSync(path.join(root, "sock")).isSocket());
      const d = changes(old, root);
      assert.ok(!d.some((c) => c.endsWith("sock")), d.join(","));
      if (xattrsSupported()) {
        const { spawnSync } = await import("node:child_process");
        spawnSync("setfattr", ["-x", "user.k", path.join(root, "f")]);
        assert.ok(changes(old, root).includes("modify f"));
      }
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  }));

  test("diff: a touched file with an unchanged digest is not re-emitted", withTree(async (root) => {
    w(root, "f", "content");
    const old = scanTree(root);
    await settleTimestamps(old);
    for (const e of old) if (e.path === "f") e.digest = "sha256:ed7002b439e9ac845f22357d822bac1444730fbdb6016d3ec9432297b9ec9f73";
    fs.chmodSync(path.join(root, "f"), 0o644); // ctime moves, nothing else
    fs.writeFileSync(path.join(root, "f"), "content");
    const st = fs.statSync(path.join(root, "f"));
    const o = old.find((e) => e.path === "f")!;
    fs.utimesSync(path.join(root, "f"), st.atime, new Date(Number(o.mtimeNs / 1_000_000n)));
    const now = scanTree(root);
    const f = now.find((e) => e.path === "f")!;
    f.mtimeNs = o.mtimeNs; // ms precision of utimes: pin the ns
    const d = diffTree(old, now, { rootfs: root }).map((c) => c.path);
    assert.ok(!d.includes("f"), d.join(","));
  }));

  test("timestamps compare at the coarser precision (Deno reports ms / whole seconds)", () => {
    assert.ok(sameTime(1700000000123456789n, 1700000000123000000n));
    assert.ok(sameTime(1700000000123456789n, 1700000000000000000n));
    assert.ok(!sameTime(1700000000123456789n, 1700000001000000000n));
    assert.ok(!sameTime(1700000000123456789n, 1700000000123456788n));
  });

  test("masks: volumes and --mask-path hide a subtree, not its siblings", () => {
    const m = makeMask(["/var/lib/data/", "tmp"]);
    assert.ok(m("var/lib/data") && m("var/lib/data/x/y") && m("tmp/a"));
    assert.ok(!m("var/lib/database") && !m("var/lib") && !m("tmpfile"));
    assert.equal(normalizeImagePath("/a//b/../c/"), "a/c");
    assert.equal(normalizeImagePath("/"), ".");
  });

  test("umoci mtree specs parse into entries", () => {
    const text = [
      "#          user: root",
      "/set type=file nlink=1 mode=0664 uid=0 gid=0",
      ". size=4096 type=dir mode=0755 nlink=3 tar_time=1700000000.000000000",
      "    null size=0 type=char mode=0644 tar_time=1700000000.000000000",
      "",
      "etc size=4096 type=dir mode=0755 nlink=3 tar_time=1700000001.500000000",
      "    hl size=3 uid=5 gid=6 mode=0644 nlink=2 tar_time=1 sha256digest=abcd xattr.user.k=dg==",
      "    l size=1 type=link mode=0777 link=a\\040b tar_time=1",
      "sub\\040dir size=4096 type=dir mode=0755 nlink=2 tar_time=1",
      "    f\\040x size=3 mode=0600 tar_time=1",
      "..",
      "..",
      "..",
    ].join("\n");
    const e = parseMtree(text);
    assert.deepEqual(e.map((x) => `${x.type} ${x.path}`), ["dir .", "char null", "dir etc", "file etc/hl", "symlink etc/l", "dir etc/sub dir", "file etc/sub dir/f x"]);
    const hl = e[3];
    assert.equal(hl.uid, 5);
    assert.equal(hl.mode, 0o644);
    assert.equal(hl.digest, "sha256:abcd");
    assert.deepEqual(hl.xattrs, { "user.k": "dg==" });
    assert.equal(e[4].link, "a b");
    assert.equal(e[2].mtimeNs, 1700000001500000000n);
    assert.equal(e[6].mode, 0o600);
    assert.equal(unvis("a\\\\b\\nc"), "a\\b\nc");
  });

  test("xattrs of a whole tree in one getfattr pass", { skip: xattrsSupported() ? undefined : "getfattr not installed" }, withTree(async (root) => {
    w(root, "with xattr\nnewline", "x");
    fs.symlinkSync("with xattr\nnewline", path.join(root, "link"));
    setXattr(path.join(root, "with xattr\nnewline"), "user.bin", new Uint8Array([0, 255, 10]));
    const x = readTreeXattrs(root);
    assert.deepEqual([...x.keys()], ["with xattr\nnewline"]);
    assert.deepEqual([...x.get("with xattr\nnewline")!["user.bin"]], [0, 255, 10]);
  }));
});


describe("ctime witness: the settle wait", () => {
  const S = 1_700_000_000_000_000_000n; // a whole second, in ns
  const ms = (n: number) => BigInt(Math.round(n * 1e6));
  const windowOf = (ctimes: bigint[]) => {
    const w = new CtimeWitness();
    for (const c of ctimes) w.add(c);
    return w.window();
  };

  test("two steps of the clock that stamped the tree, within 2..20 ms", () => {
    assert.equal(windowOf([S + ms(4), S + ms(8), S + ms(8), S + ms(16)]), ms(8), "HZ=250: 4 ms steps");
    assert.equal(windowOf([S + ms(1), S + ms(2), S + ms(3)]), ms(2), "HZ=1000: 1 ms steps");
    assert.equal(windowOf([S + 100_000n, S + 130_000n]), ms(2), "fine-grained stamps: the 2 ms floor");
    assert.equal(windowOf([S + ms(10), S + ms(25)]), ms(20), "a 15 ms gap: the 20 ms cap");
    assert.equal(windowOf([S + ms(7), S + ms(7), S + ms(7)]), ms(20), "one distinct ctime: no step known, 20 ms");
    assert.equal(windowOf([S, S + 1_000_000_000n]), 1_010_000_000n, "whole seconds only: ~1 s");
    assert.equal(windowOf([S, S + ms(4)]), ms(8), "one ctime off the second is enough to leave the 1 s case");
  });

  test("more distinct ctimes than it keeps: the window can only get longer", () => {
    const w = new CtimeWitness();
    for (let i = 1; i <= 4096; i++) w.add(S + ms(10 * i));
    w.add(S + ms(10 * 4096 + 1)); // a 1 ms gap, past what is kept
    assert.equal(w.window(), ms(20), "the kept samples' 10 ms step (capped), not the unseen 1 ms");
  });

  test("settle waits until the clock is a window past the newest ctime", async () => {
    // a timer counts whole milliseconds of another clock and may fire a little early (a single
    // timer returned early ~2% of the time here): many rounds, each must have waited enough
    for (let round = 0; round < 100; round++) {
      const newest = BigInt(Date.now()) * 1_000_000n;
      const w = new CtimeWitness();
      w.add(newest - ms(4));
      w.add(newest);
      await w.settle();
      assert.ok(BigInt(Date.now()) * 1_000_000n >= newest + ms(8), `round ${round}: waited two 4 ms steps`);
    }
    const empty = new CtimeWitness();
    await empty.settle(); // nothing recorded: returns at once
  });

  // the property the wait exists for, on this kernel and file system: a
  // change right after the settle never gets the ctime the scan recorded
  test("a change right after settling gets a new ctime (same size, mtime put back)", withTree(async (root) => {
    for (let round = 0; round < 12; round++) {
      for (let i = 0; i < 40; i++) {
        w(root, `d${round}/f${i}`, "abcd");
        if (i % 10 === 9) await new Promise((r) => setTimeout(r, 2)); // span a few clock ticks
      }
      const entries = scanTree(root);
      await settleTimestamps(entries);
      const newest = entries.reduce((a, e) => (e.ctimeNs > a.ctimeNs ? e : a));
      const abs = path.join(root, newest.path);
      const before = fs.lstatSync(abs, { bigint: true });
      if (newest.type === "file") fs.writeFileSync(abs, "wxyz");
      else fs.chmodSync(abs, Number(before.mode & 0o7777n));
      fs.utimesSync(abs, new Date(Number(before.atimeNs / 1_000_000n)), new Date(Number(before.mtimeNs / 1_000_000n)));
      const after = fs.lstatSync(abs, { bigint: true });
      assert.notEqual(after.ctimeNs, newest.ctimeNs, `${newest.path}: changed right after the settle, yet its ctime is the recorded one`);
    }
  }));
});
