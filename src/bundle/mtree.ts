/**
 * umoci's bundle manifest (`BUNDLE/sha256_<manifest hex>.mtree`, go-mtree
 * "spec" format): written by `ocigen unpack` exactly as umoci and go-mtree
 * write it (so that `umoci repack` and `gomtree -f` read a bundle ocigen
 * unpacked), and read as ocigen bundle entries (so that `ocigen repack`
 * works on bundles made by `umoci unpack`).
 *
 * The format, as umoci writes it: `#` comments; `/set k=v ...` sets defaults
 * for later entries (`/unset k` drops them); an entry line is
 * `NAME k=v ...` with NAME escaped like vis(3) (`\040` for a space); a
 * `type=dir` entry enters that directory and `..` leaves it. Keywords used:
 * size, type, uid, gid, mode (octal), link, nlink, tar_time (`sec.nsec`),
 * sha256digest, `xattr.NAME` (base64).
 *
 * Writing follows go-mtree's walk with umoci's keywords (size, type, uid,
 * gid, mode, link, nlink, tar_time, sha256digest, xattr): in each directory
 * the non-directories come first, then the directories, each group sorted
 * bytewise; a directory is preceded by a blank line and a `# path` comment
 * and closed by `..`; `/set type=file nlink=1 mode=0664 uid=U gid=G` (the
 * owner of the first directory, renewed when a directory has another owner)
 * holds defaults that entries then leave out; `mode` is `%#o` of the
 * permission bits with setuid/setgid/sticky; `size` is the stat size (the
 * target length of a symlink); `tar_time` is the mtime in whole seconds;
 * xattrs are recorded for regular files and directories only, base64.
 *
 * umoci records no inode or ctime, so the cheap stat test cannot prove a file
 * unchanged: entries carry their sha256 instead and files whose size and mtime
 * match are hashed (as umoci does).
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { Buffer } from "node:buffer";
import os from "node:os";
import process from "node:process";
import { OcigenError, wrapIo } from "../errors.ts";
import { type BundleManifest, fileDigest } from "./manifest.ts";
import { type BundleEntry, type EntryType, typeOf } from "./scan.ts";
import { type TreeChild, type TreeVisitor, walkTree } from "./walk.ts";
import type { TreeStat } from "../fs/stat.ts";
import { readTreeXattrs, type Xattrs } from "./xattr.ts";

const TYPES: Record<string, EntryType> = {
  file: "file",
  dir: "dir",
  link: "symlink",
  char: "char",
  block: "block",
  fifo: "fifo",
  socket: "socket",
};

/**
 * Decodes a vis(3)-escaped mtree name (`\040`, `\\`, `\n`...).
 *
 * @example
 * ```ts
 * unvis("sub\\040dir"); // "sub dir"
 * ```
 */
export function unvis(s: string): string {
  if (!s.includes("\\")) return s;
  const bytes: number[] = [];
  const raw = Buffer.from(s, "utf8");
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c !== 0x5c || i + 1 >= raw.length) {
      bytes.push(c);
      continue;
    }
    const n = raw[i + 1];
    if (n >= 0x30 && n <= 0x37 && i + 3 < raw.length + 0) {
      const oct = raw.subarray(i + 1, i + 4).toString("latin1");
      if (/^[0-7]{3}$/.test(oct)) {
        bytes.push(parseInt(oct, 8));
        i += 3;
        continue;
      }
    }
    const map: Record<number, number> = { 0x6e: 10, 0x74: 9, 0x72: 13, 0x73: 32, 0x5c: 0x5c, 0x62: 8, 0x61: 7, 0x76: 11, 0x66: 12 };
    if (n in map) {
      bytes.push(map[n]);
      i += 1;
    } else {
      bytes.push(n);
      i += 1;
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

function parseKeywords(parts: string[], into: Map<string, string>): void {
  for (const p of parts) {
    const eq = p.indexOf("=");
    if (eq < 0) into.set(p, "");
    else into.set(p.slice(0, eq), p.slice(eq + 1));
  }
}

function nsOf(t: string | undefined): bigint {
  if (!t) return 0n;
  const [s, f = "0"] = t.split(".");
  return BigInt(s) * 1_000_000_000n + BigInt((f + "000000000").slice(0, 9));
}

/**
 * Parses an mtree spec into bundle entries (root first, as `"."`).
 *
 * @example
 * ```ts
 * parseMtree(". type=dir mode=0755\n    a size=1 mode=0644\n..\n").map((e) => e.path); // [".", "a"]
 * ```
 */
export function parseMtree(text: string, file = "mtree"): BundleEntry[] {
  const defaults = new Map<string, string>();
  const stack: string[] = [];
  const out: BundleEntry[] = [];
  const lines = text.split("\n");
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln].trim();
    if (line === "" || line.startsWith("#")) continue;
    const parts = line.split(/\s+/);
    if (parts[0] === "/set") {
      parseKeywords(parts.slice(1), defaults);
      continue;
    }
    if (parts[0] === "/unset") {
      for (const k of parts.slice(1)) if (k === "all") defaults.clear();
      else defaults.delete(k);
      continue;
    }
    if (parts[0] === "..") {
      stack.pop();
      continue;
    }
    const kw = new Map(defaults);
    parseKeywords(parts.slice(1), kw);
    const name = unvis(parts[0]);
    let rel: string;
    if (name === "." && stack.length === 0) rel = ".";
    else if (name.includes("/")) rel = name.replace(/^\.\//, "");
    else rel = stack.length === 0 || stack[stack.length - 1] === "." ? name : `${stack[stack.length - 1]}/${name}`;
    const type = TYPES[kw.get("type") ?? "file"];
    if (!type) throw new OcigenError("EREPACK", `${file}: line ${ln + 1}: unknown type ${kw.get("type")}`);
    const e: BundleEntry = {
      path: rel,
      type,
      mode: parseInt(kw.get("mode") ?? "0", 8) & 0o7777,
      uid: Number(kw.get("uid") ?? 0),
      gid: Number(kw.get("gid") ?? 0),
      size: type === "file" ? Number(kw.get("size") ?? 0) : 0,
      mtimeNs: nsOf(kw.get("tar_time") ?? kw.get("time")),
      ctimeNs: -1n,
      ino: -1n,
      nlink: Number(kw.get("nlink") ?? 1),
    };
    if (type === "symlink") e.link = unvis(kw.get("link") ?? "");
    const sha = kw.get("sha256digest") ?? kw.get("sha256");
    if (sha) e.digest = `sha256:${sha}`;
    const x: Record<string, string> = {};
    for (const [k, v] of kw) if (k.startsWith("xattr.")) x[k.slice(6)] = v;
    if (Object.keys(x).length) e.xattrs = Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1)));
    out.push(e);
    if (type === "dir") stack.push(rel);
  }
  return out;
}

/**
 * Reads umoci's mtree of a bundle unpacked from `manifestDigest`, or
 * undefined when the bundle has none.
 *
 * @example
 * ```ts
 * const m = readUmociMtree("/tmp/bundle", "sha256:ab…");
 * ```
 */
export function readUmociMtree(bundleDir: string, manifestDigest: string): BundleManifest | undefined {
  const [alg, hex] = manifestDigest.split(":");
  const file = path.join(bundleDir, `${alg}_${hex}.mtree`);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw wrapIo(e, "read", file);
  }
  return {
    header: { format: "ocigen-bundle-manifest", version: 1, rootfs: "rootfs", xattrs: true, digests: true },
    entries: parseMtree(text, file),
  };
}

/**
 * The mtree file name umoci gives the manifest of a bundle unpacked from
 * image manifest `manifestDigest`.
 *
 * @example
 * ```ts
 * umociMtreeName("sha256:ab12…"); // "sha256_ab12….mtree"
 * ```
 */
export function umociMtreeName(manifestDigest: string): string {
  const [alg, hex] = manifestDigest.split(":");
  return `${alg}_${hex}.mtree`;
}

/**
 * Encodes a name as go-mtree does (vis(3) with white space, glob characters
 * and non-printable bytes as `\ooo`, the backslash doubled).
 *
 * @example
 * ```ts
 * vis("sub dir"); // "sub\\040dir"
 * ```
 */
export function vis(name: string): string {
  // most names need no escape: then the name itself (no UTF-8 copy per name)
  let plain = true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x5c || c === 0x2a || c === 0x3f || c === 0x5b || c === 0x23) {
      plain = false;
      break;
    }
  }
  if (plain) return name;
  let out = "";
  for (const b of Buffer.from(name, "utf8")) {
    if (b === 0x5c) out += "\\\\";
    else if (b > 0x20 && b < 0x7f && b !== 0x2a && b !== 0x3f && b !== 0x5b && b !== 0x23) out += String.fromCharCode(b);
    else out += "\\" + b.toString(8).padStart(3, "0");
  }
  return out;
}

const MTREE_KEYWORDS = "size,type,uid,gid,mode,link,nlink,tar_time,sha256digest,xattr";

/** go-mtree's `type=` word of an `lstat` result. */
function mtreeType(st: TreeStat): string {
  const t = typeOf(st);
  return t === "symlink" ? "link" : t;
}

function mtreeMode(st: TreeStat): string {
  const m = Number(st.mode & 0o7777n);
  return m === 0 ? "0" : "0" + m.toString(8);
}

/**
 * Where the `sha256digest` of a regular file comes from without reading it:
 * `sha256:<hex>` for an `lstat` result whose content is known (e.g. the
 * digests an unpack computed while writing), else undefined (the file is read).
 */
export type KnownDigest = (st: TreeStat) => string | undefined;

/** Options of {@linkcode MtreeWriter}. */
export interface MtreeWriterOptions {
  /** What the `# tree:` comment shows (default: the rootfs path). */
  treeName?: string;
  /** The tree's xattrs (root-relative path -> attributes). */
  xattrs: Map<string, Xattrs>;
  /** Digests known without reading the file. */
  known?: KnownDigest;
}

/**
 * Writes umoci's mtree (see the module doc for the format) from the
 * `dir`/`up` calls of a {@linkcode walkTree} (a {@linkcode TreeVisitor}),
 * streamed to a temporary file renamed into place by `finish()`.
 *
 * @example
 * ```ts
 * const w = new MtreeWriter("/tmp/bundle", "/tmp/bundle/rootfs", "sha256:ab…", { xattrs: new Map() });
 * try {
 *   walkTree("/tmp/bundle/rootfs", w);
 *   w.finish();
 * } catch (e) {
 *   w.abort();
 *   throw e;
 * }
 * ```
 */
export class MtreeWriter implements TreeVisitor {
  readonly target: string;
  readonly #tmp: string;
  readonly #fd: number;
  readonly #opts: MtreeWriterOptions;
  #pending = "";
  /** The uid and gid of the current `/set` line (-1: none written yet). */
  #setUid = -1n;
  #setGid = -1n;

  constructor(bundleDir: string, rootfs: string, manifestDigest: string, opts: MtreeWriterOptions) {
    this.target = path.join(bundleDir, umociMtreeName(manifestDigest));
    this.#opts = opts;
    let user = "root";
    try {
      user = os.userInfo().username;
    } catch { /* no passwd entry */ }
    // Streamed to the temporary file in 64 KiB pieces: a tree of 256k entries
    // makes ~50 MB of text, which held whole (lines, their join, its UTF-8)
    // was the largest share of the peak memory of `unpack`.
    this.#tmp = `${this.target}.tmp-${process.pid}`;
    try {
      this.#fd = fs.openSync(this.#tmp, "w", 0o644);
    } catch (err) {
      throw wrapIo(err, "write", this.target);
    }
    this.#push(`#${"user: ".padStart(16)}${user}`);
    this.#push(`#${"machine: ".padStart(16)}${os.hostname()}`);
    this.#push(`#${"tree: ".padStart(16)}${opts.treeName ?? rootfs}`);
    this.#push(`#${"date: ".padStart(16)}${new Date().toString().slice(0, 24)}`);
    this.#push(`#${"keywords: ".padStart(16)}${MTREE_KEYWORDS}`);
  }

  #flush(): void {
    const b = Buffer.from(this.#pending);
    this.#pending = "";
    for (let off = 0; off < b.length;) {
      try {
        off += fs.writeSync(this.#fd, b, off, b.length - off);
      } catch (err) {
        throw wrapIo(err, "write", this.target);
      }
    }
  }

  #push(line: string): void {
    this.#pending += line + "\n";
    if (this.#pending.length >= 1 << 16) this.#flush();
  }

  #keywords(e: TreeChild): string {
    // The keywords not given by the current `/set` line (type=file nlink=1
    // mode=0664 and the directory's uid and gid), in MTREE_KEYWORDS order.
    // Written out rather than looked up in the set: once per entry of the tree.
    const st = e.st;
    const type = mtreeType(st);
    let out = `size=${st.size}`;
    if (type !== "file") out += ` type=${type}`;
    if (st.uid !== this.#setUid) out += ` uid=${st.uid}`;
    if (st.gid !== this.#setGid) out += ` gid=${st.gid}`;
    const mode = mtreeMode(st);
    if (mode !== "0664") out += ` mode=${mode}`;
    if (type === "link") out += ` link=${vis(e.link ?? "")}`;
    if (st.nlink !== 1n) out += ` nlink=${st.nlink}`;
    out += ` tar_time=${st.mtimeNs / 1_000_000_000n}.000000000`;
    if (type === "file") out += ` sha256digest=${(this.#opts.known?.(st) ?? fileDigest(e.abs)).slice(7)}`;
    if (type === "file" || type === "dir") {
      const x: Xattrs | undefined = this.#opts.xattrs.get(e.rel);
      if (x) for (const [k, v] of Object.entries(x)) out += ` xattr.${vis(k)}=${Buffer.from(v).toString("base64")}`;
    }
    return out;
  }

  /** A directory and its non-directories (bytewise order). */
  dir(d: TreeChild, files: TreeChild[]): void {
    this.#push("");
    this.#push(`# ${d.rel}`);
    if (this.#setUid !== d.st.uid || this.#setGid !== d.st.gid) {
      this.#setUid = d.st.uid;
      this.#setGid = d.st.gid;
      this.#push(`/set type=file nlink=1 mode=0664 uid=${d.st.uid} gid=${d.st.gid}`);
    }
    this.#push(`${d.rel === "." ? "." : vis(d.name)} ${this.#keywords(d)}`);
    for (const f of files) this.#push(`    ${vis(f.name)} ${this.#keywords(f)}`);
  }

  /** The end of the last directory entered. */
  up(): void {
    this.#push("..");
  }

  /** Writes what is left and renames the file into place; returns its path. */
  finish(): string {
    try {
      this.#flush();
      fs.closeSync(this.#fd);
    } catch (err) {
      this.abort();
      throw wrapIo(err, "write", this.target);
    }
    try {
      fs.renameSync(this.#tmp, this.target);
    } catch (err) {
      fs.rmSync(this.#tmp, { force: true });
      throw wrapIo(err, "write", this.target);
    }
    return this.target;
  }

  /** Drops the temporary file (after an error). */
  abort(): void {
    try {
      fs.closeSync(this.#fd);
    } catch { /* closed already */ }
    fs.rmSync(this.#tmp, { force: true });
  }
}

/**
 * Writes umoci's `BUNDLE/sha256_<hex>.mtree` for `rootfs` (see the module
 * doc for the format), atomically. Reads every regular file (sha256) whose
 * digest `known` does not give. `treeName` is what the `# tree:` comment
 * shows; `xattrs`: the tree's xattrs when the caller already read them.
 *
 * @example
 * ```ts
 * writeUmociMtree("/tmp/bundle", "/tmp/bundle/rootfs", "sha256:ab…");
 * ```
 */
export function writeUmociMtree(
  bundleDir: string,
  rootfs: string,
  manifestDigest: string,
  treeName = rootfs,
  xattrs: Map<string, Xattrs> = readTreeXattrs(rootfs),
  known?: KnownDigest,
): string {
  const w = new MtreeWriter(bundleDir, rootfs, manifestDigest, { treeName, xattrs, known });
  try {
    walkTree(rootfs, w);
  } catch (err) {
    w.abort();
    throw err; // named its path already
  }
  return w.finish();
}
