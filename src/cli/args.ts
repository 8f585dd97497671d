/**
 * The checks umoci makes on its common arguments, in one place for every
 * verb:
 *
 * - `--image LAYOUT[:TAG]`: LAYOUT must not be empty; TAG defaults to
 *   `latest` when there is no `:`, and an empty TAG (`LAYOUT:`) or one
 *   outside the OCI ref.name grammar is refused.
 * - `--layout LAYOUT`: must not be empty and must not contain `:` (umoci
 *   refuses it, so that `--layout L:T` is never silently a directory named
 *   `L:T`).
 * - `--no-history` excludes every `--history.*` option.
 * - `--uid-map`/`--gid-map` (repeatable `CONTAINER:HOST[:SIZE]`): declared
 *   once here for every verb that takes them, parsed into id mappings.
 *
 * These are usage errors (`EUSAGE`), raised before anything is read or written;
 * an engine's parser that refuses a flag's value (`EINVALID`) is reported
 * as one too ({@linkcode asUsage}).
 *
 * @module
 */
import type { Command } from "commander";
import { OcigenError } from "../errors.ts";
import { type IdMapping, parseIdMap } from "../layer/idmap.ts";
import { parseImageRef } from "../oci/refname.ts";
import { validateTag } from "../oci/refname.ts";

/**
 * Runs an engine's parser on a flag's value: a value it refuses as
 * malformed (`EINVALID`) is a usage error here (same message).
 *
 * @example
 * ```ts
 * asUsage(() => parseIdMap("0:x")); // throws EUSAGE: Cannot parse id map "0:x": ...
 * ```
 */
export function asUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof OcigenError && e.code === "EINVALID") throw new OcigenError("EUSAGE", e.message, { cause: e });
    throw e;
  }
}

/** Commander's argument parser of a repeatable option: the values in order. */
export const collect = (v: string, acc: string[] | undefined): string[] => [...(acc ?? []), v];

/** The `--history.*` option names (after `--history.`). */
export const HISTORY_KEYS = ["author", "comment", "created", "created_by"] as const;

/**
 * The layout directory and tag of `--image`, checked as umoci checks them.
 *
 * @example
 * ```ts
 * imageArg({ image: "oci:v1" }); // { dir: "oci", tag: "v1" }
 * imageArg({ image: "oci:" }); // throws EUSAGE (empty tag)
 * ```
 */
export function imageArg(o: { image?: unknown }): { dir: string; tag: string } {
  const img = o.image;
  if (typeof img !== "string" || img === "") throw new OcigenError("EUSAGE", "--image LAYOUT[:TAG] is required");
  const r = asUsage(() => parseImageRef(img));
  validateTag(r.tag);
  return r;
}

/**
 * The layout directory of `--layout`, checked as umoci checks it.
 *
 * @example
 * ```ts
 * layoutArg({ layout: "oci" }); // "oci"
 * layoutArg({ layout: "oci:latest" }); // throws EUSAGE (':' in the path)
 * ```
 */
export function layoutArg(o: { layout?: unknown }): string {
  const l = o.layout;
  if (typeof l !== "string" || l === "") throw new OcigenError("EUSAGE", "--layout LAYOUT is required");
  if (l.includes(":")) {
    throw new OcigenError("EUSAGE", `Invalid --layout ${JSON.stringify(l)}: the path contains ':' (use --image LAYOUT:TAG for a tag)`);
  }
  return l;
}

/**
 * The `--history.*` values given, after checking that `--no-history` (which
 * commander stores as `history: false`) is not combined with any of them.
 *
 * @example
 * ```ts
 * historyArgs({ "history.comment": "x" }); // { none: false, values: { comment: "x" } }
 * historyArgs({ history: false, "history.comment": "x" }); // throws EUSAGE
 * ```
 */
export function historyArgs(o: Record<string, unknown>): { none: boolean; values: Partial<Record<(typeof HISTORY_KEYS)[number], string>> } {
  const values: Partial<Record<(typeof HISTORY_KEYS)[number], string>> = {};
  for (const k of HISTORY_KEYS) {
    const v = o[`history.${k}`];
    if (typeof v === "string") values[k] = v;
  }
  const none = o.history === false;
  if (none) {
    const given = Object.keys(values);
    if (given.length > 0) throw new OcigenError("EUSAGE", `--no-history and --history.${given[0]} may not be specified together`);
  }
  return { none, values };
}

/**
 * The `--tag NEW` value when given, checked against the ref.name grammar
 * (an empty one is refused too).
 *
 * @example
 * ```ts
 * tagArg({ tag: "v2" }); // "v2"
 * tagArg({}); // undefined
 * ```
 */
export function tagArg(o: { tag?: unknown }): string | undefined {
  if (o.tag === undefined) return undefined;
  validateTag(String(o.tag));
  return String(o.tag);
}

/**
 * Adds the repeatable `--uid-map` and `--gid-map CONTAINER:HOST[:SIZE]`
 * options to `cmd` (`help`: what a mapping does for this verb; the default
 * is the unpack verbs' wording).
 *
 * @example
 * ```ts
 * addIdMapOptions(program.command("unpack")).action((o) => idMapArgs(o));
 * ```
 */
export function addIdMapOptions(
  cmd: Command,
  help: { uid: string; gid: string } = { uid: "uid mapping to use (size defaults to 1; repeatable)", gid: "gid mapping to use (size defaults to 1; repeatable)" },
): Command {
  return cmd.option("--uid-map <container:host[:size]>", help.uid, collect).option("--gid-map <container:host[:size]>", help.gid, collect);
}

/**
 * The mappings given with the options {@linkcode addIdMapOptions} adds (none: empty lists).
 *
 * @example
 * ```ts
 * idMapArgs({ uidMap: ["0:1000:1"] }); // { uidMap: [{ containerID: 0, hostID: 1000, size: 1 }], gidMap: [] }
 * ```
 */
export function idMapArgs(o: { uidMap?: unknown; gidMap?: unknown }): { uidMap: IdMapping[]; gidMap: IdMapping[] } {
  const list = (v: unknown) => asUsage(() => ((v as string[] | undefined) ?? []).map(parseIdMap));
  return { uidMap: list(o.uidMap), gidMap: list(o.gidMap) };
}
