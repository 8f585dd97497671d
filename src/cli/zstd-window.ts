/**
 * The `--zstd-window-max <MiB>` command-line option: the largest window (so
 * the memory) a zstd layer may make the decoder keep. Parsed here, passed
 * down to the unpack engine as bytes (`zstdWindowMax`).
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import { parseWindowMaxMiB } from "../compress/zstd-frame.ts";

/**
 * The option's value in bytes, `undefined` when not given; a bad value is an
 * `EUSAGE` error.
 *
 * @example
 * ```ts
 * zstdWindowMaxOption("1024"); // 1073741824
 * zstdWindowMaxOption(undefined); // undefined
 * ```
 */
export function zstdWindowMaxOption(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = parseWindowMaxMiB(String(v));
  if (n === undefined) throw new OcigenError("EUSAGE", `--zstd-window-max must be a whole number of MiB from 1 to 2048, got ${String(v)}`);
  return n;
}
