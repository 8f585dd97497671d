/**
 * `ocigen install-generator` / `ocigen uninstall-generator`: put the program,
 * the systemd generator link, `oci.slice` and a default config in place under
 * a prefix, and take exactly that away again.
 *
 * Layout (relative to the prefix, `/` by default; see {@linkcode INSTALL_PATHS}):
 * ```
 * usr/local/bin/ocigen                                      program (binary or wrapper script)
 * usr/local/lib/systemd/system-generators/ocigen-generator  -> ../../../bin/ocigen
 * usr/local/lib/systemd/system/oci.slice                    the services' slice
 * usr/local/lib/systemd/system/ocigen-update.{service,timer} `ocigen update`, every 15 min once enabled
 * etc/oci-generator.conf                                    only when absent
 * usr/local/lib/ocigen/install-manifest.json                what was installed
 * usr/local/lib/ocigen/ocigen.mjs, ocigen-generator.mjs     the bundles a wrapper script runs (no binary);
 *   ocigen.mjs.program, ocigen.mjs.cache                    what the main bundle's loader runs (.ci/code-cache.mjs)
 * ```
 * Every conflict is found before anything is written: a file at one of these
 * paths that ocigen did not install (or that was changed since) is never
 * replaced without `force`. The config is never replaced, and uninstall
 * removes it only when ocigen created it and it is unchanged.
 *
 * @module
 */
import {
  chmodSync, closeSync, copyFileSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync,
  readSync, realpathSync, renameSync, rmdirSync, rmSync, statSync, symlinkSync, writeFileSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import process from "node:process";
import { OcigenError, wrapIo } from "../errors.ts";
import { VERSION } from "../version.ts";
import { defaultConfig, INSTALL_PATHS, sliceUnit, updateServiceUnit, updateTimerUnit, wrapperScript } from "./files.ts";
import { type InstallManifest, MANIFEST_FORMAT, type ManifestEntry, manifestText, readManifest } from "./manifest.ts";
import { DENO_PERMISSIONS, DENO_V8_FLAGS, isDeno, isSea } from "./self.ts";

/** Options of {@linkcode installGenerator}. */
export interface InstallOptions {
  /** Root of the installation (like DESTDIR); default `/`. */
  prefix?: string;
  /** File to install as the program; default: this binary in SEA mode, else a wrapper script. */
  bin?: string;
  /** argv prefix the wrapper script runs (default: this runtime + the bundled dist/ocigen.mjs). */
  runtime?: string[];
  /** Replace files at our paths that ocigen did not install. */
  force?: boolean;
}

/** What install or uninstall did, one human-readable line per path. */
export interface InstallResult {
  prefix: string;
  actions: string[];
  /** Paths left in place on uninstall because they were changed (or are not ours). */
  kept: string[];
}

type Content = { kind: "bytes"; data: Uint8Array } | { kind: "copy"; from: string };

/** A regular file to install: path under the prefix, content, mode, and how to describe it. */
type RegularFile = { rel: string; content: Content; mode: number; what: string };

interface Planned {
  entry: ManifestEntry;
  /** undefined: already as wanted, nothing to write. */
  write?: { content?: Content; target?: string };
  what: string;
}

/**
 * Installs the program, the generator link, `oci.slice` and (if absent) the
 * config under `prefix`. Idempotent: a second run changes nothing and says so.
 *
 * @example
 * ```ts
 * const r = installGenerator({ prefix: "/tmp/root", bin: "dist/ocigen" });
 * for (const line of r.actions) console.log(line);
 * ```
 */
export function installGenerator(opts: InstallOptions = {}): InstallResult {
  const prefix = resolve(opts.prefix ?? "/");
  const abs = (rel: string) => join(prefix, rel);
  const old = readManifest(abs(INSTALL_PATHS.manifest));
  const oldEntry = (path: string) => old?.entries.find((e) => e.path === path);

  const program = programContent(opts);
  const plans: Planned[] = [];
  const conflicts: string[] = [];

  // Regular files: the program (and what a wrapper runs) and the slice.
  const files: RegularFile[] = [
    ...program.extra,
    { rel: INSTALL_PATHS.binary, content: program.content, mode: 0o755, what: program.what },
    { rel: INSTALL_PATHS.slice, content: { kind: "bytes", data: utf8(sliceUnit()) }, mode: 0o644, what: "slice unit" },
    { rel: INSTALL_PATHS.updateService, content: { kind: "bytes", data: utf8(updateServiceUnit()) }, mode: 0o644, what: "ocigen update service" },
    { rel: INSTALL_PATHS.updateTimer, content: { kind: "bytes", data: utf8(updateTimerUnit()) }, mode: 0o644, what: "ocigen update timer (enable: systemctl enable --now ocigen-update.timer)" },
  ];
  for (const f of files) {
    const want = hashContent(f.content);
    const entry: ManifestEntry = { path: f.rel, type: "file", sha256: want, mode: f.mode };
    const st = lstatOrUndefined(abs(f.rel));
    if (!st) {
      plans.push({ entry, write: { content: f.content }, what: `installed ${abs(f.rel)} (${f.what})` });
      continue;
    }
    const have = st.isFile() ? hashFile(abs(f.rel)) : undefined;
    if (have === want && (st.mode & 0o7777) === f.mode) {
      plans.push({ entry, what: `up to date ${abs(f.rel)}` });
    } else if (opts.force || (have !== undefined && oldEntry(f.rel)?.sha256 === have)) {
      if (st.isDirectory()) conflicts.push(`${abs(f.rel)} is a directory`);
      plans.push({ entry, write: { content: f.content }, what: `updated ${abs(f.rel)} (${f.what})` });
    } else {
      conflicts.push(`${abs(f.rel)} exists and was not installed by ocigen${oldEntry(f.rel) ? " (or was changed since)" : ""}`);
    }
  }

  // The generator link.
  {
    const rel = INSTALL_PATHS.generator;
    const target = INSTALL_PATHS.generatorTarget;
    const entry: ManifestEntry = { path: rel, type: "symlink", target };
    const st = lstatOrUndefined(abs(rel));
    const cur = st?.isSymbolicLink() ? readlinkSync(abs(rel)) : undefined;
    if (!st) plans.push({ entry, write: { target }, what: `linked ${abs(rel)} -> ${target}` });
    else if (cur === target) plans.push({ entry, what: `up to date ${abs(rel)}` });
    else if ((opts.force && !st.isDirectory()) || (cur !== undefined && oldEntry(rel)?.target === cur)) {
      plans.push({ entry, write: { target }, what: `relinked ${abs(rel)} -> ${target}` });
    } else conflicts.push(`${abs(rel)} exists and was not installed by ocigen`);
  }

  // The config: written only when absent; ours only if we wrote it.
  {
    const rel = INSTALL_PATHS.config;
    const data = utf8(defaultConfig());
    if (!lstatOrUndefined(abs(rel))) {
      plans.push({
        entry: { path: rel, type: "config", sha256: sha256(data), mode: 0o644 },
        write: { content: { kind: "bytes", data } },
        what: `wrote default ${abs(rel)}`,
      });
    } else {
      const mine = oldEntry(rel);
      if (mine?.type === "config") plans.push({ entry: mine, what: `kept ${abs(rel)}` });
      else plans.push({ entry: { path: rel, type: "config" }, what: `kept existing ${abs(rel)} (not ours)` });
    }
  }

  if (conflicts.length) {
    throw new OcigenError("EINSTALL", `Cannot install into ${prefix}: ${conflicts.join("; ")}; nothing was changed (--force replaces)`);
  }

  // Execute: directories, then files, then the manifest. The prefix itself is
  // created if needed but is the caller's (never recorded, never removed).
  try {
    mkdirSync(prefix, { recursive: true });
  } catch (e) {
    throw wrapIo(e, "create prefix", prefix);
  }
  const created: string[] = [];
  const ensureDir = (relDir: string) => {
    const parts = relDir.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join("/");
      if (existsSync(abs(d))) continue;
      try {
        mkdirSync(abs(d), { mode: 0o755 });
      } catch (e) {
        throw wrapIo(e, "create directory", abs(d));
      }
      created.push(d);
    }
  };
  for (const p of plans) {
    if (!p.write) continue;
    ensureDir(dirname(p.entry.path));
    const dest = abs(p.entry.path);
    const tmp = `${dest}.ocigen-tmp-${process.pid}`;
    try {
      rmSync(tmp, { force: true });
      if (p.write.target !== undefined) symlinkSync(p.write.target, tmp);
      else {
        const c = p.write.content!;
        if (c.kind === "copy") copyFileSync(c.from, tmp);
        else writeFileSync(tmp, c.data);
        chmodSync(tmp, p.entry.mode ?? 0o644);
      }
      renameSync(tmp, dest);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw wrapIo(e, "install", dest);
    }
  }
  ensureDir(dirname(INSTALL_PATHS.manifest));
  const manifest: InstallManifest = {
    format: MANIFEST_FORMAT,
    version: VERSION,
    entries: plans.filter((p) => p.entry.type !== "config" || p.entry.sha256).map((p) => p.entry),
    dirs: [...new Set([...(old?.dirs ?? []), ...created])],
  };
  const mpath = abs(INSTALL_PATHS.manifest);
  const mtext = manifestText(manifest);
  if (!existsSync(mpath) || readFileSync(mpath, "utf8") !== mtext) {
    writeFileSync(`${mpath}.ocigen-tmp-${process.pid}`, mtext);
    renameSync(`${mpath}.ocigen-tmp-${process.pid}`, mpath);
  }
  return { prefix, actions: plans.map((p) => p.what), kept: [] };
}

/**
 * Removes what {@linkcode installGenerator} installed under `prefix`, as
 * recorded in its manifest: files still as installed, the link if it still
 * points where it did, the config only if ocigen created it and it is
 * unchanged, then the directories install created if they are empty.
 * Without a manifest it does nothing.
 *
 * @example
 * ```ts
 * const r = uninstallGenerator({ prefix: "/tmp/root" });
 * r.kept; // e.g. ["/tmp/root/etc/oci-generator.conf (changed since install)"]
 * ```
 */
export function uninstallGenerator(opts: { prefix?: string } = {}): InstallResult {
  const prefix = resolve(opts.prefix ?? "/");
  const abs = (rel: string) => join(prefix, rel);
  const mpath = abs(INSTALL_PATHS.manifest);
  const m = readManifest(mpath);
  if (!m) return { prefix, actions: [`nothing to uninstall: no ${mpath}`], kept: [] };
  const actions: string[] = [];
  const kept: string[] = [];
  for (const e of [...m.entries].reverse()) {
    const p = abs(e.path);
    const st = lstatOrUndefined(p);
    if (!st) continue;
    let ours = false;
    if (e.type === "symlink") ours = st.isSymbolicLink() && readlinkSync(p) === e.target;
    else ours = st.isFile() && e.sha256 !== undefined && hashFile(p) === e.sha256;
    if (ours) {
      try {
        rmSync(p);
      } catch (err) {
        throw wrapIo(err, "remove", p);
      }
      actions.push(`removed ${p}`);
    } else {
      kept.push(`${p} (changed since install)`);
      actions.push(`kept ${p} (changed since install)`);
    }
  }
  try {
    rmSync(mpath, { force: true });
  } catch (err) {
    throw wrapIo(err, "remove", mpath);
  }
  actions.push(`removed ${mpath}`);
  for (const d of [...m.dirs].reverse()) {
    try {
      rmdirSync(abs(d));
    } catch {
      // not empty (someone else's files) or already gone: leave it
    }
  }
  return { prefix, actions, kept };
}

/** What to install as the program, how to describe it, and the files it needs. */
function programContent(opts: InstallOptions): { content: Content; what: string; extra: RegularFile[] } {
  if (opts.bin) {
    const from = resolve(opts.bin);
    let st;
    try {
      st = statSync(from);
    } catch (e) {
      throw wrapIo(e, "read --bin", from);
    }
    if (!st.isFile()) throw new OcigenError("EINSTALL", `${from}: --bin is not a regular file`);
    return { content: { kind: "copy", from }, what: `program from ${from}`, extra: [] };
  }
  if (isSea()) return { content: { kind: "copy", from: process.execPath }, what: "single binary", extra: [] };
  if (opts.runtime) {
    return { content: { kind: "bytes", data: utf8(wrapperScript(opts.runtime, "/" + INSTALL_PATHS.binary)) }, what: `wrapper for ${opts.runtime.join(" ")}`, extra: [] };
  }
  const plan = wrapperPlan();
  const extra: RegularFile[] = [{ rel: INSTALL_PATHS.bundle, content: { kind: "copy", from: plan.bundle }, mode: 0o644, what: `bundle from ${plan.bundle}` }];
  // the bundle's loader runs the program beside it, with the code cache the build made for it
  for (const [suffix, what] of [[".program", "program"], [".cache", "code cache"]] as const) {
    const from = plan.bundle + suffix;
    if (existsSync(from)) extra.push({ rel: INSTALL_PATHS.bundle + suffix, content: { kind: "copy", from }, mode: 0o644, what: `bundle ${what} from ${from}` });
  }
  if (plan.generator) {
    extra.push({ rel: INSTALL_PATHS.generatorBundle, content: { kind: "copy", from: plan.generator }, mode: 0o644, what: `generator bundle from ${plan.generator}` });
  }
  let exe = plan.exe;
  if (plan.copyExe) {
    const rel = `${INSTALL_PATHS.libDir}/${basename(plan.exe)}`;
    extra.push({ rel, content: { kind: "copy", from: plan.exe }, mode: 0o755, what: `runtime from ${plan.exe}` });
    exe = "/" + rel;
  }
  const runtime = [exe, ...plan.args, "/" + INSTALL_PATHS.bundle];
  const generator = plan.generator ? [exe, ...plan.args, "/" + INSTALL_PATHS.generatorBundle] : undefined;
  return { content: { kind: "bytes", data: utf8(wrapperScript(runtime, "/" + INSTALL_PATHS.binary, generator)) }, what: `wrapper for ${runtime.join(" ")}`, extra };
}

/**
 * What the wrapper script runs when no binary is installed: this runtime
 * (Node, or `deno run` with ocigen's permissions) on a copy of the bundled
 * `dist/ocigen.mjs` installed beside it, so the installed generator needs
 * nothing from the checkout; through the generator link, on a copy of the
 * generator's own bundle `dist/ocigen-generator.mjs` when the build made one
 * beside it (`generator`). A runtime that lives inside the checkout
 * (`node_modules/deno`) is copied too (`copyExe`).
 *
 * @example
 * ```ts
 * wrapperPlan();
 * // { exe: "/usr/bin/node", args: [], bundle: "/src/ocigen/dist/ocigen.mjs",
 * //   generator: "/src/ocigen/dist/ocigen-generator.mjs", copyExe: false }
 * ```
 */
export function wrapperPlan(): { exe: string; args: string[]; bundle: string; generator?: string; copyExe: boolean } {
  const script = process.argv[1] ? resolve(process.argv[1]) : "";
  const args = isDeno() ? ["run", ...DENO_V8_FLAGS, ...DENO_PERMISSIONS] : [];
  let checkout: string | null = null;
  for (let d = dirname(script); ; d = dirname(d)) {
    const pkg = join(d, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "ocigen") {
          checkout = d;
          break;
        }
      } catch {
        // unreadable package.json: keep looking upwards
      }
    }
    if (dirname(d) === d) break;
  }
  let bundle = /\.(mjs|cjs|js)$/.test(script) && existsSync(script) ? script : checkout ? join(checkout, "dist", "ocigen.mjs") : "";
  if (!bundle || !existsSync(bundle)) {
    throw new OcigenError("EINSTALL", "No bundled dist/ocigen.mjs to install: run `npm run build` (or `npm run build:binary` and pass --bin dist/ocigen)");
  }
  bundle = realpathSync(bundle);
  const beside = join(dirname(bundle), "ocigen-generator.mjs");
  const generator = bundle !== beside && existsSync(beside) ? realpathSync(beside) : undefined;
  const exe = realpathSync(process.execPath);
  const copyExe = checkout !== null && exe.startsWith(realpathSync(checkout) + "/");
  return { exe, args, bundle, ...(generator ? { generator } : {}), copyExe };
}

function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function hashContent(c: Content): string {
  return c.kind === "bytes" ? sha256(c.data) : hashFile(c.from);
}

/** sha256 hex of a file, read in 1 MiB chunks (the binary is ~100 MB). */
function hashFile(path: string): string {
  const h = createHash("sha256");
  const buf = new Uint8Array(1 << 20);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw wrapIo(e, "read", path);
  }
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

function lstatOrUndefined(p: string) {
  try {
    return lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw wrapIo(e, "stat", p);
  }
}
