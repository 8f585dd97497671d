/**
 * ChainIDs of layer stacks and the record of *verified* diff_ids kept beside
 * each extracted rootfs, which lets bulk extraction start an image from the
 * tree of another image whose layers are a prefix of its own.
 *
 * ChainID (OCI image-spec, config "Layer ChainID"):
 * `chain(L0) = diffid(L0)`, `chain(L0..n) = sha256(chain(L0..n-1) + " " + diffid(Ln))`.
 *
 * On-disk format, `EXTRACTS/.store/<alg>/<hex>/ocigen-chain.json` (beside
 * `rootfs/`, written only after the unpack engine verified every layer's
 * digest, size and diff_id for that rootfs):
 * ```json
 * {"version":1,"manifest":"sha256:…","diff_ids":["sha256:…",…],"chain_ids":["sha256:…",…],"rootless":false,
 *  "tree":{"entries":1234,"fingerprint":"sha256:…"}}
 * ```
 * A store entry without this file (extracted by an older ocigen, or by the
 * per-unit `extract`) is never used as a source: declared diff_ids alone are
 * never trusted. The record goes when gc-extracts removes the store entry.
 *
 * `tree` fingerprints the tree as published: sha256 over the sorted lines
 * `path NUL mode NUL uid:gid NUL size NUL ctime` of every entry. A rootfs is
 * served to a service (`RootDirectory=`), which may write into it; any change
 * of content, metadata, links or entries changes some ctime (which no
 * unprivileged call can set back), so a copy whose source no longer matches
 * its fingerprint is thrown away and the image unpacked from its layers.
 *
 * @module
 */
import * as fs from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { writeFileAtomic } from "../fs/atomic.ts";
import { storeDigests, storeDir, storeRootfs } from "./paths.ts";

/** File name of the chain record inside a store entry. */
export const CHAIN_FILE = "ocigen-chain.json";

/** A chain record (see the module docs). */
export interface ChainRecord {
  version: 1;
  manifest: string;
  diff_ids: string[];
  chain_ids: string[];
  /** Whether the tree was applied in rootless mode (owners not applied). */
  rootless: boolean;
  /** Fingerprint of the tree when it was recorded. */
  tree: TreeFingerprint;
}

/** See the module docs. */
export interface TreeFingerprint {
  entries: number;
  fingerprint: string;
}

/**
 * Accumulates the fingerprint of a tree from its entries in any order.
 *
 * @example
 * ```ts
 * const fp = new Fingerprinter();
 * fp.add("etc/passwd", fs.lstatSync("/r/etc/passwd"));
 * fp.result(); // { entries: 1, fingerprint: "sha256:…" }
 * ```
 */
export class Fingerprinter {
  private lines: string[] = [];
  /** Adds one entry (`rel` "" for the root). */
  add(rel: string, st: fs.Stats): void {
    this.lines.push(`${rel}\0${st.mode}\0${st.uid}:${st.gid}\0${st.isDirectory() ? 0 : st.size}\0${st.ctimeMs}`);
  }
  /** The fingerprint of the entries added. */
  result(): TreeFingerprint {
    this.lines.sort();
    const h = createHash("sha256");
    for (const l of this.lines) h.update(l + "\n");
    return { entries: this.lines.length, fingerprint: "sha256:" + h.digest("hex") };
  }
}

/**
 * The fingerprint of the tree at `root` (see the module docs).
 *
 * @example
 * ```ts
 * treeFingerprint("/var/lib/oci/extracts/.store/sha256/ab…/rootfs");
 * ```
 */
export function treeFingerprint(root: string): TreeFingerprint {
  const fp = new Fingerprinter();
  const walk = (rel: string) => {
    const abs = rel ? join(root, rel) : root;
    const st = fs.lstatSync(abs);
    fp.add(rel, st);
    if (st.isDirectory()) for (const n of fs.readdirSync(abs)) walk(rel ? `${rel}/${n}` : n);
  };
  walk("");
  return fp.result();
}

/**
 * The ChainIDs of every prefix of `diffIds` (`result[i]` is the chain of layers 0..i).
 *
 * @example
 * ```ts
 * chainIds(["sha256:aa…", "sha256:bb…"]); // ["sha256:aa…", "sha256:<sha256 of 'sha256:aa… sha256:bb…'>"]
 * ```
 */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  let prev = "";
  for (const d of diffIds) {
    prev = prev === "" ? d : "sha256:" + createHash("sha256").update(`${prev} ${d}`).digest("hex");
    out.push(prev);
  }
  return out;
}

/**
 * Records that the store rootfs of `manifest` was built from layers whose
 * diff_ids were verified to be `diffIds` (atomic write).
 *
 * @example
 * ```ts
 * await writeChainRecord("/var/lib/oci/extracts", manifestDigest, verifiedDiffIds, false);
 * ```
 */
export async function writeChainRecord(extractsDir: string, manifest: string, diffIds: string[], rootless: boolean): Promise<void> {
  await writeChainRecordFile(join(storeDir(extractsDir, manifest), CHAIN_FILE), storeRootfs(extractsDir, manifest), manifest, diffIds, rootless);
}

/**
 * Writes the chain record of the tree `root` to `file` (fingerprinting the tree now).
 *
 * @example
 * ```ts
 * await writeChainRecordFile("/x/.store/.bulk-1/chain-0.json", "/x/.store/.bulk-1/chain-0", manifest, diffIds.slice(0, 3), false);
 * ```
 */
export async function writeChainRecordFile(file: string, root: string, manifest: string, diffIds: string[], rootless: boolean): Promise<void> {
  const rec: ChainRecord = { version: 1, manifest, diff_ids: diffIds, chain_ids: chainIds(diffIds), rootless, tree: treeFingerprint(root) };
  await writeFileAtomic(file, JSON.stringify(rec) + "\n");
}

/**
 * Reads the chain record of a store entry; `null` when there is none, it is
 * malformed, or its rootfs is missing.
 *
 * @example
 * ```ts
 * const rec = readChainRecord("/var/lib/oci/extracts", manifestDigest);
 * ```
 */
export function readChainRecord(extractsDir: string, manifest: string): ChainRecord | null {
  const rec = readChainRecordFile(join(storeDir(extractsDir, manifest), CHAIN_FILE));
  if (!rec || rec.manifest !== manifest) return null;
  try {
    if (!fs.lstatSync(storeRootfs(extractsDir, manifest)).isDirectory()) return null;
  } catch {
    return null;
  }
  return rec;
}

/**
 * Reads and checks a chain record file; `null` when missing or malformed.
 *
 * @example
 * ```ts
 * readChainRecordFile("/x/.store/sha256/ab…/ocigen-chain.json");
 * ```
 */
export function readChainRecordFile(file: string): ChainRecord | null {
  try {
    const rec = JSON.parse(fs.readFileSync(file, "utf8")) as ChainRecord;
    if (rec?.version !== 1 || !Array.isArray(rec.diff_ids) || !Array.isArray(rec.chain_ids)) return null;
    if (typeof rec.tree?.fingerprint !== "string" || typeof rec.tree.entries !== "number") return null;
    const want = chainIds(rec.diff_ids);
    if (want.length !== rec.chain_ids.length || want.some((c, i) => c !== rec.chain_ids[i])) return null;
    return rec;
  } catch {
    return null;
  }
}

/**
 * Every chain record in the store of `extractsDir`.
 *
 * @example
 * ```ts
 * for (const rec of scanChainRecords("/var/lib/oci/extracts")) console.log(rec.manifest, rec.chain_ids.length);
 * ```
 */
export function scanChainRecords(extractsDir: string): ChainRecord[] {
  const out: ChainRecord[] = [];
  for (const digest of storeDigests(extractsDir)) {
    const rec = readChainRecord(extractsDir, digest);
    if (rec) out.push(rec);
  }
  return out;
}

/**
 * Length of the common prefix of two chain lists (the number of bottom
 * layers two images share).
 *
 * @example
 * ```ts
 * commonPrefix(["a", "b", "c"], ["a", "b", "x"]); // 2
 * ```
 */
export function commonPrefix(a: readonly string[], b: readonly string[]): number {
  // Chain ids commit to the whole prefix: the last equal index decides.
  let n = Math.min(a.length, b.length);
  while (n > 0 && a[n - 1] !== b[n - 1]) n--;
  return n;
}
