/**
 * The per-image settings keys of auto-update (section `[Image]` of the
 * settings files, see src/generator/settings.ts):
 * - `AutoUpdate=yes|no` (default yes): `ocigen update` rolls out a moved
 *   tag for this image; `no` leaves it to the operator (a restart after
 *   `daemon-reload` still runs the new content, as without auto-update);
 * - `HealthCmd=COMMAND ARGS...`: after a restart, the new content counts as
 *   good only once this command, run inside the service's root with the
 *   service's own user, environment and sandbox, exits 0 (split into words
 *   like `Exec=`, no shell; `HealthCmd=` empty: none);
 * - `HealthTimeout=SECONDS` (default {@linkcode DEFAULT_HEALTH_TIMEOUT}): how
 *   long the restarted service is watched. It fails the update if within
 *   that time it fails to start, exits non-zero or is restarted, or (with
 *   `HealthCmd=`) the command has not succeeded.
 *
 * Parsed here with the rest of the settings files; `ocigen update`
 * (src/update/) acts on them.
 *
 * @module
 */
import { shellSplit } from "../util/shellsplit.ts";
import { checkExecutable } from "./syntax.ts";
import { BOOL } from "./ini.ts";

/**
 * Seconds a restarted service is watched when the settings say nothing.
 *
 * @example
 * ```ts
 * const t = settings.update?.healthTimeout ?? DEFAULT_HEALTH_TIMEOUT; // 10
 * ```
 */
export const DEFAULT_HEALTH_TIMEOUT = 10;

/**
 * The auto-update settings of one image.
 *
 * @example
 * ```ts
 * const s: UpdateSettings = { healthCmd: ["/bin/check"], healthTimeout: 30 };
 * ```
 */
export interface UpdateSettings {
  /** `AutoUpdate=`; undefined: yes. */
  autoUpdate?: boolean;
  /** `HealthCmd=` words; null: cleared. */
  healthCmd?: string[] | null;
  /** `HealthTimeout=` seconds. */
  healthTimeout?: number;
}

/**
 * The keys this module parses.
 *
 * @example
 * ```ts
 * UPDATE_KEYS.includes("HealthCmd"); // true
 * ```
 */
export const UPDATE_KEYS: readonly string[] = ["AutoUpdate", "HealthCmd", "HealthTimeout"];


/**
 * `cur` with one key applied; throws a plain Error (the settings parser adds
 * file and line) for a bad value.
 *
 * @example
 * ```ts
 * parseUpdateKey({}, "HealthTimeout", "30"); // { healthTimeout: 30 }
 * ```
 */
export function parseUpdateKey(cur: UpdateSettings, key: string, value: string): UpdateSettings {
  const out = { ...cur };
  switch (key) {
    case "AutoUpdate": {
      const b = BOOL[value.toLowerCase()];
      if (b === undefined) throw new Error(`AutoUpdate= must be yes or no, not ${JSON.stringify(value)}`);
      out.autoUpdate = b;
      break;
    }
    case "HealthCmd": {
      if (value === "") {
        out.healthCmd = null;
        break;
      }
      let argv: string[];
      try {
        argv = shellSplit(value);
      } catch (e) {
        throw new Error(`HealthCmd=: ${(e as Error).message.replace(/^Cannot split /, "cannot split ")}`);
      }
      if (argv.length === 0) throw new Error("HealthCmd= has no command");
      try {
        checkExecutable(argv[0]);
      } catch (e) {
        throw new Error(`HealthCmd=: ${(e as Error).message}`);
      }
      if (argv.some((w) => /[\x00-\x1f\x7f]/.test(w))) throw new Error("HealthCmd= holds a control character");
      out.healthCmd = argv;
      break;
    }
    case "HealthTimeout": {
      const m = /^([0-9]{1,5})(s)?$/.exec(value);
      if (!m || Number(m[1]) < 1 || Number(m[1]) > 86400) throw new Error(`HealthTimeout= must be seconds (1..86400), not ${JSON.stringify(value)}`);
      out.healthTimeout = Number(m[1]);
      break;
    }
    default:
      throw new Error(`unknown key ${key}=`);
  }
  return out;
}

/**
 * `upper` over `base` (each key: the upper level's when it sets it).
 *
 * @example
 * ```ts
 * mergeUpdate({ healthTimeout: 5 }, { autoUpdate: false }); // { healthTimeout: 5, autoUpdate: false }
 * ```
 */
export function mergeUpdate(base: UpdateSettings | undefined, upper: UpdateSettings | undefined): UpdateSettings | undefined {
  if (!upper) return base;
  const out: UpdateSettings = { ...base };
  if (upper.autoUpdate !== undefined) out.autoUpdate = upper.autoUpdate;
  if (upper.healthCmd !== undefined) out.healthCmd = upper.healthCmd;
  if (upper.healthTimeout !== undefined) out.healthTimeout = upper.healthTimeout;
  return out;
}
