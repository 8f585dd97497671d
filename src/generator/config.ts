/**
 * The generator's configuration, `/etc/oci-generator.conf` (SPEC 4.1).
 *
 * Format: systemd INI style, read by ./ini.ts: `#` and `;` start comment
 * lines, and also inline comments when they follow a blank (a value that
 * must hold ` #` is double-quoted); `[section]` headers; `key = value`
 * (spaces around `=` ignored, keys case-insensitive). Keys before any
 * section header belong to `[system]` (the old generator's section-less
 * form). Unknown keys are warned about and ignored; invalid values
 * are errors naming the file and line.
 *
 * ```
 * [system]
 * imagelayoutdir = /var/lib/oci/layouts   # where layouts are found
 * extractsdir = /var/lib/oci/extracts     # where rootfs are extracted
 * settingsdir = /etc/ocigen               # per-image settings files (./settings.ts); empty: none
 * runtime = systemd        # systemd (RootDirectory=), runc, crun, or an absolute path to a runc-compatible runtime
 * platform = linux/arm64/v8  # the platform picked from multi-platform images (default: the host's)
 * enable = no              # write multi-user.target.wants/ links for every unit
 * enablelabel = org.ocigen.enable   # image label that may enable/disable (true/false); empty: ignore labels
 * wantedby = multi-user.target      # the target the .wants/ links go into
 * protectsystem = no       # ProtectSystem= inside the image's root (yes, no, full, strict; strict = read-only root)
 * protecthome = no         # ProtectHome= inside the image's root (yes, no, read-only, tmpfs)
 * rundir = /run/ocigen     # where each service's root (an overlay with a writable layer) is mounted
 * volumesdir = /var/lib/ocigen/volumes  # where each service's persistent volumes live
 * statedir = /var/lib/ocigen/state      # pins and update records of `ocigen update`
 * ocigen = /usr/local/bin/ocigen    # program the units run for `extract` (default: this ocigen)
 * atomictemplates = no     # yes: render an image's Atomic /exports/service.template (trusts the image fully)
 * zstdwindowmax = 128      # largest zstd window (MiB, 1..2048) extract lets a layer use; --zstd-window-max overrides
 *
 * [layout myorg.com/myapp]  # per-layout overrides of enable, runtime, platform, protectsystem, protecthome
 * enable = yes
 * ```
 *
 * The file is `--config FILE`, else `$OCIGEN_GENERATOR_CONF` (given by the
 * command line's settings), else `/etc/oci-generator.conf`; only the
 * default may be missing.
 *
 * @module
 */
import type { SandboxSettings } from "./sandbox.ts";
import type { UpdateSettings } from "./update-settings.ts";
import * as fs from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { OcigenError, wrapIo } from "../errors.ts";
import { log } from "../log.ts";
import { formatPlatform, parsePlatform } from "../oci/platform.ts";
import { BOOL, IniSyntaxError, type IniLine, parseIni, unquote } from "./ini.ts";

/** The default config file path. */
export const DEFAULT_CONFIG_PATH = "/etc/oci-generator.conf";

/** The default directory of the per-image settings files. */
export const DEFAULT_SETTINGS_DIR = "/etc/ocigen";

/**
 * An extra volume of the per-image settings (`Volume=HOST:PATH[:ro]`, or
 * `Volume=PATH` for a persistent per-service volume like an image `Volumes`
 * entry).
 */
export interface VolumeSetting {
  /** Absolute host directory bound at `path`; undefined: a per-service volume under the volumes directory. */
  host?: string;
  /** Absolute path inside the container. */
  path: string;
  readOnly: boolean;
}

/**
 * Settings that can differ per layout (and per tag): the global config's
 * `[layout NAME]` sections and the per-image settings files under
 * `/etc/ocigen/` (SPEC 4.4, in the spirit of Podman Quadlet's `.container`).
 */
export interface LayoutSettings {
  /** `systemd` (RootDirectory=) or the absolute path of a runc-compatible runtime. */
  runtime: string;
  /** Write the `.wants/` link; `undefined`: decided by label, then the global setting. */
  enable?: boolean;
  protectSystem: string;
  protectHome: string;
  /** Tag globs that become units (`IncludeTag=`); empty: every tag not excluded. */
  includeTags: string[];
  /** Tag globs that never become units (`ExcludeTag=`); the default excludes `build`'s dated tags. */
  excludeTags: string[];
  /** Extra volumes (`Volume=`), besides the image config's `Volumes`. */
  volumes: VolumeSetting[];
  /** `Tmpfs=PATH[:OPTIONS]`: private tmpfs mounts. */
  tmpfs: { path: string; options?: string }[];
  /** `Environment=K=V`: added after (and overriding) the image's Env. */
  environment: [string, string][];
  /** `User=`: overrides the image's User (name, number, `user:group`), resolved in the image. */
  user?: string;
  /** `Exec=`: replaces the image's Entrypoint+Cmd (already split into words). */
  exec?: string[];
  /** `ReadOnly=yes`: the root filesystem is read-only (default: a writable layer dropped at stop). */
  readOnly: boolean;
  /** Raw `[Service]` lines (`key=value`), appended verbatim after the generated ones. */
  serviceLines: string[];
  /** `Platform=os/arch[/variant]` to pick from a multi-platform index (default: the host's). */
  platform?: string;
  /** Confinement, network, restart and resource settings (./sandbox.ts); undefined: the defaults. */
  sandbox?: SandboxSettings;
  /** Auto-update settings (src/generator/update-settings.ts); undefined: the defaults. */
  update?: UpdateSettings;
}

/** The glob that matches the dated tags `ocigen build` adds (`TAG-YYYY-MM-DD_N`). */
export const DATED_TAG_GLOB = "*-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]_*";

/** The parsed configuration. */
export interface GeneratorConfig {
  /** The file it was read from, or `undefined` for built-in defaults. */
  path?: string;
  /** True when `path` was chosen explicitly (flag or env), so units pass it to `extract`. */
  explicit: boolean;
  imageLayoutDir: string;
  extractsDir: string;
  /** Global enablement (default false). */
  enable: boolean;
  /** Image label consulted for enablement, "" for none. */
  enableLabel: string;
  wantedBy: string;
  /** Absolute argv prefix that runs ocigen, or undefined for "this program". */
  ocigen?: string;
  /** Parent of the services' roots (default /run/ocigen, see src/generator/state.ts). */
  runDir?: string;
  /** Parent of the services' persistent volumes (default /var/lib/ocigen/volumes). */
  volumesDir?: string;
  /** Where `ocigen update` keeps pins and update records (default /var/lib/ocigen/state, src/generator/update-state.ts). */
  stateDir?: string;
  /** Render Atomic `/exports/service.template` files (default false: a template can run host commands). */
  atomicTemplates: boolean;
  /** Directory of the per-image settings files (default `/etc/ocigen`; "" for none). */
  settingsDir: string;
  /** Largest zstd window extract lets a layer use, bytes (`zstdwindowmax`, MiB in the file); undefined: the decoder's default. */
  zstdWindowMax?: number;
  /** Defaults for every layout. */
  defaults: LayoutSettings;
  /** Per-layout overrides, by layout name. */
  layouts: Map<string, Partial<LayoutSettings>>;
}

const PROTECT_SYSTEM = ["yes", "no", "true", "false", "full", "strict"];
const PROTECT_HOME = ["yes", "no", "true", "false", "read-only", "tmpfs"];

/**
 * Built-in defaults.
 *
 * @example
 * ```ts
 * defaultGeneratorConfig().imageLayoutDir; // "/var/lib/oci/layouts"
 * ```
 */
export function defaultGeneratorConfig(): GeneratorConfig {
  return {
    explicit: false,
    imageLayoutDir: "/var/lib/oci/layouts",
    extractsDir: "/var/lib/oci/extracts",
    enable: false,
    enableLabel: "org.ocigen.enable",
    wantedBy: "multi-user.target",
    atomicTemplates: false,
    settingsDir: DEFAULT_SETTINGS_DIR,
    defaults: {
      runtime: "systemd",
      protectSystem: "no",
      protectHome: "no",
      includeTags: [],
      excludeTags: [DATED_TAG_GLOB],
      volumes: [],
      tmpfs: [],
      environment: [],
      readOnly: false,
      serviceLines: [],
    },
    layouts: new Map(),
  };
}

/**
 * Maps a `runtime =` value to `systemd` or an absolute runtime path.
 *
 * @example
 * ```ts
 * normalizeRuntime("runc"); // "/usr/bin/runc" (or /usr/sbin/runc, ... where it exists)
 * ```
 */
export function normalizeRuntime(v: string): string {
  if (v === "systemd" || isAbsolute(v)) return v;
  if (v === "runc" || v === "crun") {
    for (const d of ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/bin", "/sbin"]) {
      if (fs.existsSync(`${d}/${v}`)) return `${d}/${v}`;
    }
    return `/usr/bin/${v}`;
  }
  throw new Error(`runtime must be systemd, runc, crun or an absolute path, not ${JSON.stringify(v)}`);
}

/**
 * Parses config text. `where` names the file in messages.
 *
 * @example
 * ```ts
 * const c = parseGeneratorConfig("[system]\nimagelayoutdir = /srv/layouts\n", "/etc/oci-generator.conf");
 * c.imageLayoutDir; // "/srv/layouts"
 * ```
 */
export function parseGeneratorConfig(text: string, where: string): GeneratorConfig {
  const cfg = defaultGeneratorConfig();
  cfg.path = where;
  let section = "system";
  let layoutName: string | null = null;
  let entries: IniLine[];
  try {
    entries = parseIni(text);
  } catch (e) {
    if (e instanceof IniSyntaxError) throw new OcigenError("ECONFIG", `Bad config ${where}:${e.line}: ${e.message}`);
    throw e;
  }
  for (const ent of entries) {
    const at = `${where}:${ent.line}`;
    const bad = (msg: string): never => {
      throw new OcigenError("ECONFIG", `Bad config ${at}: ${msg}`);
    };
    if (ent.kind === "section") {
      section = ent.name.toLowerCase();
      layoutName = ent.arg;
      if (section === "layout" && !layoutName) bad("[layout NAME] needs a layout name");
      if (section !== "layout" && layoutName !== null) bad(`unexpected name in [${ent.name}]`);
      if (section !== "system" && section !== "layout") log.warn(`${at}: unknown section [${ent.name}] ignored`);
      continue;
    }
    const key = ent.key.toLowerCase();
    const value = unquote(ent.value);
    const bool = (): boolean => {
      const b = BOOL[value.toLowerCase()];
      if (b === undefined) bad(`${key} must be a boolean (yes/no), not ${JSON.stringify(value)}`);
      return b!;
    };
    const absPath = (): string => {
      if (!isAbsolute(value)) bad(`${key} must be an absolute path, not ${JSON.stringify(value)}`);
      return value.length > 1 ? value.replace(/\/+$/, "") : value;
    };
    const perLayout = (target: Partial<LayoutSettings>): boolean => {
      switch (key) {
        case "runtime":
          try {
            target.runtime = normalizeRuntime(value);
          } catch (e) {
            bad((e as Error).message);
          }
          return true;
        case "protectsystem":
          if (!PROTECT_SYSTEM.includes(value)) bad(`protectsystem must be one of ${PROTECT_SYSTEM.join(", ")}`);
          target.protectSystem = value;
          return true;
        case "protecthome":
          if (!PROTECT_HOME.includes(value)) bad(`protecthome must be one of ${PROTECT_HOME.join(", ")}`);
          target.protectHome = value;
          return true;
        case "enable":
          target.enable = bool();
          return true;
        case "platform":
          try {
            target.platform = formatPlatform(parsePlatform(value));
          } catch (e) {
            bad((e as Error).message);
          }
          return true;
      }
      return false;
    };
    if (section === "system") {
      switch (key) {
        case "imagelayoutdir":
          cfg.imageLayoutDir = absPath();
          break;
        case "extractsdir":
        case "extractdir": // the old generator's early spelling
          cfg.extractsDir = absPath();
          break;
        case "settingsdir":
          cfg.settingsDir = value === "" ? "" : absPath();
          break;
        case "enable":
          cfg.enable = bool();
          break;
        case "enablelabel":
          cfg.enableLabel = value;
          break;
        case "wantedby":
          if (!/^[A-Za-z0-9:_.\\@-]+\.target$/.test(value)) bad(`wantedby must be a target unit name`);
          cfg.wantedBy = value;
          break;
        case "ocigen":
          cfg.ocigen = absPath();
          break;
        case "rundir":
          cfg.runDir = absPath();
          break;
        case "volumesdir":
          cfg.volumesDir = absPath();
          break;
        case "statedir":
          cfg.stateDir = absPath();
          break;
        case "atomictemplates":
          cfg.atomicTemplates = bool();
          break;
        case "userdbdir": // earlier versions wrote nss-systemd records; host accounts are now registered with systemd-sysusers
          log.warn(`${at}: userdbdir is no longer used (ids the host lacks get accounts from systemd-sysusers); ignored`);
          break;
        case "zstdwindowmax": {
          const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
          if (!(n >= 1 && n <= 2048)) bad(`zstdwindowmax must be a whole number of MiB from 1 to 2048`);
          cfg.zstdWindowMax = n * 1024 * 1024;
          break;
        }
        default: {
          const d: Partial<LayoutSettings> = {};
          if (perLayout(d)) {
            Object.assign(cfg.defaults, d);
            if (d.enable !== undefined) cfg.enable = d.enable;
          } else log.warn(`${at}: unknown key ${key} ignored`);
        }
      }
    } else if (section === "layout") {
      const o = cfg.layouts.get(layoutName!) ?? {};
      if (!perLayout(o)) log.warn(`${at}: unknown key ${key} in [layout ${layoutName}] ignored`);
      cfg.layouts.set(layoutName!, o);
    }
  }
  return cfg;
}

/**
 * Chooses and reads the config file: `explicitPath` (the `--config` flag),
 * else `fallbackPath` (the settings' `generatorConf`, from
 * `$OCIGEN_GENERATOR_CONF`), else `/etc/oci-generator.conf` (defaults if it
 * does not exist).
 *
 * @example
 * ```ts
 * const cfg = loadGeneratorConfig(); // /etc/oci-generator.conf or defaults
 * ```
 */
export function loadGeneratorConfig(explicitPath?: string, fallbackPath?: string): GeneratorConfig {
  const chosen = explicitPath || fallbackPath || "";
  // absolute: the path is written into the generated units, which run with another working directory
  const path = resolve(chosen || DEFAULT_CONFIG_PATH);
  let text: string;
  try {
    text = fs.readFileSync(path, "utf8");
  } catch (e) {
    if (!chosen && (e as NodeJS.ErrnoException).code === "ENOENT") return defaultGeneratorConfig();
    throw wrapIo(e, "read config", path);
  }
  const cfg = parseGeneratorConfig(text, path);
  cfg.explicit = Boolean(chosen);
  return cfg;
}

/**
 * The effective settings for layout `name`.
 *
 * @example
 * ```ts
 * layoutSettings(defaultGeneratorConfig(), "busybox").runtime; // "systemd"
 * ```
 */
export function layoutSettings(cfg: GeneratorConfig, name: string): LayoutSettings {
  return { ...cfg.defaults, enable: undefined, ...cfg.layouts.get(name) };
}
