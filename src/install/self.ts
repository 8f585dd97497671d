/**
 * How this ocigen process was started: as the single-file executable (Node
 * SEA), as the bundled script under Node, or from the sources under Node or
 * Deno; whether it was invoked under the generator's name
 * (`ocigen-generator`); and the command that starts this same ocigen again.
 *
 * @module
 */
import process from "node:process";
import { accessSync, closeSync, constants, openSync, readSync, realpathSync } from "node:fs";
import { basename, resolve } from "node:path";

declare const __OCIGEN_SEA__: boolean | undefined;

/** The name systemd knows the generator by (the link in `system-generators/`). */
export const GENERATOR_NAME = "ocigen-generator";

const GENERATOR_RE = /^ocigen-generator(\.[cm]?js|\.ts)?$/;

/**
 * True when running as the single-file executable built by
 * `npm run build:binary` (Node's single executable application support).
 *
 * @example
 * ```ts
 * if (isSea()) console.log("binary at", process.execPath);
 * ```
 */
export function isSea(): boolean {
  // Build-time flag set by .ci/build-binary.mjs in the bundle injected into the binary.
  if (typeof __OCIGEN_SEA__ !== "undefined" && __OCIGEN_SEA__) {
    const p = process as unknown as { getBuiltinModule?: (id: string) => { isSea?: () => boolean } | undefined };
    try {
      const sea = p.getBuiltinModule?.("node:sea");
      if (sea?.isSea) return sea.isSea();
    } catch {
      // no node:sea in this runtime
    }
    return true;
  }
  return false;
}

/** True when running under Deno. */
export function isDeno(): boolean {
  return typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
}

/**
 * True when this process was invoked under the generator's name, i.e. through
 * the `system-generators/ocigen-generator` link (argv[1] under Node scripts and
 * in the single binary, `process.argv0` for the binary), or `forced` (the
 * settings' `OCIGEN_AS_GENERATOR=1`).
 *
 * @example
 * ```ts
 * invokedAsGenerator(["/usr/bin/node", "/usr/lib/systemd/system-generators/ocigen-generator"], "node"); // true
 * ```
 */
export function invokedAsGenerator(argv: readonly string[], argv0: string, forced = false): boolean {
  if (forced) return true;
  for (const a of [argv[1], argv0]) {
    if (a && GENERATOR_RE.test(basename(a))) return true;
  }
  return false;
}

/**
 * The argv the CLI should parse: `argv` with `generate` inserted after the
 * program name when invoked as `ocigen-generator` (`asGenerator`, the
 * settings' field of that name).
 *
 * @example
 * ```ts
 * invocationArgv(["node", "ocigen-generator", "/run/a", "/run/b", "/run/c"], true);
 * // ["node", "ocigen-generator", "generate", "/run/a", "/run/b", "/run/c"]
 * ```
 */
export function invocationArgv(argv: readonly string[], asGenerator: boolean): string[] {
  const out = [...argv];
  // Deno's process.argv has the same [runtime, script, ...args] shape as Node's.
  if (asGenerator) out.splice(2, 0, "generate");
  return out;
}

/**
 * The program the units the generator writes should run
 * (`ExecStartPre=+$OCIGEN_SELF extract ...`): `current` (an `OCIGEN_SELF`
 * already set, by the installed wrapper) when given; in the single binary
 * always `process.execPath` (argv[1] there is whatever name it was called
 * by, possibly relative or the generator link); when invoked through the
 * generator link as a script (`asGenerator`), the real path of that script
 * if it is directly executable (the link's own name would turn `extract`
 * into `generate extract`); else undefined (the generator falls back to
 * runtime + script).
 *
 * @example
 * ```ts
 * pinnedSelf(process.argv, undefined, false); // "/usr/local/bin/ocigen" in the installed binary
 * ```
 */
export function pinnedSelf(argv: readonly string[], current: string | undefined, asGenerator: boolean): string | undefined {
  if (current) return current;
  if (isSea()) return process.execPath;
  if (!asGenerator || !argv[1]) return undefined;
  try {
    const real = realpathSync(argv[1]);
    accessSync(real, constants.X_OK);
    if (!GENERATOR_RE.test(basename(real)) && startsWithShebang(real)) return real;
  } catch {
    // not directly executable: the generator falls back to runtime + script
  }
  return undefined;
}

function startsWithShebang(file: string): boolean {
  const fd = openSync(file, "r");
  try {
    const b = new Uint8Array(2);
    return readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x23 && b[1] === 0x21;
  } finally {
    closeSync(fd);
  }
}

/** Permissions `deno run` needs to run ocigen from the sources. */
export const DENO_PERMISSIONS = ["--allow-read", "--allow-write", "--allow-env", "--allow-run", "--allow-sys"] as const;

/**
 * V8 flags for the Deno runs ocigen starts itself (units, the installed
 * wrapper, `deno task`, benchmarks); a running isolate cannot change them,
 * hence start flags:
 * - `--max-semi-space-size=16`: Node's young generation (16 MiB
 *   semi-spaces) instead of Deno's 64 MiB new space, which only grows the
 *   peak RSS (a 2.2 GB layer: 261 -> 220 MiB, 150 MB image: 237 -> 203 MiB,
 *   the same CPU time);
 * - `--expose-gc`: lets threads that make a `node:crypto` hash object per
 *   file free their native state, which on Deno only a full collection
 *   frees (src/digest/release.ts; a 2.2 GB layer of 256k files: ~60 MiB
 *   less peak RSS).
 *
 * @example
 * ```ts
 * ["deno", "run", ...DENO_V8_FLAGS, ...DENO_PERMISSIONS, "src/main.ts"];
 * ```
 */
export const DENO_V8_FLAGS = ["--v8-flags=--max-semi-space-size=16,--expose-gc"] as const;

/**
 * The command (argv prefix) that starts this same ocigen again, for unit
 * files and wrapper scripts: `self` when given (the settings' `self`:
 * `OCIGEN_SELF`, which the installed wrapper script sets to its own
 * installed path), else the binary itself in SEA
 * mode, else the runtime plus the script (`node [execArgv] /abs/ocigen.mjs`,
 * `deno run --v8-flags=... --allow-... /abs/src/main.ts`).
 *
 * @example
 * ```ts
 * const [cmd, ...args] = selfCommand(settings.self);
 * // e.g. ["/usr/local/bin/ocigen"] or ["/usr/bin/node", "/opt/ocigen/dist/ocigen.mjs"]
 * ```
 */
export function selfCommand(self?: string): string[] {
  if (self) return [self];
  if (isSea()) return [process.execPath];
  const script = process.argv[1] ? resolve(process.argv[1]) : "";
  if (isDeno()) return [process.execPath, "run", ...DENO_V8_FLAGS, ...DENO_PERMISSIONS, script];
  return [process.execPath, ...process.execArgv, script];
}
