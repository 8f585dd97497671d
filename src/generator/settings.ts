/**
 * Per-image settings files (SPEC 4.4), in the spirit of Podman Quadlet's
 * `.container` files: what an administrator changes for one layout, or one
 * tag of it, without touching the image.
 *
 * Where: under the settings directory (`settingsdir =` in
 * `/etc/oci-generator.conf`, default `/etc/ocigen`), named after the layout
 * (its path below `imagelayoutdir`, so it may hold `/`):
 * - `SETTINGSDIR/LAYOUT.image` applies to every tag of the layout, e.g.
 *   `/etc/ocigen/myorg.com/myapp.image`;
 * - `SETTINGSDIR/LAYOUT:TAG.image` applies to one tag, on top of the
 *   layout's file, e.g. `/etc/ocigen/myorg.com/myapp:stable.image`.
 * A missing file is no settings. A file is read in full (at most 1 MiB) and
 * must be a regular file (a symlink to one is fine: the directory is the
 * administrator's).
 *
 * Format: systemd-style INI (./ini.ts: `#`/`;` comments, also inline after a
 * blank). Keys are case-sensitive, as in unit files. Section `[Image]`:
 * - `IncludeTag=GLOB`, `ExcludeTag=GLOB` (repeatable; layout file only):
 *   which tags become units (./tags.ts); the default excludes the dated tags
 *   `ocigen build` adds;
 * - `Volume=HOST:PATH[:ro|:rw]` binds a host path; `Volume=PATH` adds a
 *   persistent per-service volume like an image `Volumes` entry;
 * - `Tmpfs=PATH[:OPTIONS]` (OPTIONS as for mount(8), e.g. `size=64m,mode=1777`);
 * - `Environment=NAME=VALUE ...` (words split and quoted as in unit files;
 *   added after the image's Env, overriding it);
 * - `User=NAME|UID[:GROUP|GID]` (resolved in the image, ids 0..4294967294);
 * - `Exec=COMMAND ARGS...` replaces the image's Entrypoint+Cmd (split into
 *   words like a shell, no expansion);
 * - `ReadOnly=yes|no`, `Enable=yes|no`, `Runtime=systemd|runc|crun|/PATH`,
 *   `Platform=os/arch[/variant]`;
 * - confinement, network, restarts and resources (./sandbox.ts):
 *   `AddCapability=`, `DropCapability=`, `NoNewPrivileges=`,
 *   `SeccompProfile=default|unconfined`, `SystemCallFilter=`,
 *   `Network=host|none`, `NetworkOnline=`, `Memory=`, `CPUQuota=`,
 *   `TasksMax=`, `Restart=`, `RestartSec=`, `StartLimitBurst=`,
 *   `StartLimitIntervalSec=`, `TimeoutStopSec=`, `Notify=`;
 * - auto-update (src/generator/update-settings.ts): `AutoUpdate=`, `HealthCmd=`,
 *   `HealthTimeout=`.
 * Section `[Service]`: every `Key=Value` line is appended to the generated
 * unit's `[Service]` section as written (the key must be a unit-file key,
 * `[A-Z][A-Za-z0-9]*`; control characters and a trailing backslash are
 * refused, so a line can never become two).
 *
 * Lists (IncludeTag, ExcludeTag, Volume, Tmpfs, Environment, [Service]) add
 * up across levels; an empty assignment (`ExcludeTag=`) clears what came
 * before, the lower levels included. Single values (User, Exec, ReadOnly,
 * Enable, Runtime, Platform): the last one wins; an empty `User=`/`Exec=`
 * goes back to the image's. Precedence, lowest first: built-in defaults, the
 * config's `[system]` keys, its `[layout NAME]` section, the layout's file,
 * the tag's file.
 *
 * An unknown section or key, or a bad value, is an ECONFIG error naming the
 * file and line; the generator reports it and skips that layout (layout
 * file) or tag (tag file), generating the others.
 *
 * @module
 */
import * as fs from "node:fs";
import { isAbsolute, join, posix } from "node:path";
import { OcigenError, wrapIo } from "../errors.ts";
import { shellSplit } from "../util/shellsplit.ts";
import { formatPlatform, hostPlatform, parsePlatform } from "../oci/platform.ts";
import type { Platform } from "../oci/types.ts";
import { type GeneratorConfig, type LayoutSettings, layoutSettings, normalizeRuntime, type VolumeSetting } from "./config.ts";
import { BOOL, IniSyntaxError, parseIni } from "./ini.ts";
import { checkExecutable, checkId, isEnvName } from "./syntax.ts";
import { globToRegExp } from "./tags.ts";
import { mergeSandbox, parseSandboxKey, SANDBOX_KEYS, type SandboxSettings } from "./sandbox.ts";
import { mergeUpdate, parseUpdateKey, UPDATE_KEYS, type UpdateSettings } from "./update-settings.ts";
import type { DirNames } from "../fs/names.ts";

/**
 * The file name suffix of settings files.
 *
 * @example
 * ```ts
 * `myapp${SETTINGS_SUFFIX}`; // "myapp.image"
 * ```
 */
export const SETTINGS_SUFFIX = ".image";

/** Largest settings file read. */
const MAX_SETTINGS_BYTES = 1 << 20;

/** A list setting of one file: whether it cleared the lower levels, then its items. */
export interface ListChange<T> {
  reset: boolean;
  items: T[];
}

/** What one settings file says (only what it sets). */
export interface SettingsLayer {
  /** The file, for messages. */
  path: string;
  includeTags?: ListChange<string>;
  excludeTags?: ListChange<string>;
  volumes?: ListChange<VolumeSetting>;
  tmpfs?: ListChange<{ path: string; options?: string }>;
  environment?: ListChange<[string, string]>;
  serviceLines?: ListChange<string>;
  /** `null`: cleared (back to the image's). */
  user?: string | null;
  exec?: string[] | null;
  readOnly?: boolean;
  enable?: boolean;
  runtime?: string;
  platform?: string;
  /** Confinement, network, restart and resource keys (./sandbox.ts). */
  sandbox?: SandboxSettings;
  /** Auto-update keys (src/generator/update-settings.ts). */
  update?: UpdateSettings;
}

const IMAGE_KEYS = [
  "IncludeTag", "ExcludeTag", "Volume", "Tmpfs", "Environment", "User", "Exec", "ReadOnly", "Enable", "Runtime", "Platform",
] as const;
const TAG_ONLY_IN_LAYOUT = new Set(["IncludeTag", "ExcludeTag"]);

/**
 * The settings file paths of layout `name` (and of its `tag`).
 *
 * @example
 * ```ts
 * imageSettingsPath("/etc/ocigen", "myorg.com/myapp");           // "/etc/ocigen/myorg.com/myapp.image"
 * imageSettingsPath("/etc/ocigen", "myorg.com/myapp", "stable"); // "/etc/ocigen/myorg.com/myapp:stable.image"
 * ```
 */
export function imageSettingsPath(dir: string, name: string, tag?: string): string {
  return join(dir, `${name}${tag === undefined ? "" : ":" + tag}${SETTINGS_SUFFIX}`);
}

/** An absolute, normalized path without `:` (it separates the parts of Volume=/Tmpfs=). */
function checkPath(p: string, what: string): string {
  if (!isAbsolute(p)) throw new Error(`${what} must be an absolute path, not ${JSON.stringify(p)}`);
  if (/[\x00-\x1f\x7f:]/.test(p) || /(^|\/)\.\.?(\/|$)/.test(p) || p.includes("//")) {
    throw new Error(`${what} ${JSON.stringify(p)} must be a normalized absolute path without ':'`);
  }
  return p.length > 1 ? p.replace(/\/+$/, "") : p;
}

function parseVolume(v: string): VolumeSetting {
  const parts = v.split(":");
  if (parts.length === 1) {
    const path = checkPath(parts[0], "the volume path");
    if (path === "/") throw new Error("a volume cannot be mounted at /");
    return { path, readOnly: false };
  }
  if (parts.length > 3) throw new Error(`Volume= must be HOST:PATH[:ro|:rw] or PATH, not ${JSON.stringify(v)}`);
  const host = checkPath(parts[0], "the volume's host path");
  const path = checkPath(parts[1], "the volume path");
  if (path === "/") throw new Error("a volume cannot be mounted at /");
  const opt = parts[2];
  if (opt !== undefined && opt !== "ro" && opt !== "rw") throw new Error(`volume option must be ro or rw, not ${JSON.stringify(opt)}`);
  return { host, path, readOnly: opt === "ro" };
}

function parseTmpfs(v: string): { path: string; options?: string } {
  const i = v.indexOf(":");
  const path = checkPath(i < 0 ? v : v.slice(0, i), "the tmpfs path");
  if (path === "/") throw new Error("a tmpfs cannot be mounted at /");
  if (i < 0) return { path };
  const options = v.slice(i + 1);
  if (!/^[A-Za-z0-9_.=+-]+(,[A-Za-z0-9_.=+-]+)*$/.test(options)) {
    throw new Error(`tmpfs options must be comma-separated mount options, not ${JSON.stringify(options)}`);
  }
  return { path, options };
}

/**
 * Checks a `User=` value: a name or id, optionally `:group`; ids within
 * 0..4294967294.
 *
 * @example
 * ```ts
 * checkUserSpec("app:staff"); // "app:staff"
 * checkUserSpec("1e20");      // throws
 * ```
 */
export function checkUserSpec(v: string): string {
  const parts = v.split(":");
  if (parts.length > 2) throw new Error(`User= must be USER or USER:GROUP, not ${JSON.stringify(v)}`);
  for (const p of parts) {
    if (/^[0-9]+$/.test(p)) checkId(p, "User=");
    else if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,255}$/.test(p)) {
      throw new Error(`User= ${JSON.stringify(v)}: ${JSON.stringify(p)} is neither a number nor a user/group name`);
    }
  }
  return v;
}

function split(v: string): string[] {
  try {
    return shellSplit(v);
  } catch (e) {
    throw new Error((e as Error).message.replace(/^Cannot split /, "cannot split "));
  }
}

/**
 * Parses the text of a settings file. `level` says whether it is a layout's
 * or a tag's file (tag selection keys are only allowed in a layout's).
 * Throws ECONFIG naming `path` and the line.
 *
 * @example
 * ```ts
 * const s = parseImageSettings("[Image]\nVolume=/data\n", "/etc/ocigen/app.image", "layout");
 * s.volumes; // { reset: false, items: [{ path: "/data", readOnly: false }] }
 * ```
 */
export function parseImageSettings(text: string, path: string, level: "layout" | "tag"): SettingsLayer {
  const out: SettingsLayer = { path };
  let lines;
  try {
    lines = parseIni(text);
  } catch (e) {
    if (e instanceof IniSyntaxError) throw new OcigenError("ECONFIG", `${path}:${e.line}: ${e.message}`);
    throw e;
  }
  let section: "Image" | "Service" | null = null;
  const list = <K extends "includeTags" | "excludeTags" | "volumes" | "tmpfs" | "environment" | "serviceLines">(
    k: K,
    value: string,
    parse: (v: string) => NonNullable<SettingsLayer[K]>["items"],
  ) => {
    const cur = (out[k] ?? { reset: false, items: [] }) as ListChange<unknown>;
    if (value === "") {
      cur.reset = true;
      cur.items = [];
    } else cur.items.push(...parse(value));
    (out as unknown as Record<string, unknown>)[k] = cur;
  };
  for (const l of lines) {
    const at = `${path}:${l.line}`;
    if (l.kind === "section") {
      if (l.arg !== null || (l.name !== "Image" && l.name !== "Service")) {
        throw new OcigenError("ECONFIG", `${at}: unknown section [${l.name}${l.arg !== null ? " " + l.arg : ""}] (known: [Image], [Service])`);
      }
      section = l.name;
      continue;
    }
    if (section === null) throw new OcigenError("ECONFIG", `${at}: ${l.key}= before any section ([Image] or [Service])`);
    try {
      if (section === "Service") {
        if (!/^[A-Z][A-Za-z0-9]{0,63}$/.test(l.key)) throw new Error(`${JSON.stringify(l.key)} is not a unit file key`);
        list("serviceLines", `${l.key}=${l.value}`, (v) => [v]);
        continue;
      }
      if (SANDBOX_KEYS.includes(l.key)) {
        out.sandbox = parseSandboxKey(out.sandbox ?? {}, l.key, l.value);
        continue;
      }
      if (UPDATE_KEYS.includes(l.key)) {
        out.update = parseUpdateKey(out.update ?? {}, l.key, l.value);
        continue;
      }
      const key = l.key as typeof IMAGE_KEYS[number];
      if (!IMAGE_KEYS.includes(key)) {
        const known = [...IMAGE_KEYS, ...SANDBOX_KEYS, ...UPDATE_KEYS];
        const near = known.find((k) => k.toLowerCase() === l.key.toLowerCase());
        throw new Error(`unknown key ${l.key}=${near ? ` (did you mean ${near}=?)` : ""} in [Image] (known: ${known.join(", ")})`);
      }
      if (level === "tag" && TAG_ONLY_IN_LAYOUT.has(key)) throw new Error(`${key}= belongs in the layout's file, not a tag's`);
      const v = l.value;
      const bool = () => {
        const b = BOOL[v.toLowerCase()];
        if (b === undefined) throw new Error(`${key}= must be yes or no, not ${JSON.stringify(v)}`);
        return b;
      };
      switch (key) {
        case "IncludeTag":
        case "ExcludeTag":
          list(key === "IncludeTag" ? "includeTags" : "excludeTags", v, (g) => {
            if (!/^[A-Za-z0-9_.*?[\]!^\\-]+$/.test(g)) throw new Error(`${key}= ${JSON.stringify(g)} is not a tag glob`);
            globToRegExp(g);
            return [g];
          });
          break;
        case "Volume":
          list("volumes", v, (x) => [parseVolume(x)]);
          break;
        case "Tmpfs":
          list("tmpfs", v, (x) => [parseTmpfs(x)]);
          break;
        case "Environment":
          list("environment", v, (x) => split(x).map((w): [string, string] => {
            const i = w.indexOf("=");
            if (i <= 0 || !isEnvName(w.slice(0, i))) throw new Error(`Environment= ${JSON.stringify(w)} is not NAME=VALUE with a valid name`);
            if (w.includes("\0")) throw new Error(`Environment= ${JSON.stringify(w)} holds a NUL`);
            return [w.slice(0, i), w.slice(i + 1)];
          }));
          break;
        case "User":
          out.user = v === "" ? null : checkUserSpec(v);
          break;
        case "Exec": {
          if (v === "") {
            out.exec = null;
            break;
          }
          const argv = split(v);
          if (argv.length === 0) throw new Error("Exec= has no command");
          if (argv[0].startsWith("/")) argv[0] = posix.normalize(argv[0]);
          try {
            checkExecutable(argv[0]);
          } catch (e) {
            throw new Error(`Exec=: ${(e as Error).message}`);
          }
          out.exec = argv;
          break;
        }
        case "ReadOnly":
          out.readOnly = bool();
          break;
        case "Enable":
          out.enable = bool();
          break;
        case "Runtime":
          out.runtime = normalizeRuntime(v);
          break;
        case "Platform":
          out.platform = formatPlatform(parsePlatform(v));
          break;
      }
    } catch (e) {
      if (e instanceof OcigenError && e.message.startsWith(at)) throw e;
      throw new OcigenError("ECONFIG", `${at}: ${(e as Error).message}`);
    }
  }
  return out;
}

/**
 * Reads and parses one settings file; null when it does not exist (or
 * `names`, the directory listings of one pass, says it cannot).
 *
 * @example
 * ```ts
 * readImageSettings("/etc/ocigen/busybox.image", "layout"); // null when absent
 * ```
 */
export function readImageSettings(path: string, level: "layout" | "tag", names?: DirNames): SettingsLayer | null {
  // Most layouts and tags have no settings file: find that out without an
  // exception (the generator asks for three per layout at every boot), from
  // the directory's listing when the caller keeps them.
  if (names && !names.mayExist(path)) return null;
  let fd: number;
  try {
    if (!fs.statSync(path, { throwIfNoEntry: false })) return null;
    fd = fs.openSync(path, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw new OcigenError("ECONFIG", wrapIo(e, "read settings", path).message);
  }
  let text: string;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new OcigenError("ECONFIG", `${path}: settings file is not a regular file`);
    if (st.size > MAX_SETTINGS_BYTES) throw new OcigenError("ECONFIG", `${path}: settings file is larger than ${MAX_SETTINGS_BYTES} bytes`);
    const buf = new Uint8Array(st.size + 1);
    let n = 0;
    for (;;) {
      const r = fs.readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > st.size) throw new OcigenError("ECONFIG", `${path}: settings file grew while read`);
    }
    text = new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(0, n));
  } catch (e) {
    if (e instanceof OcigenError) throw e;
    if (e instanceof TypeError) throw new OcigenError("ECONFIG", `${path}: settings file is not UTF-8`);
    throw new OcigenError("ECONFIG", wrapIo(e, "read settings", path).message);
  } finally {
    fs.closeSync(fd);
  }
  return parseImageSettings(text, path, level);
}

function applyList<T>(base: readonly T[], change: ListChange<T> | undefined): T[] {
  if (!change) return [...base];
  return [...(change.reset ? [] : base), ...change.items];
}

/**
 * `base` with `layer` applied on top (see the module docs for the rules).
 *
 * @example
 * ```ts
 * applySettings(layoutSettings(cfg, "app"), parseImageSettings("[Image]\nReadOnly=yes\n", "f", "layout")).readOnly; // true
 * ```
 */
export function applySettings(base: LayoutSettings, layer: SettingsLayer | null): LayoutSettings {
  if (!layer) return base;
  const s: LayoutSettings = {
    ...base,
    includeTags: applyList(base.includeTags, layer.includeTags),
    excludeTags: applyList(base.excludeTags, layer.excludeTags),
    volumes: applyList(base.volumes, layer.volumes),
    tmpfs: applyList(base.tmpfs, layer.tmpfs),
    environment: applyList(base.environment, layer.environment),
    serviceLines: applyList(base.serviceLines, layer.serviceLines),
  };
  if (layer.user !== undefined) s.user = layer.user ?? undefined;
  if (layer.exec !== undefined) s.exec = layer.exec ?? undefined;
  if (layer.readOnly !== undefined) s.readOnly = layer.readOnly;
  if (layer.enable !== undefined) s.enable = layer.enable;
  if (layer.runtime !== undefined) s.runtime = layer.runtime;
  if (layer.platform !== undefined) s.platform = layer.platform;
  if (layer.sandbox !== undefined) s.sandbox = mergeSandbox(base.sandbox, layer.sandbox);
  if (layer.update !== undefined) s.update = mergeUpdate(base.update, layer.update);
  return s;
}

/**
 * The settings of layout `name`: the config (defaults, `[system]`,
 * `[layout NAME]`) and the layout's settings file. Throws ECONFIG for a bad
 * file. `names`: the directory listings of one pass (src/fs/names.ts), so
 * that an absent file costs no system call.
 *
 * @example
 * ```ts
 * const s = settingsForLayout(cfg, "myorg.com/myapp");
 * selectTags(tags, s).selected;
 * ```
 */
export function settingsForLayout(cfg: GeneratorConfig, name: string, names?: DirNames): LayoutSettings {
  const base = layoutSettings(cfg, name);
  if (!cfg.settingsDir) return base;
  return applySettings(base, readImageSettings(imageSettingsPath(cfg.settingsDir, name), "layout", names));
}

/**
 * The settings of `tag` of layout `name`: {@linkcode settingsForLayout}
 * (pass it when already known) and the tag's settings file. Throws ECONFIG
 * for a bad file. `names` as for {@linkcode settingsForLayout}.
 *
 * @example
 * ```ts
 * const s = settingsForTag(cfg, "myorg.com/myapp", "stable");
 * s.volumes; // [...]
 * ```
 */
export function settingsForTag(cfg: GeneratorConfig, name: string, tag: string, layout?: LayoutSettings, names?: DirNames): LayoutSettings {
  const base = layout ?? settingsForLayout(cfg, name, names);
  if (!cfg.settingsDir) return base;
  return applySettings(base, readImageSettings(imageSettingsPath(cfg.settingsDir, name, tag), "tag", names));
}

/**
 * The platform to pick for `tag` of layout `name`: its settings' `Platform=`
 * (per-image file, `[layout]` section or global `platform =`), else the
 * host's. Throws ECONFIG for a bad settings file.
 *
 * @example
 * ```ts
 * const p = imagePlatform(cfg, "busybox", "latest"); // { os: "linux", architecture: "amd64" }
 * const img = await layout.resolve("latest", p);
 * ```
 */
export function imagePlatform(cfg: GeneratorConfig, name: string, tag: string): Platform {
  return settingsPlatform(settingsForTag(cfg, name, tag));
}

/**
 * The platform resolved settings `s` pick: their `Platform=`, else the host's.
 *
 * @example
 * ```ts
 * settingsPlatform(settingsForTag(cfg, "busybox", "latest")); // { os: "linux", architecture: "amd64" }
 * ```
 */
export function settingsPlatform(s: LayoutSettings): Platform {
  return s.platform ? parsePlatform(s.platform) : hostPlatform();
}
