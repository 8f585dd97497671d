/**
 * Extended attributes of a whole tree, read in ONE child process.
 *
 * Neither Node nor Deno has an xattr API, so the tree is dumped with
 * `getfattr -R -P -h -d -m - -e base64` (package `attr`), which lists every
 * attribute of every entry (symlinks not followed) in one pass. When
 * `getfattr` is not installed, xattrs are not recorded (a warning is logged
 * once) and change detection still works through ctime.
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { Buffer } from "node:buffer";
import { log } from "../log.ts";
import { have } from "../util/which.ts";

/** Attribute name -> raw value. */
export type Xattrs = Record<string, Uint8Array>;

let warned = false;
let haveGetfattr: boolean | undefined;

/**
 * True when `getfattr` can be run.
 *
 * @example
 * ```ts
 * if (!xattrsSupported()) console.warn("xattrs will not be recorded");
 * ```
 */
export function xattrsSupported(): boolean {
  // a PATH lookup, not a `getfattr --version` run: one process fewer per command
  // (a getfattr that is there but cannot run is reported when it is run)
  haveGetfattr ??= have("getfattr");
  return haveGetfattr;
}

/**
 * Reads the xattrs of every entry below `root` (including `root` itself).
 * Returns a map from root-relative path (`"."` for the root, else `a/b`)
 * to its attributes; entries without attributes are absent.
 *
 * @example
 * ```ts
 * const x = readTreeXattrs("/bundle/rootfs");
 * x.get("usr/bin/ping"); // { "security.capability": Uint8Array(...) }
 * ```
 */
export function readTreeXattrs(root: string): Map<string, Xattrs> {
  const out = new Map<string, Xattrs>();
  if (!xattrsSupported()) {
    if (!warned) {
      warned = true;
      log.warn("getfattr (package attr) not installed: extended attributes are not recorded");
    }
    return out;
  }
  // cwd = root and path "." so that printed names are "." and "./a/b".
  dumpInto(root, ["-R", "-P", "-h", "-d", "-m", "-", "-e", "base64", "."], out);
  return out;
}

/**
 * Runs `getfattr ARGS` in `root` and adds what it prints to `out`; false
 * (warned once) when it cannot be run.
 */
function dumpInto(root: string, args: string[], out: Map<string, Xattrs>): boolean {
  const r = spawnSync("getfattr", args, { cwd: root, maxBuffer: 1 << 30, encoding: "buffer" });
  if (r.error) {
    cannotRun(r.error, out);
    return false;
  }
  parseDump((r.stdout as Buffer).toString("latin1"), out);
  return true;
}

/**
 * {@linkcode readTreeXattrs} without blocking: `getfattr` starts at once and
 * runs while the caller goes on (e.g. walks the same tree with lstat on the
 * other core); the promise settles when it has exited.
 *
 * @example
 * ```ts
 * const pending = readTreeXattrsAsync("/src");
 * const entries = scanTree("/src", { xattrs: false });
 * const x = await pending;
 * ```
 */
export function readTreeXattrsAsync(root: string): Promise<Map<string, Xattrs>> {
  if (!xattrsSupported()) return Promise.resolve(readTreeXattrs(root));
  return dumpAsync(root, ["-R", "-P", "-h", "-d", "-m", "-", "-e", "base64", "."]);
}

/**
 * The xattrs of `root` itself, without blocking (`getfattr` runs while the
 * caller goes on); an empty map when it has none or getfattr cannot run.
 *
 * @example
 * ```ts
 * const probe = readRootXattrsAsync("/bundle/rootfs");
 * // ... write the tree ...
 * (await probe).get("."); // undefined: no xattr on the root
 * ```
 */
export function readRootXattrsAsync(root: string): Promise<Map<string, Xattrs>> {
  if (!xattrsSupported()) return Promise.resolve(new Map());
  return dumpAsync(root, ["-h", "-d", "-m", "-", "-e", "base64", "--", "."]);
}

function dumpAsync(root: string, args: string[]): Promise<Map<string, Xattrs>> {
  return new Promise((resolve) => {
    const out = new Map<string, Xattrs>();
    const parts: Buffer[] = [];
    const child = spawn("getfattr", args, { cwd: root, stdio: ["ignore", "pipe", "ignore"] });
    child.stdout!.on("data", (d: Buffer) => parts.push(d));
    child.on("error", (e) => resolve(cannotRun(e, out)));
    child.on("close", () => {
      parseDump(Buffer.concat(parts).toString("latin1"), out);
      resolve(out);
    });
  });
}

function cannotRun(err: Error, out: Map<string, Xattrs>): Map<string, Xattrs> {
  if (!warned) {
    warned = true;
    log.warn(`cannot run getfattr (${(err as NodeJS.ErrnoException).code ?? err.message}): extended attributes are not recorded`);
  }
  return out;
}

/**
 * Reads the xattrs of a list of root-relative paths (chunked argv, no shell).
 *
 * @example
 * ```ts
 * readPathsXattrs("/bundle/rootfs", ["etc/x"]).get("etc/x");
 * ```
 */
export function readPathsXattrs(root: string, paths: string[]): Map<string, Xattrs> {
  const out = new Map<string, Xattrs>();
  if (!xattrsSupported() || paths.length === 0) return out;
  // argv chunks of at most ~128 KiB (ARG_MAX is far larger, but be modest)
  for (let i = 0; i < paths.length;) {
    const chunk: string[] = [];
    let bytes = 0;
    while (i < paths.length && (chunk.length === 0 || bytes + paths[i].length < 128 * 1024)) {
      const p = paths[i++];
      chunk.push(p === "." ? "." : "./" + p);
      bytes += p.length + 3;
    }
    if (!dumpInto(root, ["-h", "-d", "-m", "-", "-e", "base64", "--", ...chunk], out)) return out;
  }
  return out;
}

function unescapeName(s: string): string {
  // getfattr escapes \, newline etc. as \ooo octal; work on latin1 bytes then decode as UTF-8.
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c && i + 3 < s.length + 0 && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else bytes.push(c & 0xff);
  }
  return Buffer.from(bytes).toString("utf8");
}

function normalise(p: string): string {
  if (p === "." || p === "./") return ".";
  return p.startsWith("./") ? p.slice(2) : p;
}

function parseDump(text: string, out: Map<string, Xattrs>): void {
  let cur: Xattrs | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("# file: ")) {
      const p = normalise(unescapeName(line.slice(8)));
      cur = {};
      out.set(p, cur);
    } else if (cur && line.length > 0 && !line.startsWith("#")) {
      const eq = line.indexOf("=");
      if (eq < 0) {
        cur[unescapeName(line)] = new Uint8Array(0);
        continue;
      }
      const name = unescapeName(line.slice(0, eq));
      const v = line.slice(eq + 1);
      let val: Uint8Array;
      if (v.startsWith("0s")) val = new Uint8Array(Buffer.from(v.slice(2), "base64"));
      else if (v.startsWith("0x")) val = new Uint8Array(Buffer.from(v.slice(2), "hex"));
      else if (v.startsWith('"')) val = new Uint8Array(Buffer.from(unescapeName(v.slice(1, -1)), "utf8"));
      else val = new Uint8Array(Buffer.from(v, "latin1"));
      cur[name] = val;
    }
  }
}

/**
 * Sets one xattr on a path (no symlink dereference) with `setfattr`.
 * Used by tests and by `insert`/`build` helpers; throws when setfattr fails.
 *
 * @example
 * ```ts
 * setXattr("/r/etc/x", "user.k", new TextEncoder().encode("v"));
 * ```
 */
export function setXattr(path: string, name: string, value: Uint8Array): void {
  const r = spawnSync("setfattr", ["-h", "-n", name, "-v", "0s" + Buffer.from(value).toString("base64"), "--", path], {
    encoding: "utf8",
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`setfattr ${name} on ${path}: ${String(r.stderr).trim()}`);
}
