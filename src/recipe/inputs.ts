/**
 * What a build target is made from, as one digest: `ocigen build` records it
 * on the manifest it commits (annotation {@linkcode INPUTS_ANNOTATION}) and,
 * on the next run, skips a target whose tag still names a manifest with the
 * same digest — nothing is unpacked, run or committed, and no tag is added.
 *
 * The digest (sha256 over one canonical JSON document) covers:
 * - the base: its manifest digest as resolved now (`empty` plus the host
 *   platform for `base: empty`), so a rebuilt base rebuilds what is on it;
 * - the target's spec: every key (`base`, `pre`, `copy`, `install`, `expand`,
 *   `run`, `entrypoint`, `cmd`, annotations/env, `post`), so a changed
 *   script or entrypoint rebuilds;
 * - the host files the steps read: for each `copy` source the whole tree
 *   (relative paths, types, modes, owners, mtimes, symlink targets and
 *   the sha256 of every regular file), and the sha256 of each `install`
 *   package and `expand` tarball;
 * - the layer compression asked for.
 *
 * Not covered (use `ocigen build --force`): files that a `pre`/`post`/`run`
 * script reads by itself (anything not named in the spec), the network, the
 * clock. A missing source makes the digest differ, and the build then
 * reports it.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { createDigester } from "../digest/index.ts";
import { canonicalJSON } from "../oci/canonical.ts";
import type { BuildTarget } from "./spec.ts";

/**
 * Manifest annotation holding a build target's inputs digest.
 *
 * @example
 * ```ts
 * (await layout.resolve("app")).manifest.annotations?.[INPUTS_ANNOTATION]; // "sha256:…"
 * ```
 */
export const INPUTS_ANNOTATION = "org.ocigen.build.inputs";

const CHUNK = 1 << 20;

/** sha256 of a host file's content (symlinks followed), or `missing`/the errno code. */
function fileDigest(file: string): string {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (e) {
    return `unreadable:${(e as NodeJS.ErrnoException).code ?? "error"}`;
  }
  try {
    const h = createDigester("sha256");
    const buf = new Uint8Array(CHUNK);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
    return h.digest();
  } catch (e) {
    return `unreadable:${(e as NodeJS.ErrnoException).code ?? "error"}`;
  } finally {
    fs.closeSync(fd);
  }
}

/** One line per entry of a host tree (or file), sorted by path: what `copy` takes from it. */
function treeLines(root: string): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch (e) {
      out.push(`${rel} unreadable:${(e as NodeJS.ErrnoException).code ?? "error"}`);
      return;
    }
    const meta = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${Math.trunc(st.mtimeMs)}`;
    if (st.isSymbolicLink()) out.push(`${rel} l ${meta} ${fs.readlinkSync(abs)}`);
    else if (st.isFile()) out.push(`${rel} f ${meta} ${fileDigest(abs)}`);
    else if (st.isDirectory()) {
      out.push(`${rel} d ${meta}`);
      let names: string[];
      try {
        names = fs.readdirSync(abs).sort();
      } catch (e) {
        out.push(`${rel}/ unreadable:${(e as NodeJS.ErrnoException).code ?? "error"}`);
        return;
      }
      for (const n of names) walk(path.join(abs, n), rel === "." ? n : `${rel}/${n}`);
    } else out.push(`${rel} other`); // skipped by copy
  };
  walk(root, ".");
  return out;
}

/**
 * The inputs digest of target `t` on base `base` (the base's manifest digest,
 * or `empty <os>/<arch>`), host paths relative to `baseDir`.
 *
 * @example
 * ```ts
 * const d = buildInputsDigest(target, "sha256:ab...", "/src/spec-dir", "gzip");
 * manifest.annotations = { ...manifest.annotations, [INPUTS_ANNOTATION]: d };
 * ```
 */
export function buildInputsDigest(t: BuildTarget, base: string, baseDir: string, compression: string): string {
  const doc = {
    version: 1,
    base,
    compression,
    spec: t,
    copy: t.copy.map((c) => treeLines(path.resolve(baseDir, c.src))),
    install: t.install.map((p) => fileDigest(path.resolve(baseDir, p))),
    expand: t.expand.map((p) => fileDigest(path.resolve(baseDir, p))),
  };
  const h = createDigester("sha256");
  h.update(new TextEncoder().encode(canonicalJSON(doc)));
  return h.digest();
}
