/**
 * ocigen's settings: one typed object built once, at the edge, from the
 * environment and the way the program was started, then passed down.
 *
 * This is the only module outside `src/cli/` that reads the environment.
 * Engines (everything else under `src/`) never read `process.env`: they take
 * the values they need as options, and the command line (`src/cli/`) fills
 * those options from the {@linkcode Settings} it built with
 * {@linkcode processSettings} (flags override these values where a flag
 * exists; the generator's config file is chosen by `--config`, else
 * {@linkcode Settings.generatorConf}).
 *
 * {@linkcode settingsFromEnv} is the pure part (an environment record in, a
 * `Settings` out) and holds every rule; {@linkcode processSettings} applies it
 * to this process once. The variables and their defaults:
 *
 * | variable | field | default |
 * | --- | --- | --- |
 * | `PATH` | `path` | `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` |
 * | `TERM=dumb` | `terminalCapable` | true (escapes allowed) |
 * | `COLUMNS` | `columns` | none (the terminal's width, else 80) |
 * | `OCIGEN_PROGRESS_INTERVAL_MS` | `progressIntervalMs` | 100 |
 * | `OCIGEN_GZIP=portable` | `gzip` | `parallel` |
 * | `OCIGEN_INFLATE=wasm\|worker\|js` | `inflate` | `auto` |
 * | `OCIGEN_LOOKAHEAD=0` | `lookahead` | true |
 * | `OCIGEN_COPY=js` | `copy` | `auto` |
 * | `OCIGEN_LOCK_TIMEOUT` (seconds) | `lockTimeoutMs`, `layoutLockTimeoutMs` | 3 600 000 (store), 60 000 (layout) |
 * | `OCIGEN_ISOLATION=bwrap\|unshare\|chroot\|none` | `isolation` | `auto` |
 * | `SOURCE_DATE_EPOCH` | `sourceDateEpoch` | none |
 * | `OCIGEN_KMSG=0\|1`, `SYSTEMD_SCOPE`, `SYSTEMD_LOG_TARGET`, `INVOCATION_ID` | `kmsg` | see below |
 * | `OCIGEN_GENERATOR_CONF` | `generatorConf` | none (`/etc/oci-generator.conf`) |
 * | `OCIGEN_SELF` | `self` | pinned, see below |
 * | `OCIGEN_AS_GENERATOR=1` | `asGenerator` | from the program's name |
 *
 * A value a variable cannot hold (`OCIGEN_LOCK_TIMEOUT=soon`) is ignored and
 * the default used, as before settings existed. The lock timeout is the one
 * wait limit of every lock (layout, extracts store): an hour, because a unit
 * that waits for another's extraction of a large image must not give up
 * while that extraction makes progress; stale locks (dead holder) are broken
 * at once whatever the limit.
 *
 * `kmsg` (generator messages to the kernel log): `OCIGEN_KMSG=0|1` forces it;
 * else false under `SYSTEMD_LOG_TARGET=console`; else true when systemd is the
 * caller (`SYSTEMD_SCOPE`, `SYSTEMD_LOG_TARGET` or `INVOCATION_ID` set) or
 * the program was invoked as `ocigen-generator`.
 *
 * `self` (the command generated units run `extract` with): `OCIGEN_SELF`
 * when set (the installed wrapper sets it), else in the single binary its
 * own path, else when invoked through the generator link as a directly
 * executable script, that script's real path (see `pinnedSelf` in
 * install/self.ts). {@linkcode processSettings} writes the pinned value back
 * to `OCIGEN_SELF` so that child processes (bulk workers) inherit it.
 *
 * @module
 */
import process from "node:process";
import { invokedAsGenerator, pinnedSelf } from "./install/self.ts";
import { DEFAULT_PATH } from "./util/which.ts";
import type { GzipMode } from "./compress/encode.ts";
import type { InflateMode } from "./compress/inflate-worker.ts";
import type { IsolationChoice } from "./recipe/sandbox.ts";

export type { InflateMode };
/** How bulk extraction copies shared trees: GNU `cp` when present (`auto`), or the JavaScript copier. */
export type CopyMode = "auto" | "js";

/** Every setting ocigen takes from its environment (see the module docs). */
export interface Settings {
  /** Directories searched for host tools, `:`-separated (`$PATH`). */
  readonly path: string;
  /** The environment child processes that should see ocigen's own get (build hooks, bulk workers). */
  readonly childEnv: Readonly<Record<string, string>>;
  /** The terminal understands cursor escapes (`$TERM` is not `dumb`). */
  readonly terminalCapable: boolean;
  /** Width of the terminal when stderr does not tell it (`$COLUMNS`). */
  readonly columns: number | undefined;
  /** Minimum milliseconds between progress redraws (0: every update). */
  readonly progressIntervalMs: number;
  /** gzip writer. */
  readonly gzip: GzipMode;
  /** gzip reader. */
  readonly inflate: InflateMode;
  /** Start the next layer's decompression while applying this one. */
  readonly lookahead: boolean;
  /** Tree copier of bulk extraction. */
  readonly copy: CopyMode;
  /** How long to wait for a lock held by a live process, in ms. */
  readonly lockTimeoutMs: number;
  /** The layout lock's wait limit in ms: `OCIGEN_LOCK_TIMEOUT` when set, else undefined (60 s). */
  readonly layoutLockTimeoutMs: number | undefined;
  /** Isolation of recipe `run` scripts. */
  readonly isolation: IsolationChoice;
  /** Clamp of written mtimes and default dates, in seconds (`$SOURCE_DATE_EPOCH`). */
  readonly sourceDateEpoch: number | undefined;
  /** The generator reports to the kernel log (systemd runs it). */
  readonly kmsg: boolean;
  /** Generator config file named by the environment (`--config` wins over it). */
  readonly generatorConf: string | undefined;
  /** The program generated units run (`ExecStartPre=… extract`), when known. */
  readonly self: string | undefined;
  /** Invoked as the systemd generator (`ocigen-generator`). */
  readonly asGenerator: boolean;
}


/** Lock wait limit when `OCIGEN_LOCK_TIMEOUT` is unset: one hour. */
export const DEFAULT_LOCK_TIMEOUT_MS = 3_600_000;

/** Progress redraw interval when `OCIGEN_PROGRESS_INTERVAL_MS` is unset: 10 Hz. */
export const DEFAULT_PROGRESS_INTERVAL_MS = 100;

/** How the program was started, for the settings that depend on it. */
export interface Invocation {
  /** `process.argv` (runtime, script, arguments). */
  argv: readonly string[];
  /** `process.argv0`. */
  argv0: string;
}

type Env = Readonly<Record<string, string | undefined>>;

function oneOf<T extends string>(v: string | undefined, allowed: readonly T[], fallback: T): T {
  return v !== undefined && (allowed as readonly string[]).includes(v) ? (v as T) : fallback;
}

function positiveNumber(v: string | undefined): number | undefined {
  const n = v === undefined || v.trim() === "" ? NaN : Number(v);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

function kmsgOf(env: Env, asGenerator: boolean): boolean {
  if (env.OCIGEN_KMSG === "0") return false;
  if (env.OCIGEN_KMSG === "1") return true;
  if (env.SYSTEMD_LOG_TARGET === "console") return false;
  return Boolean(env.SYSTEMD_SCOPE || env.SYSTEMD_LOG_TARGET || env.INVOCATION_ID || asGenerator);
}

/**
 * The settings an environment gives (pure: nothing is read or written but
 * `env`; `how`, when given, lets the program's name make it the generator).
 *
 * @example
 * ```ts
 * settingsFromEnv({ OCIGEN_LOCK_TIMEOUT: "5" }).lockTimeoutMs; // 5000
 * settingsFromEnv({ SYSTEMD_SCOPE: "system" }).kmsg; // true
 * ```
 */
export function settingsFromEnv(env: Env, how?: Invocation): Settings {
  const asGenerator = how ? invokedAsGenerator(how.argv, how.argv0, env.OCIGEN_AS_GENERATOR === "1") : env.OCIGEN_AS_GENERATOR === "1";
  const interval = env.OCIGEN_PROGRESS_INTERVAL_MS;
  const intervalN = interval === undefined || interval === "" ? NaN : Number(interval);
  const sde = env.SOURCE_DATE_EPOCH?.trim();
  const lockS = positiveNumber(env.OCIGEN_LOCK_TIMEOUT);
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
  return {
    path: env.PATH ?? DEFAULT_PATH,
    childEnv,
    terminalCapable: env.TERM !== "dumb",
    columns: positiveNumber(env.COLUMNS),
    progressIntervalMs: Number.isFinite(intervalN) && intervalN >= 0 ? intervalN : DEFAULT_PROGRESS_INTERVAL_MS,
    gzip: env.OCIGEN_GZIP === "portable" ? "portable" : "parallel",
    inflate: oneOf(env.OCIGEN_INFLATE, ["wasm", "worker", "js"] as const, "auto"),
    lookahead: (env.OCIGEN_LOOKAHEAD ?? "1") !== "0",
    copy: env.OCIGEN_COPY === "js" ? "js" : "auto",
    lockTimeoutMs: lockS !== undefined ? lockS * 1000 : DEFAULT_LOCK_TIMEOUT_MS,
    layoutLockTimeoutMs: lockS !== undefined ? lockS * 1000 : undefined,
    isolation: oneOf(env.OCIGEN_ISOLATION, ["bwrap", "unshare", "chroot", "none"] as const, "auto"),
    sourceDateEpoch: sde !== undefined && /^\d+$/.test(sde) ? Number(sde) : undefined,
    kmsg: kmsgOf(env, asGenerator),
    generatorConf: env.OCIGEN_GENERATOR_CONF || undefined,
    self: how ? pinnedSelf(how.argv, env.OCIGEN_SELF, asGenerator) : env.OCIGEN_SELF || undefined,
    asGenerator,
  };
}

/**
 * The settings with nothing taken from any environment: what a library
 * caller gets for every option it leaves out.
 *
 * @example
 * ```ts
 * defaultSettings().lockTimeoutMs; // 3600000
 * ```
 */
export function defaultSettings(): Settings {
  return settingsFromEnv({});
}

let built: Settings | undefined;

/**
 * This process's settings, built from `process.env` and `process.argv` on
 * the first call (later calls return the same object). Also pins
 * `OCIGEN_SELF` in the environment for child processes. Called by the
 * program entry and the command line only.
 *
 * @example
 * ```ts
 * const s = processSettings();
 * await unpackRootfs(layout, image, dir, { lookahead: s.lookahead });
 * ```
 */
export function processSettings(): Settings {
  if (built) return built;
  const env = process.env;
  built = settingsFromEnv(env, { argv: process.argv, argv0: process.argv0 });
  if (built.self && env.OCIGEN_SELF !== built.self) {
    env.OCIGEN_SELF = built.self;
    built = { ...built, childEnv: { ...built.childEnv, OCIGEN_SELF: built.self } };
  }
  return built;
}
