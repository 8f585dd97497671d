/**
 * The store's settings from the environment, read here at the edge and
 * passed down to the store, `extract` and `extract --all` as options:
 *
 * | variable | option | default |
 * | --- | --- | --- |
 * | `OCIGEN_LOCK_TIMEOUT` (seconds, > 0) | `lockTimeoutMs` | none: the store's one hour |
 * | `OCIGEN_COPY=js` | `copyMode` | `auto` (GNU cp when present) |
 * | `OCIGEN_SELF` | `self` | none: found from how ocigen was started |
 *
 * A value a variable cannot hold (`OCIGEN_LOCK_TIMEOUT=soon`) is ignored.
 *
 * @module
 */
import process from "node:process";
import type { CopyMode } from "../store/copy.ts";

/** The store's settings (see the module docs). */
export interface StoreEnv {
  lockTimeoutMs?: number;
  copyMode: CopyMode;
  self?: string;
}

/**
 * Reads the store's settings from `env` (see the module docs).
 *
 * @example
 * ```ts
 * storeEnv({ OCIGEN_LOCK_TIMEOUT: "5" }); // { lockTimeoutMs: 5000, copyMode: "auto", self: undefined }
 * ```
 */
export function storeEnv(env: Record<string, string | undefined> = process.env): StoreEnv {
  const s = Number(env.OCIGEN_LOCK_TIMEOUT);
  return {
    lockTimeoutMs: Number.isFinite(s) && s > 0 ? s * 1000 : undefined,
    copyMode: env.OCIGEN_COPY === "js" ? "js" : "auto",
    self: env.OCIGEN_SELF || undefined,
  };
}
