// Helpers for the repack/bundle/build tests (not a test file itself).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
export { have } from "../src/util/which.ts";
import { have } from "../src/util/which.ts";

/** Skip reason when a tool is missing outside CI; throws in CI (must run there). */
export function needTool(tool: string): string | undefined {
  if (have(tool)) return undefined;
  if (process.env.CI) throw new Error(`${tool} is required in CI but not installed`);
  return `${tool} not installed`;
}

/** Runs a command (argv), throws with its stderr on failure, returns stdout. */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd: opts.cwd, env: opts.env ?? process.env, input: opts.input });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** A fresh temp dir. */
export function tmpdir(prefix = "ocigen-repack-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Is this process root (devices, chown)? */
export const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

function xattrsOf(p: string): string {
  if (!have("getfattr")) return "";
  const r = spawnSync("getfattr", ["-h", "-d", "-m", "-", "-e", "hex", "--", p], { encoding: "utf8" });
  return (r.stdout ?? "").split("\n").filter((l) => l && !l.startsWith("#")).sort().join(",");
}

/** A comparable description of every entry of a tree (hard links as groups). */
export function snapshot(root: string, opts: { mtimes?: boolean } = {}): Map<string, string> {
  const out = new Map<string, string>();
  const inodes = new Map<string, string>();
  const walk = (rel: string) => {
    const abs = rel === "." ? root : path.join(root, rel);
    const st = fs.lstatSync(abs);
    let d = `mode=${(st.mode & 0o7777).toString(8)} uid=${st.uid} gid=${st.gid}`;
    if (st.isDirectory()) d = "dir " + d;
    else if (st.isSymbolicLink()) d = `symlink->${fs.readlinkSync(abs)} ` + d;
    else if (st.isFile()) {
      d = `file size=${st.size} sha=${createHash("sha256").update(fs.readFileSync(abs)).digest("hex").slice(0, 16)} ` + d;
      if (opts.mtimes !== false) d += ` mtime=${Math.floor(st.mtimeMs / 1000)}`;
      if (st.nlink > 1) {
        const k = `${st.dev}:${st.ino}`;
        const first = inodes.get(k);
        if (first) d += ` hardlink=${first}`;
        else inodes.set(k, rel);
      }
    } else if (st.isCharacterDevice() || st.isBlockDevice()) d = `dev ${st.rdev} ` + d;
    else if (st.isFIFO()) d = "fifo " + d;
    const x = xattrsOf(abs);
    if (x) d += ` xattrs=${x}`;
    out.set(rel, d);
    if (st.isDirectory()) {
      for (const n of fs.readdirSync(abs).sort()) walk(rel === "." ? n : `${rel}/${n}`);
    }
  };
  walk(".");
  return out;
}

/** Differences between two snapshots, one line each (empty when equal). */
export function snapshotDiff(a: Map<string, string>, b: Map<string, string>): string[] {
  const lines: string[] = [];
  for (const [k, v] of a) {
    if (!b.has(k)) lines.push(`- ${k}: ${v}`);
    else if (b.get(k) !== v) lines.push(`~ ${k}: ${v}  !=  ${b.get(k)}`);
  }
  for (const [k, v] of b) if (!a.has(k)) lines.push(`+ ${k}: ${v}`);
  return lines;
}

/** Writes a small base tree with every kind of entry the round trips touch. */
export function makeBaseTree(root: string): void {
  const w = (p: string, data: string, mode = 0o644) => {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), data, { mode });
    fs.chmodSync(path.join(root, p), mode);
  };
  fs.mkdirSync(root, { recursive: true });
  w("etc/hostname", "base\n");
  w("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  w("bin/tool", "#!/bin/sh\necho tool\n", 0o755);
  w("usr/share/doc/a/README", "a".repeat(3000));
  w("usr/share/doc/a/LICENSE", "license\n");
  w("usr/share/doc/b/README", "b\n");
  w("var/lib/x/file", "x\n");
  w("opt/filething", "will become a dir\n");
  fs.mkdirSync(path.join(root, "opt/dirthing/sub"), { recursive: true });
  w("opt/dirthing/sub/f", "in dir\n");
  w("srv/chmod-me", "c\n");
  w("srv/chown-me", "o\n");
  w("srv/link-src", "linked\n");
  w("srv/xattr-me", "x\n");
  fs.symlinkSync("../etc/hostname", path.join(root, "srv/sym"));
  w("big/blob", "0123456789abcdef".repeat(200_000)); // 3.2 MB
  fs.mkdirSync(path.join(root, "tmp"), { mode: 0o1777 });
  fs.chmodSync(path.join(root, "tmp"), 0o1777);
  const t = new Date("2020-01-02T03:04:05Z");
  const setTimes = (rel: string) => {
    const abs = path.join(root, rel);
    const st = fs.lstatSync(abs);
    if (st.isDirectory()) for (const n of fs.readdirSync(abs)) setTimes(rel === "." ? n : `${rel}/${n}`);
    if (!st.isSymbolicLink()) fs.utimesSync(abs, t, t);
  };
  setTimes(".");
}

/**
 * Applies the round-trip changes: add, modify, delete a file, delete a tree,
 * file->dir, dir->symlink, chmod, chown, hardlink, xattr.
 */
export function mutateTree(root: string, opts: { xattr?: boolean } = {}): void {
  const p = (r: string) => path.join(root, r);
  fs.writeFileSync(p("etc/added"), "new file\n");
  fs.mkdirSync(p("newdir/deeper"), { recursive: true });
  fs.writeFileSync(p("newdir/deeper/f"), "deep\n");
  fs.writeFileSync(p("etc/hostname"), "changed\n");
  fs.unlinkSync(p("etc/passwd"));
  fs.rmSync(p("usr/share/doc/a"), { recursive: true });
  fs.unlinkSync(p("opt/filething"));
  fs.mkdirSync(p("opt/filething"));
  fs.writeFileSync(p("opt/filething/inside"), "now a dir\n");
  fs.rmSync(p("opt/dirthing"), { recursive: true });
  fs.symlinkSync("/usr/share", p("opt/dirthing"));
  fs.chmodSync(p("srv/chmod-me"), 0o4750);
  if (isRoot) fs.chownSync(p("srv/chown-me"), 1234, 5678);
  fs.linkSync(p("srv/link-src"), p("srv/hardlink"));
  if (opts.xattr && have("setfattr")) run("setfattr", ["-n", "user.ocigen", "-v", "yes", p("srv/xattr-me")]);
  run("mkfifo", ["-m", "0640", p("srv/fifo")]);
  if (isRoot) run("mknod", ["-m", "0666", p("srv/null"), "c", "1", "3"]);
}

/**
 * A minimal "cirros-like" rootfs able to run `/bin/sh` scripts: the host's
 * shell and the shared libraries it needs (found with ldd), nothing else.
 */
export function makeShellRootfs(root: string): void {
  fs.mkdirSync(path.join(root, "bin"), { recursive: true });
  for (const d of ["etc", "tmp", "root", "dev", "proc"]) fs.mkdirSync(path.join(root, d), { recursive: true });
  const sh = fs.realpathSync("/bin/sh");
  fs.copyFileSync(sh, path.join(root, "bin/sh"));
  fs.chmodSync(path.join(root, "bin/sh"), 0o755);
  const out = spawnSync("ldd", [sh], { encoding: "utf8" }).stdout ?? "";
  for (const line of out.split("\n")) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (!m) continue;
    const lib = m[1];
    const dest = path.join(root, lib);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(fs.realpathSync(lib), dest);
    fs.chmodSync(dest, 0o755);
  }
  fs.writeFileSync(path.join(root, "etc/os-release"), "NAME=cirros-like\n");
}

/** Every file of a directory tree with its content (to prove a layout did not change). */
export function dirState(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const abs = path.join(root, rel);
    const st = fs.lstatSync(abs);
    if (st.isDirectory()) {
      for (const n of fs.readdirSync(abs).sort()) walk(rel ? `${rel}/${n}` : n);
    } else if (!rel.endsWith(".ocigen.lock")) {
      out.set(rel, createHash("sha256").update(fs.readFileSync(abs)).digest("hex"));
    }
  };
  walk("");
  return out;
}
