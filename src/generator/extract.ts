/**
 * `ocigen extract --name N --ref T`: what each generated unit runs before
 * start (from its companion unit `ocigen-extract@<unit>.service`, see unit.ts), and `ocigen gc-extracts`.
 *
 * extract resolves the tag now (it may have moved since the units were
 * generated), makes sure the rootfs of that manifest exists in the store
 * (`EXTRACTS/.store/<alg>/<hex>/rootfs`, unpacked by the unpack engine:
 * every layer verified, built beside its place and renamed into it), then
 * points the unit's stable path `EXTRACTS/<unit>/rootfs` at it by renaming
 * a fresh symlink over the old one (atomic: a reader sees the old or the new
 * rootfs, never neither). When the link already points at the tag's
 * manifest and that rootfs exists it changes nothing. Work on one manifest
 * is serialized by a lock file (`EXTRACTS/.store/<alg>/<hex>.lock`), so two
 * units starting at once extract an image once and both succeed. On any
 * error the link is not touched: the previous rootfs stays served. See
 * paths.ts for the on-disk layout.
 *
 * With `--user SPEC=UID:GID` (written by the generator into every unit whose
 * image sets a user) extract resolves SPEC in the image's own passwd/group
 * and fails unless it gives UID:GID — see unit.ts for why.
 * With `--bundle` (runc/crun units) it also writes the runtime-spec
 * `EXTRACTS/<unit>/config.json` (root: the store rootfs, read-only).
 *
 * gc-extracts removes per-unit directories whose layout and tag are gone and
 * store entries that no unit link and no current tag references; it skips
 * anything a broken layout might still need (the unit directories its
 * `current.json` — or, without one, its name — ties to that layout, and their
 * store entries) and anything locked, collects everything else, and reports
 * the broken layouts as errors.
 *
 * @module
 */
import * as fs from "node:fs";
import { dirname, join, relative } from "node:path";
import process from "node:process";
import { OcigenError, shortDigest, wrapIo } from "../errors.ts";
import { acquireLock, type LockHandle } from "../fs/lock.ts";
import { tempPath, writeFileAtomic } from "../fs/atomic.ts";
import { log } from "../log.ts";
import { Layout, type ResolvedImage } from "../oci/layout.ts";
import { parseDigest } from "../oci/digest.ts";
import { checkLayerCount } from "../oci/validate.ts";
// The unpack engine (layer/unpack.ts: decompressors, tar, WASM) is imported
// only when something is extracted or removed: `ocigen extract` runs before
// every start of a generated unit and is usually a no-op.
import type { UnpackOptions } from "../layer/unpack.ts";
import { convertConfig } from "../layer/convert.ts";
import type { GeneratorConfig } from "./config.ts";
import { checkInsideLayoutDir, discoverLayouts } from "./discover.ts";
import { layoutNameComponents, unitBaseName } from "./naming.ts";
import { imagePlatform } from "./settings.ts";
import { checkImagePlatform } from "../oci/platform.ts";
import type { Platform } from "../oci/types.ts";
import { storeDigests, storeDir, storeRootfs, unitDir, unitRootfs } from "./paths.ts";
import { resolveUserInRoot } from "./rootfs.ts";

/** Options of {@linkcode extract}. */
export interface ExtractOptions {
  config: GeneratorConfig;
  name: string;
  tag: string;
  /** `SPEC=UID:GID` to check in the extracted rootfs. */
  user?: string;
  /** Write the runc/crun bundle `config.json`. */
  bundle?: boolean;
  /** Lock wait limit in ms (default: `$OCIGEN_LOCK_TIMEOUT` s, else 1 hour). */
  lockTimeoutMs?: number;
  /** Passed to the unpack engine. */
  unpack?: UnpackOptions;
  /** The platform picked from a multi-platform tag (default: the image's settings, else the host's). */
  platform?: Platform;
  /** The host's /etc (default "/etc"), read for existing uids/gids. */
  hostEtc?: string;
  /**
   * With `user`: add nss-systemd records (config `userdbdir`) for ids the
   * host lacks, see {@linkcode ensureHostIds}. The `extract` verb (what units
   * run) sets it; library callers opt in.
   */
  ensureIds?: boolean;
}

/** What {@linkcode extract} did. */
export interface ExtractResult {
  /** The unit's stable rootfs path (the symlink). */
  rootfs: string;
  /** The store rootfs it points at. */
  store: string;
  /** Manifest digest of the tag now. */
  manifest: string;
  /** True if this call unpacked the image. */
  extracted: boolean;
  /** True if this call changed the link (or the bundle config). */
  changed: boolean;
  /** userdb records written for ids the host lacked. */
  userdb: string[];
}

/** Metadata written beside the unit's link (`current.json`). */
interface Current {
  name: string;
  tag: string;
  manifest: string;
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch {
    return null;
  }
}

function readlinkOrNull(p: string): string | null {
  try {
    return fs.readlinkSync(p);
  } catch {
    return null;
  }
}

function lockTimeout(ms?: number): number {
  if (ms !== undefined) return ms;
  const env = Number(process.env.OCIGEN_LOCK_TIMEOUT);
  return Number.isFinite(env) && env > 0 ? env * 1000 : 3600_000;
}

/**
 * Opens layout `name` below the configured layout directory (the name is
 * checked: relative, normalized).
 *
 * @example
 * ```ts
 * const layout = await openNamedLayout(cfg, "myorg.com/myapp");
 * ```
 */
export async function openNamedLayout(cfg: GeneratorConfig, name: string): Promise<Layout> {
  layoutNameComponents(name);
  checkInsideLayoutDir(cfg.imageLayoutDir, join(cfg.imageLayoutDir, name));
  return await Layout.open(join(cfg.imageLayoutDir, name));
}

/** Replaces the symlink at `link` by one to `target`, atomically. */
function relink(link: string, target: string): void {
  const tmp = tempPath(dirname(link));
  try {
    fs.symlinkSync(target, tmp);
    fs.renameSync(tmp, link);
  } catch (e) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch { /* ignore */ }
    throw wrapIo(e, "replace symlink", link);
  }
}

function checkUser(check: string, rootfs: string, where: string): { uid: number; gid: number } {
  const eq = check.lastIndexOf("=");
  const m = /^(\d+):(\d+)$/.exec(check.slice(eq + 1));
  if (eq <= 0 || !m) throw new OcigenError("EUSAGE", `Bad --user ${JSON.stringify(check)}: expected SPEC=UID:GID`);
  const spec = check.slice(0, eq);
  const ids = resolveUserInRoot(rootfs, spec);
  if (ids.uid !== Number(m[1]) || ids.gid !== Number(m[2])) {
    throw new OcigenError(
      "EGENERATE",
      `${where}: image user ${JSON.stringify(spec)} is ${ids.uid}:${ids.gid} in the image, but the unit was generated with ` +
        `${m[1]}:${m[2]} (rootfs not yet extracted or tag moved); run \`systemctl daemon-reload\` and start it again`,
    );
  }
  return ids;
}

function hostHasId(file: string, id: number, field: number): boolean {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return false;
  }
  return text.split("\n").some((l) => l.split(":")[field] === String(id));
}

/**
 * Makes `uid` and `gid` resolvable on the host for systemd's `User=`/`Group=`:
 * for an id missing from `etc/passwd` (`etc/group`) it writes an
 * nss-systemd drop-in record `ocigen-u<uid>.user` plus the `<uid>.user`
 * symlink (`ocigen-g<gid>.group`, `<gid>.group`) into `dir`, atomically,
 * unless a record for that id is there already. Returns the files written.
 *
 * @example
 * ```ts
 * ensureHostIds("/run/userdb", "/etc", 101, 101); // ["/run/userdb/ocigen-u101.user", ...]
 * ```
 */
export function ensureHostIds(dir: string, etc: string, uid: number, gid: number): string[] {
  const out: string[] = [];
  const put = (kind: "user" | "group", id: number, record: Record<string, unknown>, name: string) => {
    const link = join(dir, `${id}.${kind}`);
    if (lstatOrNull(link)) return;
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      const file = join(dir, `${name}.${kind}`);
      const tmp = tempPath(dir);
      fs.writeFileSync(tmp, JSON.stringify(record) + "\n", { mode: 0o644 });
      fs.chmodSync(tmp, 0o644);
      fs.renameSync(tmp, file);
      relink(link, `${name}.${kind}`);
      out.push(file, link);
    } catch (e) {
      throw wrapIo(e, `write ${kind} record`, dir);
    }
  };
  if (uid !== 0 && !hostHasId(join(etc, "passwd"), uid, 2)) {
    const name = `ocigen-u${uid}`;
    put("user", uid, { userName: name, uid, gid, realName: "ocigen image user", homeDirectory: "/", shell: "/usr/sbin/nologin", locked: true, disposition: "container" }, name);
  }
  if (gid !== 0 && !hostHasId(join(etc, "group"), gid, 2)) {
    const name = `ocigen-g${gid}`;
    put("group", gid, { groupName: name, gid, disposition: "container" }, name);
  }
  return out;
}

/**
 * Makes sure the rootfs of `name:tag` is extracted, verified and current
 * (see the module docs).
 *
 * @example
 * ```ts
 * const r = await extract({ config: loadGeneratorConfig(), name: "busybox", tag: "latest" });
 * console.log(r.rootfs, "->", r.store, r.extracted ? "(extracted)" : "");
 * ```
 */
export async function extract(opts: ExtractOptions): Promise<ExtractResult> {
  const { config: cfg, name, tag } = opts;
  const base = unitBaseName(name, tag);
  const where = `${name}:${tag}`;
  const layout = await openNamedLayout(cfg, name);
  const platform = opts.platform ?? imagePlatform(cfg, name, tag);
  const img = await layout.resolve(tag, platform);
  checkImagePlatform(img.config, platform, where);
  const manifest = img.manifestDescriptor.digest;
  const store = storeRootfs(cfg.extractsDir, manifest);
  const udir = unitDir(cfg.extractsDir, base);
  const link = unitRootfs(cfg.extractsDir, base);
  const target = relative(udir, store);
  const result: ExtractResult = { rootfs: link, store, manifest, extracted: false, changed: false, userdb: [] };
  const userCheck = (root: string) => {
    if (!opts.user) return;
    const ids = checkUser(opts.user, root, where);
    if (opts.ensureIds && cfg.userdbDir) result.userdb = ensureHostIds(cfg.userdbDir, opts.hostEtc ?? "/etc", ids.uid, ids.gid);
  };

  const current = readlinkOrNull(link) === target && lstatOrNull(store)?.isDirectory();
  const bundleText = opts.bundle ? bundleConfig(img, store) : undefined;
  const bundlePath = join(udir, "config.json");
  const bundleCurrent = !opts.bundle || (fs.existsSync(bundlePath) && fs.readFileSync(bundlePath, "utf8") === bundleText);
  if (current && bundleCurrent) {
    userCheck(store);
    log.info(`${where}: ${link} is current (${shortDigest(manifest)})`);
    return result;
  }

  const sdir = storeDir(cfg.extractsDir, manifest);
  // The store entry and the unit directory, when this run creates them, are
  // made under the manifest's lock and removed again (if still empty) when the
  // run fails: a failed first extract (a full disk) leaves no empty entries.
  const made: string[] = [];
  const mkdir = (dir: string) => {
    try {
      if (!lstatOrNull(dir)) {
        fs.mkdirSync(dir, { recursive: true });
        made.push(dir);
      }
    } catch (e) {
      throw wrapIo(e, "mkdir", dir);
    }
  };
  try {
    fs.mkdirSync(dirname(sdir), { recursive: true }); // shared by every entry: kept
  } catch (e) {
    throw wrapIo(e, "mkdir", dirname(sdir));
  }
  const lock: LockHandle = await acquireLock(`${sdir}.lock`, `extract of ${shortDigest(manifest)}`, lockTimeout(opts.lockTimeoutMs));
  try {
    if (!lstatOrNull(store)?.isDirectory()) {
      log.info(`${where}: extracting ${shortDigest(manifest)} into ${store}`);
      checkLayerCount(img, `${layout.dir}:${tag}`);
      mkdir(sdir);
      const { unpackRootfs } = await import("../layer/unpack.ts");
      await unpackRootfs(layout, img, store, opts.unpack ?? {});
      result.extracted = true;
    }
    userCheck(store);
    mkdir(udir);
    if (opts.bundle && !bundleCurrent) {
      await writeFileAtomic(bundlePath, bundleConfig(img, store));
      result.changed = true;
    }
    if (readlinkOrNull(link) !== target) {
      relink(link, target);
      result.changed = true;
    }
    const meta: Current = { name, tag, manifest };
    await writeFileAtomic(join(udir, "current.json"), JSON.stringify(meta) + "\n");
  } catch (e) {
    // Deepest first; rmdir removes a directory only while it is empty (never what another run put there).
    for (const dir of made.reverse()) {
      try {
        fs.rmdirSync(dir);
      } catch { /* not empty (in use), or gone */ }
    }
    throw e;
  } finally {
    lock.release();
  }
  return result;
}

/** The runtime-spec config.json text of a runc/crun bundle. */
function bundleConfig(img: ResolvedImage, store: string): string {
  const spec = convertConfig(img.config, { rootfs: fs.existsSync(store) ? store : undefined, rootPath: store });
  spec.root = { path: store, readonly: true };
  return JSON.stringify(spec, null, 2) + "\n";
}

/** Options of {@linkcode gcExtracts}. */
export interface GcOptions {
  config: GeneratorConfig;
  /** Report what would be removed, remove nothing. */
  dryRun?: boolean;
}

/** What {@linkcode gcExtracts} did. */
export interface GcResult {
  /** Removed (or, dry-run, removable) paths. */
  removed: string[];
  /** Problems met (gc kept what they might concern). */
  errors: string[];
}

/**
 * Removes extracts no longer referenced (see the module docs).
 *
 * @example
 * ```ts
 * const { removed } = await gcExtracts({ config: loadGeneratorConfig() });
 * ```
 */
export async function gcExtracts(opts: GcOptions): Promise<GcResult> {
  const cfg = opts.config;
  const removed: string[] = [];
  const errors: string[] = [];
  const live = new Set<string>(); // unit bases of current tags
  const referenced = new Set<string>(); // manifest digests to keep
  const brokenLayouts = new Set<string>();
  const { removeTree } = await import("../layer/unpack.ts");
  const disc = await discoverLayouts(cfg.imageLayoutDir);
  errors.push(...disc.errors);
  for (const { name, dir } of disc.layouts) {
    let layout: Layout;
    let tags: string[];
    try {
      layout = await Layout.open(dir);
      tags = await layout.listTags();
    } catch (e) {
      brokenLayouts.add(name);
      errors.push(`layout ${name}: ${(e as Error).message} (its extracts are kept)`);
      continue;
    }
    for (const tag of tags) {
      try {
        live.add(unitBaseName(name, tag));
        referenced.add((await layout.resolve(tag, imagePlatform(cfg, name, tag))).manifestDescriptor.digest);
      } catch (e) {
        brokenLayouts.add(name);
        errors.push(`layout ${name} tag ${tag}: ${(e as Error).message} (the layout's extracts are kept)`);
      }
    }
  }
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(cfg.extractsDir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { removed, errors };
    throw wrapIo(e, "read directory", cfg.extractsDir);
  }
  const storePrefix = join(cfg.extractsDir, ".store") + "/";
  const discovered = new Set(disc.layouts.map((l) => l.name));
  // Unit directory names of a broken layout start with this prefix (null: not computable, so any name may be one).
  const brokenPrefixes = [...brokenLayouts].map((n) => {
    try {
      return unitBaseName(n, "x").slice(0, -1);
    } catch {
      return null;
    }
  });
  // Per-unit directories: kept when their tag is current or their layout cannot be read; a store entry
  // is removed only when no kept unit links to it and no readable tag names it.
  for (const d of entries) {
    if (d.name.startsWith(".") || !d.isDirectory()) continue;
    const udir = join(cfg.extractsDir, d.name);
    let meta: Current | null = null;
    try {
      meta = JSON.parse(fs.readFileSync(join(udir, "current.json"), "utf8")) as Current;
    } catch { /* unknown */ }
    let keep: boolean;
    if (live.has(d.name)) keep = true;
    else if (meta && typeof meta.name === "string") {
      // the unit's layout is broken, or may exist unseen (the walk met an unreadable directory)
      keep = brokenLayouts.has(meta.name) || (disc.errors.length > 0 && !discovered.has(meta.name));
    } else {
      // no readable current.json: attributed to a layout by its name (never to fewer layouts than it may belong to)
      keep = disc.errors.length > 0 || brokenPrefixes.some((p) => p === null || d.name.startsWith(p));
    }
    const t = readlinkOrNull(join(udir, "rootfs"));
    if (keep) {
      if (meta && typeof meta.manifest === "string") referenced.add(meta.manifest);
      if (t) {
        const abs = join(udir, t);
        if (abs.startsWith(storePrefix)) {
          const rel = abs.slice(storePrefix.length).split("/");
          if (rel.length === 3 && rel[2] === "rootfs") referenced.add(`${rel[0]}:${rel[1]}`);
        }
      }
      continue;
    }
    removed.push(udir);
    if (!opts.dryRun) {
      try {
        removeTree(udir);
      } catch (e) {
        errors.push(wrapIo(e, "remove", udir).message);
      }
    }
  }
  // Store entries.
  for (const digest of storeDigests(cfg.extractsDir)) {
    if (referenced.has(digest)) continue;
    const sdir = storeDir(cfg.extractsDir, digest);
    removed.push(sdir);
    if (opts.dryRun) continue;
    let lock: LockHandle;
    try {
      lock = await acquireLock(`${sdir}.lock`, `gc of ${shortDigest(digest)}`, 0);
    } catch (e) {
      removed.pop();
      log.info(`${sdir}: in use, kept (${(e as Error).message})`);
      continue;
    }
    try {
      removeTree(sdir);
    } catch (e) {
      errors.push(wrapIo(e, "remove", sdir).message);
    } finally {
      lock.release();
    }
  }
  return { removed, errors };
}
