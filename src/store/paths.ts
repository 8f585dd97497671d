/**
 * The extracts store: where the generator, `ocigen extract` and
 * `extract --all` keep things under `extractsdir`.
 *
 * On-disk format:
 * ```
 * EXTRACTS/.store/<alg>/<hex>/rootfs     the rootfs of manifest <alg>:<hex>, published atomically by the unpack engine
 * EXTRACTS/.store/<alg>/<hex>.lock       lock file held while that rootfs is extracted or removed
 * EXTRACTS/<unit base>/rootfs            symlink -> ../.store/<alg>/<hex>/rootfs: what the unit runs (RootDirectory=)
 * EXTRACTS/<unit base>/config.json       runc/crun mode only: the runtime-spec config of the bundle EXTRACTS/<unit base>
 * EXTRACTS/<unit base>/current.json      {"name","tag","manifest"}: what the link was last pointed at
 * ```
 * `<unit base>` is the unit name without `.service` (unique per layout and
 * tag, never starting with `.`), so per-unit directories cannot clash with
 * `.store` or with each other. (`EXTRACTS/<unit base>/rootfs` is a
 * convenience for people and gc; units never run a symlinked root, see
 * src/generator/state.ts.)
 *
 * Permissions: `.store` (and every per-unit directory) is created 0700,
 * owned by root, before any content goes in — and an existing one is
 * closed again — so no other local user can reach an image's setuid-root
 * binaries, device nodes or private files through it: path lookup stops
 * at `.store` with EACCES. Services reach their rootfs only through an
 * overlay mounted by root (src/generator/serviceroot.ts); the store itself
 * is never written by a service.
 *
 * @module
 */
import * as fs from "node:fs";
import { join, relative } from "node:path";
import { parseDigest } from "../oci/digest.ts";
import { wrapIo } from "../errors.ts";

/** Mode of `.store` and of every per-unit directory. */
export const STORE_MODE = 0o700;

/**
 * Creates `EXTRACTS/.store` (and `EXTRACTS`) if missing and makes `.store`
 * mode 0700 (see the module docs). Returns its path.
 *
 * @example
 * ```ts
 * ensureStore("/var/lib/oci/extracts"); // "/var/lib/oci/extracts/.store", mode 0700
 * ```
 */
export function ensureStore(extractsDir: string): string {
  const root = join(extractsDir, ".store");
  try {
    fs.mkdirSync(root, { recursive: true, mode: STORE_MODE });
    if ((fs.statSync(root).mode & 0o777) !== STORE_MODE) fs.chmodSync(root, STORE_MODE);
  } catch (e) {
    throw wrapIo(e, "create the extracts store", root);
  }
  return root;
}

/**
 * The store directory of manifest `digest`.
 *
 * @example
 * ```ts
 * storeDir("/var/lib/oci/extracts", "sha256:" + "a".repeat(64)); // "/var/lib/oci/extracts/.store/sha256/aaaa…"
 * ```
 */
export function storeDir(extractsDir: string, digest: string): string {
  const d = parseDigest(digest, "manifest digest");
  return join(extractsDir, ".store", d.algorithm, d.encoded);
}

/**
 * The rootfs of manifest `digest` in the store.
 *
 * @example
 * ```ts
 * storeRootfs("/x", "sha256:" + "a".repeat(64)); // "/x/.store/sha256/aaaa…/rootfs"
 * ```
 */
export function storeRootfs(extractsDir: string, digest: string): string {
  return join(storeDir(extractsDir, digest), "rootfs");
}

/**
 * The per-unit directory (also the runc/crun bundle).
 *
 * @example
 * ```ts
 * unitDir("/x", "busybox.ref.latest"); // "/x/busybox.ref.latest"
 * ```
 */
export function unitDir(extractsDir: string, base: string): string {
  return join(extractsDir, base);
}

/**
 * The stable rootfs path of a unit (a symlink into the store).
 *
 * @example
 * ```ts
 * unitRootfs("/x", "busybox.ref.latest"); // "/x/busybox.ref.latest/rootfs"
 * ```
 */
export function unitRootfs(extractsDir: string, base: string): string {
  return join(extractsDir, base, "rootfs");
}

/**
 * The manifest digests that have an entry in the store of `extractsDir`
 * (`.store/<alg>/<hex>`; lock files, dot-entries and names that are not valid
 * digests are passed over). An absent store has none.
 *
 * @example
 * ```ts
 * for (const digest of storeDigests("/var/lib/oci/extracts")) console.log(storeRootfs("/var/lib/oci/extracts", digest));
 * ```
 */
export function storeDigests(extractsDir: string): string[] {
  const root = join(extractsDir, ".store");
  const out: string[] = [];
  let algs: string[] = [];
  try {
    algs = fs.readdirSync(root);
  } catch { /* no store */ }
  for (const alg of algs) {
    if (alg.startsWith(".")) continue;
    let names: string[];
    try {
      names = fs.readdirSync(join(root, alg));
    } catch {
      continue;
    }
    for (const hex of names) {
      if (hex.startsWith(".") || hex.endsWith(".lock")) continue;
      const digest = `${alg}:${hex}`;
      try {
        parseDigest(digest);
      } catch {
        continue;
      }
      out.push(digest);
    }
  }
  return out;
}

/**
 * The manifest digest whose store rootfs `path` is
 * (`EXTRACTS/.store/<alg>/<hex>/rootfs`, absolute), else null: what a unit's
 * `rootfs` link or a mounted service root's lower directory refers to.
 *
 * @example
 * ```ts
 * storeDigestOf("/x", "/x/.store/sha256/abc…/rootfs"); // "sha256:abc…"
 * storeDigestOf("/x", "/elsewhere"); // null
 * ```
 */
export function storeDigestOf(extractsDir: string, path: string): string | null {
  const prefix = join(extractsDir, ".store") + "/";
  if (!path.startsWith(prefix)) return null;
  const rel = path.slice(prefix.length).split("/");
  return rel.length === 3 && rel[2] === "rootfs" ? `${rel[0]}:${rel[1]}` : null;
}

/**
 * True when the store holds the rootfs of `manifest` and, with `link`, the
 * unit's link points at it: `extractIfMissing` (./extract.ts) would do nothing.
 *
 * @example
 * ```ts
 * isCurrent("/var/lib/oci/extracts", manifest, "busybox.ref.latest");
 * ```
 */
export function isCurrent(extractsDir: string, manifest: string, link?: string): boolean {
  const store = storeRootfs(extractsDir, manifest);
  try {
    // not extracted is the common case (the generator asks for every tag at every boot): no exception for it
    if (!fs.lstatSync(store, { throwIfNoEntry: false })?.isDirectory()) return false;
    return link === undefined || fs.readlinkSync(unitRootfs(extractsDir, link)) === relative(unitDir(extractsDir, link), store);
  } catch {
    return false;
  }
}
