// umoci 0.4.7 command-line compatibility, written from umoci's documented
// behaviour: argument checks (empty tags, ':' in layout paths, empty insert
// targets, --no-history with --history.*, option values starting with '-'),
// umoci's log level names, runtime-config defaults (args ["sh"], a named
// user without a rootfs), insert --opaque of a file, hard links to symlinks
// and empty-valued xattrs through repack, --keep-dirlinks over a symlink
// loop, the bundle's sha256_<digest>.mtree and the user.rootlesscontainers
// xattr.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { addTarLayer, convertConfig, Layout, tarBytes } from "../src/mod.ts";
import { imageWith as imageWithTag, ocigen } from "./cli-in-process.ts";
import { withTemp } from "../fixtures/layout.ts";
import { parseMtree, vis } from "../src/bundle/mtree.ts";
import { decodeRootlessOwner, encodeRootlessOwner } from "../src/bundle/rootlesscontainers.ts";
import { readPathsXattrs, setXattr, xattrsSupported } from "../src/bundle/xattr.ts";
import { isRoot, needTool, run } from "./repack-util.ts";

const withTmp = (fn: (dir: string) => Promise<void>) => withTemp("ocigen-umoci-compat-", fn);
/** A layout with tag `latest` holding one layer of `entries`. */
const imageWith = (dir: string, entries: Parameters<typeof tarBytes>[0]) => imageWithTag(dir, entries, "latest");

const tags = async (l: string) => (await Layout.open(l)).listTags();

test("umoci-compat: an empty tag (LAYOUT:) is refused by every --image verb; rm does not delete latest", async () => {
  await withTmp(async (dir) => {
    const l = await imageWith(dir, [{ name: "f", data: "x" }]);
    fs.writeFileSync(path.join(dir, "empty.tar"), tarBytes([]));
    fs.mkdirSync(path.join(dir, "src"));
    const before = await tags(l);
    const cases: string[][] = [
      ["config", "--image", `${l}:`, "--config.user", "1:1"],
      ["new", "--image", `${l}:`],
      ["raw", "add-layer", "--image", `${l}:`, path.join(dir, "empty.tar")],
      ["raw", "runtime-config", "--image", `${l}:`, path.join(dir, "c.json")],
      ["raw", "unpack", "--image", `${l}:`, path.join(dir, "r")],
      ["unpack", "--image", `${l}:`, path.join(dir, "b")],
      ["repack", "--image", `${l}:`, path.join(dir, "b")],
      ["stat", "--image", `${l}:`],
      ["tag", "--image", `${l}:`, "other"],
      ["rm", "--image", `${l}:`],
      ["insert", "--image", `${l}:`, path.join(dir, "src"), "/x"],
    ];
    for (const args of cases) {
      const r = await ocigen(...args);
      assert.equal(r.code, 1, `${args.slice(0, 2).join(" ")} accepted an empty tag`);
      assert.match(r.stderr, /empty tag/, args.join(" "));
      assert.equal(r.stdout, "");
    }
    assert.deepEqual(await tags(l), before, "nothing changed, latest is still there");
    assert.equal(fs.existsSync(path.join(dir, "c.json")) || fs.existsSync(path.join(dir, "r")) || fs.existsSync(path.join(dir, "b")), false);
  });
});

test("umoci-compat: a --layout path with ':' is refused (init, ls, gc)", async () => {
  await withTmp(async (dir) => {
    for (const verb of ["init", "ls", "gc"]) {
      const r = await ocigen(verb, "--layout", path.join(dir, "new:latest"));
      assert.equal(r.code, 1, verb);
      assert.match(r.stderr, /contains ':'/);
    }
    assert.equal(fs.existsSync(path.join(dir, "new:latest")), false);
    assert.equal(fs.existsSync(path.join(dir, "new")), false);
  });
});

test("umoci-compat: insert refuses an empty SRC or TARGET; --opaque of a file is accepted", async () => {
  await withTmp(async (dir) => {
    const l = await imageWith(dir, [{ name: "etc/", type: "dir" }, { name: "etc/a", data: "lower" }]);
    fs.mkdirSync(path.join(dir, "src"));
    let r = await ocigen("insert", "--image", `${l}:latest`, path.join(dir, "src"), "");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /TARGET must not be empty/);
    r = await ocigen("insert", "--image", `${l}:latest`, "", "/x");
    assert.equal(r.code, 1);
    r = await ocigen("insert", "--image", `${l}:latest`, "--whiteout", "");
    assert.equal(r.code, 1);
    const n = (await (await Layout.open(l)).resolve("latest")).manifest.layers.length;
    assert.equal(n, 1, "no layer added");

    fs.writeFileSync(path.join(dir, "file"), "content");
    r = await ocigen("insert", "--image", `${l}:latest`, "--opaque", path.join(dir, "file"), "/etc/a");
    assert.equal(r.code, 0, r.stderr);
    r = await ocigen("raw", "unpack", "--image", `${l}:latest`, path.join(dir, "root"));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(path.join(dir, "root/etc/a"), "utf8"), "content");
  });
});

test("umoci-compat: option values starting with '-' are values (--config.cmd -v)", async () => {
  await withTmp(async (dir) => {
    const l = await imageWith(dir, [{ name: "f", data: "x" }]);
    const r = await ocigen("config", "--image", `${l}:latest`, "--config.cmd", "cat", "--config.cmd", "-v");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "", "no version printed");
    const img = await (await Layout.open(l)).resolve("latest");
    assert.deepEqual(img.config.config?.Cmd, ["cat", "-v"]);
    // before the verb, -v is still the program's --version
    const v = await ocigen("-v");
    assert.equal(v.code, 0);
    assert.match(v.stdout, /\d+\.\d+/);
    // after the verb it is not a global flag
    const bad = await ocigen("ls", "-v", "--layout", l);
    assert.equal(bad.code, 1);
  });
});

test("umoci-compat: --log takes umoci's level names; --log with --verbose is refused", async () => {
  await withTmp(async (dir) => {
    const l = path.join(dir, "l");
    assert.equal((await ocigen("--verbose", "init", "--layout", l)).code, 0);
    for (const level of ["debug", "info", "warn", "warning", "error", "fatal"]) {
      const r = await ocigen(`--log=${level}`, "new", "--image", `${l}:${level}`);
      assert.equal(r.code, 0, `${level}: ${r.stderr}`);
    }
    assert.equal((await ocigen("--log=foobar", "new", "--image", `${l}:x`)).code, 1);
    const r = await ocigen("--log=debug", "--verbose", "new", "--image", `${l}:y`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /mutually exclusive/);
    assert.equal((await tags(l)).includes("y"), false);
    // fatal still prints the failure line
    const f = await ocigen("--log=fatal", "stat", "--image", `${l}:missing`);
    assert.equal(f.code, 1);
    assert.notEqual(f.stderr, "");
  });
});

test("umoci-compat: --no-history with any --history.* is refused by config, repack, insert", async () => {
  await withTmp(async (dir) => {
    const l = await imageWith(dir, [{ name: "f", data: "x" }]);
    fs.writeFileSync(path.join(dir, "g"), "y");
    const before = (await (await Layout.open(l)).resolve("latest")).manifestDescriptor.digest;
    const cases: string[][] = [
      ["config", "--image", `${l}:latest`, "--no-history", "--history.comment", "c", "--config.user", "1:1"],
      ["insert", "--image", `${l}:latest`, "--no-history", "--history.author", "a", path.join(dir, "g"), "/g"],
      ["repack", "--image", `${l}:latest`, "--no-history", "--history.created_by", "x", path.join(dir, "nobundle")],
    ];
    for (const args of cases) {
      const r = await ocigen(...args);
      assert.equal(r.code, 1, args[0]);
      assert.match(r.stderr, /--no-history and --history\.\w+ may not be specified together/, args[0]);
    }
    assert.equal((await (await Layout.open(l)).resolve("latest")).manifestDescriptor.digest, before);
  });
});

test("umoci-compat: runtime config runs sh without Entrypoint/Cmd; a named user without a rootfs warns and runs as 0:0 only where asked", async () => {
  const spec = convertConfig({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, config: {} });
  assert.deepEqual(spec.process.args, ["sh"]);
  const named = { architecture: "amd64", os: "linux", rootfs: { type: "layers" as const, diff_ids: [] }, config: { User: "testuser:group" } };
  assert.throws(() => convertConfig(named), /Cannot resolve (image )?user/);
  const warnings: string[] = [];
  const s = convertConfig(named, { unresolvedUserAsRoot: { warn: (m) => warnings.push(m) } });
  assert.deepEqual([s.process.user.uid, s.process.user.gid], [0, 0]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /testuser/);
  await withTmp(async (dir) => {
    const l = await imageWith(dir, [{ name: "etc/", type: "dir" }, { name: "etc/passwd", data: "root:x:0:0::/root:/bin/sh\n" }]);
    assert.equal((await ocigen("config", "--image", `${l}:latest`, "--config.user", "testuser")).code, 0);
    const out = path.join(dir, "config.json");
    let r = await ocigen("raw", "runtime-config", "--image", `${l}:latest`, out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warn: .*testuser/);
    assert.deepEqual(JSON.parse(fs.readFileSync(out, "utf8")).process.user, { uid: 0, gid: 0 });
    // with a rootfs the name must resolve (as umoci); so must it for unpack
    fs.mkdirSync(path.join(dir, "rootfs/etc"), { recursive: true });
    fs.writeFileSync(path.join(dir, "rootfs/etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
    r = await ocigen("raw", "runtime-config", "--image", `${l}:latest`, "--rootfs", path.join(dir, "rootfs"), path.join(dir, "c2.json"));
    assert.equal(r.code, 1);
    r = await ocigen("unpack", "--image", `${l}:latest`, path.join(dir, "bundle"));
    assert.equal(r.code, 1);
    assert.equal(fs.existsSync(path.join(dir, "bundle")), false);
  });
});

test("umoci-compat: unpack --keep-dirlinks replaces a symlink loop by the layer's directory", async () => {
  await withTmp(async (dir) => {
    const l = await imageWith(dir, [
      { name: "dir/", type: "dir" },
      { name: "dir/a", data: "a" },
      { name: "link", type: "symlink", linkname: "dir" },
      { name: "loop1", type: "symlink", linkname: "loop2" },
      { name: "loop2", type: "symlink", linkname: "loop1" },
    ]);
    fs.writeFileSync(path.join(dir, "l2.tar"), tarBytes([
      { name: "link/", type: "dir" },
      { name: "link/b", data: "b" },
      { name: "loop1/", type: "dir" },
      { name: "loop1/broken", data: "c" },
    ]));
    await addTarLayer(await Layout.open(l), path.join(dir, "l2.tar"), { tag: "latest", compression: "none" });
    const r = await ocigen("raw", "unpack", "--keep-dirlinks", "--image", `${l}:latest`, path.join(dir, "root"));
    assert.equal(r.code, 0, r.stderr);
    const root = path.join(dir, "root");
    assert.ok(fs.lstatSync(path.join(root, "link")).isSymbolicLink(), "a link to a directory is kept");
    assert.equal(fs.readFileSync(path.join(root, "dir/b"), "utf8"), "b");
    assert.ok(fs.lstatSync(path.join(root, "loop1")).isDirectory(), "the loop is broken");
    assert.equal(fs.readFileSync(path.join(root, "loop1/broken"), "utf8"), "c");
    assert.equal(fs.readlinkSync(path.join(root, "loop2")), "loop1");
  });
});

test("umoci-compat: repack keeps a hard link to a symlink", async () => {
  await withTmp(async (dir) => {
    const l = await imageWith(dir, [{ name: "f", data: "x" }]);
    const b = path.join(dir, "b");
    assert.equal((await ocigen("unpack", "--image", `${l}:latest`, b)).code, 0);
    fs.symlinkSync("f", path.join(b, "rootfs/sym"));
    fs.linkSync(path.join(b, "rootfs/sym"), path.join(b, "rootfs/hard"));
    assert.equal(fs.lstatSync(path.join(b, "rootfs/hard")).nlink, 2);
    const r = await ocigen("repack", "--image", `${l}:latest`, b);
    assert.equal(r.code, 0, r.stderr);
    const root = path.join(dir, "root");
    assert.equal((await ocigen("raw", "unpack", "--image", `${l}:latest`, root)).code, 0);
    const a = fs.lstatSync(path.join(root, "sym"));
    const h = fs.lstatSync(path.join(root, "hard"));
    assert.ok(a.isSymbolicLink() && h.isSymbolicLink());
    assert.equal(a.ino, h.ino, "one inode");
    assert.equal(h.nlink, 2);
  });
});

test("umoci-compat: empty-valued xattrs are dropped by repack with a warning and never created by unpack", async (t) => {
  if (!xattrsSupported()) {
    const why = needTool("getfattr");
    if (why) return t.skip(why);
  }
  await withTmp(async (dir) => {
    // a layer with an empty PAX xattr record, on a directory with and without other xattrs
    const l = await imageWith(dir, [
      { name: "d1/", type: "dir", xattrs: { "user.empty": new Uint8Array(0) } },
      { name: "d2/", type: "dir", xattrs: { "user.empty": new Uint8Array(0), "user.full": new TextEncoder().encode("v") } },
    ]);
    const root = path.join(dir, "root");
    const r0 = await ocigen("raw", "unpack", "--image", `${l}:latest`, root);
    assert.equal(r0.code, 0, r0.stderr);
    const x = readPathsXattrs(root, ["d1", "d2"]);
    assert.equal(x.get("d1")?.["user.empty"], undefined);
    assert.equal(x.get("d2")?.["user.empty"], undefined);
    assert.equal(new TextDecoder().decode(x.get("d2")?.["user.full"]), "v");

    const b = path.join(dir, "b");
    assert.equal((await ocigen("unpack", "--image", `${l}:latest`, b)).code, 0);
    fs.mkdirSync(path.join(b, "rootfs/new"));
    run("setfattr", ["-n", "user.empty_cont", "-v", "", path.join(b, "rootfs/new")]);
    setXattr(path.join(b, "rootfs/new"), "user.kept", new TextEncoder().encode("yes"));
    const r = await ocigen("repack", "--image", `${l}:latest`, b);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warn: new: ignoring empty-valued xattr "user.empty_cont"/);
    const root2 = path.join(dir, "root2");
    assert.equal((await ocigen("raw", "unpack", "--image", `${l}:latest`, root2)).code, 0);
    const y = readPathsXattrs(root2, ["new"]).get("new") ?? {};
    assert.equal(y["user.empty_cont"], undefined);
    assert.equal(new TextDecoder().decode(y["user.kept"]), "yes");
  });
});

test("umoci-compat: the bundle has umoci's sha256_<digest>.mtree in go-mtree's format", async () => {
  assert.equal(vis("sub dir"), "sub\\040dir");
  assert.equal(vis("a\\b*#"), "a\\\\b\\052\\043");
  assert.equal(vis("é"), "\\303\\251");
  await withTmp(async (dir) => {
    const l = await imageWith(dir, [
      { name: "etc/", type: "dir", mode: 0o755, mtime: 1700000000 },
      { name: "etc/f", data: "hi\n", mode: 0o644, mtime: 1700000001 },
      { name: "etc/lnk", type: "symlink", linkname: "f", mtime: 1700000002 },
      { name: "etc/sub dir/", type: "dir", mode: 0o700, uid: 7, gid: 8, mtime: 1700000003 },
      { name: "bin", data: "#!", mode: 0o4755, mtime: 1700000004 },
    ]);
    const b = path.join(dir, "b");
    const r = await ocigen("unpack", "--image", `${l}:latest`, b);
    assert.equal(r.code, 0, r.stderr);
    const digest = (await (await Layout.open(l)).resolve("latest")).manifestDescriptor.digest;
    const file = path.join(b, `sha256_${digest.slice(7)}.mtree`);
    const text = fs.readFileSync(file, "utf8");
    const body = text.split("\n").filter((s) => !s.startsWith("#") && s !== "");
    assert.match(text, /^# +keywords: size,type,uid,gid,mode,link,nlink,tar_time,sha256digest,xattr$/m);
    assert.equal(body[0], "/set type=file nlink=1 mode=0664 uid=0 gid=0");
    assert.match(body[1], /^\. size=\d+ type=dir mode=0755 nlink=\d+ tar_time=\d+\.000000000$/);
    // files before directories; defaults of /set left out
    assert.match(body[2], /^ {4}bin size=2 mode=04755 tar_time=1700000004\.000000000 sha256digest=[0-9a-f]{64}$/);
    assert.match(body[3], /^etc size=\d+ type=dir mode=0755 nlink=3 tar_time=1700000000\.000000000$/);
    assert.equal(body[4], `    f size=3 mode=0644 tar_time=1700000001.000000000 sha256digest=${"98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4"}`);
    assert.equal(body[5], "    lnk size=1 type=link mode=0777 link=f tar_time=1700000002.000000000");
    if (isRoot) {
      assert.equal(body[6], "/set type=file nlink=1 mode=0664 uid=7 gid=8");
      assert.match(body[7], /^sub\\040dir size=\d+ type=dir mode=0700 nlink=2 tar_time=1700000003\.000000000$/);
    }
    assert.deepEqual(body.slice(-3), ["..", "..", ".."]);
    // our own reader reads it back
    const entries = parseMtree(text);
    assert.deepEqual(entries.map((e) => e.path), [".", "bin", "etc", "etc/f", "etc/lnk", "etc/sub dir"]);
    assert.equal(entries.find((e) => e.path === "etc/f")?.digest, "sha256:98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4");
  });
});

test("umoci-compat: umoci repacks a bundle ocigen unpacked, and ocigen one umoci unpacked", async (t) => {
  const why = needTool("umoci");
  if (why) return t.skip(why);
  await withTmp(async (dir) => {
    const l = await imageWith(dir, [{ name: "etc/", type: "dir" }, { name: "etc/keep", data: "k" }, { name: "etc/gone", data: "g" }]);
    const b1 = path.join(dir, "b1");
    { const u = await ocigen("unpack", "--image", `${l}:latest`, b1); assert.equal(u.code, 0, u.stderr); }
    fs.writeFileSync(path.join(b1, "rootfs/etc/new"), "n");
    fs.rmSync(path.join(b1, "rootfs/etc/gone"));
    run("umoci", ["repack", "--image", `${l}:by-umoci`, b1]);
    const r1 = path.join(dir, "r1");
    run("umoci", ["raw", "unpack", "--image", `${l}:by-umoci`, r1]);
    assert.deepEqual(fs.readdirSync(path.join(r1, "etc")).sort(), ["keep", "new"]);

    const b2 = path.join(dir, "b2");
    run("umoci", ["unpack", "--image", `${l}:latest`, b2]);
    fs.writeFileSync(path.join(b2, "rootfs/etc/keep"), "changed");
    const rr = await ocigen("repack", "--image", `${l}:by-ocigen`, b2);
    assert.equal(rr.code, 0, rr.stderr);
    const r2 = path.join(dir, "r2");
    assert.equal((await ocigen("raw", "unpack", "--image", `${l}:by-ocigen`, r2)).code, 0);
    assert.equal(fs.readFileSync(path.join(r2, "etc/keep"), "utf8"), "changed");
    assert.deepEqual(fs.readdirSync(path.join(r2, "etc")).sort(), ["gone", "keep"]);
    // the layer ocigen wrote holds only the change
    const img = await (await Layout.open(l)).resolve("by-ocigen");
    assert.equal(img.manifest.layers.length, 2);
  });
});

test("umoci-compat: user.rootlesscontainers encodes owners as umoci does and round-trips through rootless unpack/repack", async (t) => {
  assert.deepEqual([...encodeRootlessOwner(992, 123)!], [0x08, 0xe0, 0x07, 0x10, 0x7b]);
  assert.deepEqual([...encodeRootlessOwner(0, 456)!], [0x08, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x10, 0xc8, 0x03]);
  assert.equal(encodeRootlessOwner(0, 0), undefined);
  assert.deepEqual(decodeRootlessOwner(new Uint8Array([0x08, 0xfb, 0x18, 0x10, 0x8e, 0x12])), { uid: 3195, gid: 2318 });
  assert.deepEqual(decodeRootlessOwner(new Uint8Array([0x08, 0x62, 0x10, 0xff, 0xff, 0xff, 0xff, 0x0f])), { uid: 98, gid: undefined });
  assert.deepEqual(decodeRootlessOwner(new Uint8Array([])), { uid: 0, gid: 0 });
  assert.throws(() => decodeRootlessOwner(new Uint8Array([0x08])), /truncated/);
  if (!xattrsSupported()) {
    const why = needTool("getfattr");
    if (why) return t.skip(why);
  }
  await withTmp(async (dir) => {
    const l = await imageWith(dir, [
      { name: "a", data: "a", uid: 992, gid: 123 },
      { name: "b", data: "b", uid: 0, gid: 456 },
      { name: "c", data: "c", uid: 5, gid: 6 },
      { name: "d", data: "d" },
    ]);
    const b = path.join(dir, "b");
    const r = await ocigen("unpack", "--rootless", "--image", `${l}:latest`, b);
    assert.equal(r.code, 0, r.stderr);
    const rootfs = path.join(b, "rootfs");
    const x = readPathsXattrs(rootfs, ["a", "b", "c", "d"]);
    assert.deepEqual([...(x.get("a")?.["user.rootlesscontainers"] ?? [])], [0x08, 0xe0, 0x07, 0x10, 0x7b]);
    assert.deepEqual([...(x.get("b")?.["user.rootlesscontainers"] ?? [])], [0x08, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x10, 0xc8, 0x03]);
    assert.equal(x.get("d")?.["user.rootlesscontainers"], undefined);
    assert.equal(fs.existsSync(path.join(b, "ocigen.owners.json")), false, "no owner file when xattrs hold them");
    // change one owner through the xattr, drop another: root's
    setXattr(path.join(rootfs, "a"), "user.rootlesscontainers", new Uint8Array([0x08, 0xfb, 0x18, 0x10, 0x8e, 0x12]));
    run("setfattr", ["-x", "user.rootlesscontainers", path.join(rootfs, "c")]);
    const rp = await ocigen("repack", "--image", `${l}:latest`, b);
    assert.equal(rp.code, 0, rp.stderr);
    const img = await (await Layout.open(l)).resolve("latest");
    assert.equal(img.manifest.layers.length, 2, "the owner changes made a layer");
    const root2 = path.join(dir, "root2");
    if (isRoot) {
      assert.equal((await ocigen("raw", "unpack", "--image", `${l}:latest`, root2)).code, 0);
      const own = (n: string) => {
        const s = fs.statSync(path.join(root2, n));
        return `${s.uid}:${s.gid}`;
      };
      assert.equal(own("a"), "3195:2318");
      assert.equal(own("b"), "0:456");
      assert.equal(own("c"), "0:0");
      assert.equal(readPathsXattrs(root2, ["a"]).get("a")?.["user.rootlesscontainers"], undefined, "never in a layer");
    }
  });
});

test("umoci-compat: insert --uid-map/--gid-map/--rootless map the inserted files' owners as umoci does", async (t) => {
  if (!isRoot) return t.skip("needs root to own a file as another user");
  await withTmp(async (dir) => {
    const l = await imageWith(dir, [{ name: "f", data: "x" }]);
    const src = path.join(dir, "src");
    fs.writeFileSync(src, "s");
    fs.chownSync(src, 1000, 1001);
    let r = await ocigen("insert", "--image", `${l}:latest`, "--uid-map", "0:1000:10", "--gid-map", "5:1001", src, "/mapped");
    assert.equal(r.code, 0, r.stderr);
    fs.chownSync(src, 0, 0);
    setXattr(src, "user.rootlesscontainers", encodeRootlessOwner(33, 0)!);
    r = await ocigen("insert", "--image", `${l}:latest`, "--rootless", src, "/recorded");
    assert.equal(r.code, 0, r.stderr);
    const root = path.join(dir, "root");
    assert.equal((await ocigen("raw", "unpack", "--image", `${l}:latest`, root)).code, 0);
    const own = (n: string) => {
      const s = fs.statSync(path.join(root, n));
      return `${s.uid}:${s.gid}`;
    };
    assert.equal(own("mapped"), "0:5");
    assert.equal(own("recorded"), "33:0");
    assert.equal(readPathsXattrs(root, ["recorded"]).get("recorded")?.["user.rootlesscontainers"], undefined);
  });
});
