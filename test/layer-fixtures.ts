// Test helpers for the unpack engine: generated OCI layouts with arbitrary
// (also adversarial) layers. Not a test file itself.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { type TarWriterEntry, tarBytes } from "../src/tar/writer.ts";
import { type ApplyOptions, ApplyState, LayerApplier } from "../src/layer/apply.ts";
import { TarKernelParser } from "../src/tar/kernel.ts";
import { TarParser } from "../src/tar/parser.ts";
export { have } from "../src/util/which.ts";

export const sha256 = (b: Uint8Array) => "sha256:" + createHash("sha256").update(b).digest("hex");

export function tmpdir(prefix = "ocigen-unpack-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export type Compression = "gzip" | "zstd" | "none";

export interface LayerSpec {
  /** Tar entries, or raw tar bytes. */
  entries?: TarWriterEntry[];
  tar?: Uint8Array;
  compression?: Compression;
  /** Replace the compressed blob bytes (after the digest is computed unless `digestAfter`). */
  mutateBlob?: (b: Uint8Array) => Uint8Array;
  /** Compute the descriptor digest after mutateBlob (a consistent but corrupt blob). */
  digestAfter?: boolean;
  /** Override the diff_id. */
  diffId?: string;
  /** Override the descriptor size. */
  size?: number;
  mediaType?: string;
  tarOptions?: Parameters<typeof tarBytes>[1];
}

const MT = {
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  none: "application/vnd.oci.image.layer.v1.tar",
};

export function compress(data: Uint8Array, c: Compression): Uint8Array {
  if (c === "gzip") return new Uint8Array(zlib.gzipSync(data, { level: 1 }));
  if (c === "zstd") {
    const r = spawnSync("zstd", ["-q", "-c", "-1"], { input: data, maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error("zstd failed");
    return new Uint8Array(r.stdout);
  }
  return data;
}

function writeBlob(layout: string, data: Uint8Array, digest = sha256(data)): string {
  const p = path.join(layout, "blobs", "sha256", digest.slice(7));
  fs.writeFileSync(p, data);
  return digest;
}

/**
 * Writes an OCI layout at `dir` (created) with one image tagged `tag` whose
 * layers are `layers`; returns the layout dir.
 */
export function makeImage(
  dir: string,
  layers: LayerSpec[],
  opts: { tag?: string; config?: Record<string, unknown>; append?: boolean } = {},
): string {
  fs.mkdirSync(path.join(dir, "blobs", "sha256"), { recursive: true });
  fs.writeFileSync(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const descs = [];
  const diffIds = [];
  for (const l of layers) {
    const tar = l.tar ?? tarBytes(l.entries ?? [], l.tarOptions);
    const c = l.compression ?? "gzip";
    let blob = compress(tar, c);
    let digest = sha256(blob);
    if (l.mutateBlob) {
      blob = l.mutateBlob(blob);
      if (l.digestAfter) digest = sha256(blob);
    }
    writeBlob(dir, blob, digest);
    descs.push({ mediaType: l.mediaType ?? MT[c], digest, size: l.size ?? blob.length });
    diffIds.push(l.diffId ?? sha256(tar));
  }
  const config = {
    architecture: process.arch === "x64" ? "amd64" : process.arch === "arm64" ? "arm64" : process.arch,
    os: "linux",
    config: opts.config ?? {},
    rootfs: { type: "layers", diff_ids: diffIds },
  };
  const cb = new TextEncoder().encode(JSON.stringify(config));
  const cd = writeBlob(dir, cb);
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: cd, size: cb.length },
    layers: descs,
  };
  const mb = new TextEncoder().encode(JSON.stringify(manifest));
  const md = writeBlob(dir, mb);
  const tag = opts.tag ?? "latest";
  const idxPath = path.join(dir, "index.json");
  let idx = { schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] as unknown[] };
  if (opts.append && fs.existsSync(idxPath)) idx = JSON.parse(fs.readFileSync(idxPath, "utf8"));
  idx.manifests = idx.manifests.filter((m) => (m as { annotations?: Record<string, string> }).annotations?.["org.opencontainers.image.ref.name"] !== tag);
  idx.manifests.push({
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: md,
    size: mb.length,
    annotations: { "org.opencontainers.image.ref.name": tag },
  });
  fs.writeFileSync(idxPath, JSON.stringify(idx));
  return dir;
}

/** A canary file outside the root; returns a checker that asserts it is untouched. */
export function plantCanary(dir: string): { path: string; dir: string; check(): void } {
  const cdir = path.join(dir, "outside");
  fs.mkdirSync(cdir, { recursive: true });
  const p = path.join(cdir, "canary");
  fs.writeFileSync(p, "canary\n", { mode: 0o644 });
  const before = fs.lstatSync(p);
  const names = fs.readdirSync(cdir).sort().join(",");
  const dirBefore = fs.lstatSync(cdir);
  return {
    path: p,
    dir: cdir,
    check() {
      const st = fs.lstatSync(p);
      if (!st.isFile()) throw new Error("canary replaced");
      if (fs.readFileSync(p, "utf8") !== "canary\n") throw new Error("canary content changed");
      if ((st.mode & 0o7777) !== (before.mode & 0o7777)) throw new Error("canary mode changed");
      if (st.uid !== before.uid || st.gid !== before.gid) throw new Error("canary owner changed");
      if (st.mtimeMs !== before.mtimeMs) throw new Error("canary mtime changed");
      if (st.nlink !== 1) throw new Error("canary was hard-linked");
      if (fs.readdirSync(cdir).sort().join(",") !== names) throw new Error("files appeared beside the canary");
      const d = fs.lstatSync(cdir);
      if ((d.mode & 0o7777) !== (dirBefore.mode & 0o7777) || d.uid !== dirBefore.uid) throw new Error("canary dir changed");
    },
  };
}

/** Lists a tree: path -> description (type, mode, owner, size, link target, content digest). */
export function describeTree(root: string, opts: { mtime?: boolean } = {}): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const abs = rel ? path.join(root, rel) : root;
    const st = fs.lstatSync(abs);
    const type = st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : st.isFile() ? "file"
      : st.isFIFO() ? "fifo" : st.isCharacterDevice() ? "char" : st.isBlockDevice() ? "block" : "other";
    let d = `${type} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
    if (type === "file") d += ` ${st.size} ${sha256(fs.readFileSync(abs)).slice(7, 19)}`;
    if (type === "symlink") d += ` -> ${fs.readlinkSync(abs)}`;
    if (type === "char" || type === "block") d += ` ${st.rdev}`;
    if (opts.mtime && type !== "symlink") d += ` @${Math.floor(st.mtimeMs / 1000)}`;
    out.set(rel || ".", d);
    if (type === "dir") for (const n of fs.readdirSync(abs).sort()) walk(rel ? rel + "/" + n : n);
  };
  walk("");
  return out;
}

/**
 * Applies layers (entry lists or raw tars, fed to the parser in `chunk`-byte
 * pieces) to root with one ApplyState; returns the error thrown, if any.
 * `opts.tarKernel` reads them with the WebAssembly tar kernel.
 */
export function applyTo(root: string, layers: Array<TarWriterEntry[] | Uint8Array>, opts: ApplyOptions = {}, chunk = 1000): unknown {
  const state = new ApplyState(root, opts);
  try {
    layers.forEach((l, i) => {
      const tar = l instanceof Uint8Array ? l : tarBytes(l);
      const applier = new LayerApplier(state, `layer ${i}`);
      const p = opts.tarKernel ? new TarKernelParser(applier, { context: `layer ${i}` }) : new TarParser(applier, { context: `layer ${i}` });
      for (let o = 0; o < tar.length; o += chunk) p.write(tar.subarray(o, o + chunk));
      p.end();
    });
  } catch (e) {
    return e;
  }
  return undefined;
}
