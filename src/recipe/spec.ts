/**
 * The genoci build spec (YAML): a map from target name (the tag it becomes)
 * to a target spec. Keys of a target:
 *
 * | key | value |
 * |---|---|
 * | `base` | `empty`, or a tag built earlier in the file or already in the layout (required) |
 * | `pre` | host shell script(s) run before the steps (`$ROOTFS` = the rootfs) |
 * | `copy` | `"SRC DEST"` or a list of them: host SRC (relative to the spec file) to DEST in the rootfs |
 * | `install` | `.deb`/`.rpm` file(s) installed into the rootfs (files only, no maintainer scripts) |
 * | `expand` | tarball(s) (gzip, zstd, xz, bzip2 or plain) extracted into the rootfs root |
 * | `run` | script(s) run by `/bin/sh -c` inside the rootfs, isolated |
 * | `entrypoint` | string (shell-split) or list: the image Entrypoint |
 * | `cmd` | string (shell-split) or list: the image Cmd |
 * | `annotations` | map: `env` (map or `K=V` list) -> config Env; other keys -> labels and manifest annotations |
 * | `post` | host shell script(s) run after the steps, before the commit |
 *
 * Steps always run in the order pre, copy, install, expand, run, post.
 *
 * @module
 */
import fs from "node:fs";
import { parse as parseYaml } from "yaml";
import { OcigenError } from "../errors.ts";
import { isValidTag } from "../oci/refname.ts";
import { shellSplit } from "../util/shellsplit.ts";

/** One `copy` pair. */
export interface CopyStep {
  src: string;
  dest: string;
}

/** A validated target. */
export interface BuildTarget {
  name: string;
  base: string;
  pre: string[];
  copy: CopyStep[];
  install: string[];
  expand: string[];
  run: string[];
  entrypoint?: string[];
  cmd?: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  post: string[];
}

/** A parsed spec: targets in file order. */
export interface BuildSpec {
  targets: BuildTarget[];
}

const KNOWN = new Set(["base", "pre", "copy", "install", "expand", "run", "entrypoint", "cmd", "annotations", "post"]);
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

function fail(where: string, msg: string): never {
  throw new OcigenError("EBUILD", `${where}: ${msg}`);
}

function strings(v: unknown, where: string, key: string): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return [v];
  if (typeof v === "number") return [String(v)];
  if (Array.isArray(v) && v.every((x) => typeof x === "string" || typeof x === "number")) return v.map(String);
  fail(where, `${key} must be a string or a list of strings`);
}

function parseCopy(s: string, where: string): CopyStep {
  const parts = shellSplit(s.trim());
  if (parts.length !== 2) fail(where, `copy entry ${JSON.stringify(s)} must be "SRC DEST"`);
  return { src: parts[0], dest: parts[1] };
}

function command(v: unknown, where: string, key: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") {
    const a = shellSplit(v);
    if (a.length === 0) fail(where, `${key} is empty`);
    return a;
  }
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  fail(where, `${key} must be a string or a list of strings`);
}

/**
 * Parses and validates a spec from YAML text. Errors name the file and target.
 *
 * @example
 * ```ts
 * const spec = parseBuildSpec("cirros:\n  base: empty\n  expand: ./cirros.tar.gz\n", "cirros.yaml");
 * spec.targets[0].expand; // ["./cirros.tar.gz"]
 * ```
 */
export function parseBuildSpec(text: string, file = "spec"): BuildSpec {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    fail(file, `not valid YAML: ${String((e as Error).message).split("\n")[0]}`);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) fail(file, "must be a map from target name to target spec");
  const targets: BuildTarget[] = [];
  for (const [name, raw] of Object.entries(doc as Record<string, unknown>)) {
    const where = `${file}: target ${name}`;
    // a Docker-style tag that is also an OCI ref.name (`_a`, `a__b`, `a-` are not: ocigen, skopeo and umoci refuse them)
    if (!TAG_RE.test(name) || !isValidTag(name)) fail(where, "name is not a valid tag");
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) fail(where, "must be a map");
    const t = raw as Record<string, unknown>;
    for (const k of Object.keys(t)) if (!KNOWN.has(k)) fail(where, `unknown key ${k}`);
    if (typeof t.base !== "string" || t.base === "") fail(where, "base is required (empty or a tag)");
    const env: Record<string, string> = {};
    const labels: Record<string, string> = {};
    if (t.annotations !== undefined && t.annotations !== null) {
      if (typeof t.annotations !== "object" || Array.isArray(t.annotations)) fail(where, "annotations must be a map");
      for (const [k, v] of Object.entries(t.annotations as Record<string, unknown>)) {
        if (k === "env") {
          if (Array.isArray(v)) {
            for (const kv of v) {
              const s = String(kv);
              const i = s.indexOf("=");
              if (i <= 0) fail(where, `env entry ${JSON.stringify(s)} must be K=V`);
              env[s.slice(0, i)] = s.slice(i + 1);
            }
          } else if (v && typeof v === "object") {
            for (const [ek, ev] of Object.entries(v as Record<string, unknown>)) {
              if (ek === "" || ek.includes("=")) fail(where, `env name ${JSON.stringify(ek)} is invalid`);
              env[ek] = ev === null || ev === undefined ? "" : String(ev);
            }
          } else fail(where, "annotations.env must be a map or a list of K=V");
        } else {
          if (v !== null && typeof v === "object") fail(where, `annotation ${k} must be a scalar`);
          labels[k] = v === null || v === undefined ? "" : String(v);
        }
      }
    }
    targets.push({
      name,
      base: t.base,
      pre: strings(t.pre, where, "pre"),
      copy: strings(t.copy, where, "copy").map((s) => parseCopy(s, where)),
      install: strings(t.install, where, "install"),
      expand: strings(t.expand, where, "expand"),
      run: strings(t.run, where, "run"),
      entrypoint: command(t.entrypoint, where, "entrypoint"),
      cmd: command(t.cmd, where, "cmd"),
      env,
      labels,
      post: strings(t.post, where, "post"),
    });
  }
  if (targets.length === 0) fail(file, "defines no target");
  return { targets };
}

/**
 * Reads and parses a spec file.
 *
 * @example
 * ```ts
 * const spec = readBuildSpec("cirros.yaml");
 * ```
 */
export function readBuildSpec(file: string): BuildSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new OcigenError("EBUILD", `Cannot read build spec ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  return parseBuildSpec(text, file);
}
