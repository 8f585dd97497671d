/**
 * Reading umoci's bundle manifest (`BUNDLE/sha256_<manifest hex>.mtree`,
 * go-mtree "spec" format) as ocigen bundle entries, so that `ocigen repack`
 * also works on bundles made by `umoci unpack`.
 *
 * The format, as umoci writes it: `#` comments; `/set k=v ...` sets defaults
 * for later entries (`/unset k` drops them); an entry line is
 * `NAME k=v ...` with NAME escaped like vis(3) (`\040` for a space); a
 * `type=dir` entry enters that directory and `..` leaves it. Keywords used:
 * size, type, uid, gid, mode (octal), link, nlink, tar_time (`sec.nsec`),
 * sha256digest, `xattr.NAME` (base64).
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
import { OcigenError, wrapIo } from "../errors.ts";
import type { BundleManifest } from "./manifest.ts";
import type { BundleEntry, EntryType } from "./scan.ts";

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
