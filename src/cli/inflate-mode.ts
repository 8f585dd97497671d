/**
 * The `OCIGEN_INFLATE` environment setting (`auto`, `worker`, `wasm`, `js`;
 * unset or anything else: `auto`): which gzip decoder the unpack engine uses.
 * Read here, at the edge, and passed down as `UnpackOptions.inflate`.
 *
 * @module
 */
import process from "node:process";
import type { InflateMode } from "../compress/inflate-worker.ts";

/**
 * The decoder choice the environment asks for, `undefined` for the default.
 *
 * @example
 * ```ts
 * const opts: UnpackOptions = { inflate: inflateModeSetting() };
 * ```
 */
export function inflateModeSetting(env: Record<string, string | undefined> = process.env): InflateMode | undefined {
  const v = env.OCIGEN_INFLATE;
  return v === "auto" || v === "worker" || v === "wasm" || v === "js" ? v : undefined;
}
