// ocigen's worker programs (src/compress/worker/*-worker-main.ts and
// src/layer/mtree-worker-main.ts, TypeScript
// modules) bundled into one CommonJS script each, for the bundles
// (.ci/build.mjs) and the single binary (.ci/build-binary.mjs): they define
// `__OCIGEN_INFLATE_WORKER__` / `__OCIGEN_DEFLATE_WORKER__` /
// `__OCIGEN_MTREE_WORKER__` as the script's
// text and src/compress/worker/spawn.ts starts the worker from it with
// `eval: true` (a single binary has no file to load a worker from). Running
// from source, spawn.ts loads the module itself.
import { join } from "node:path";

/** Generous bound: each text travels as one command-line argument (Linux: 128 KiB at most). */
const MAX_BYTES = 100 * 1024;

const PROGRAMS = {
  "src/compress/worker/inflate-worker-main.ts": "__OCIGEN_INFLATE_WORKER__",
  "src/compress/worker/deflate-worker-main.ts": "__OCIGEN_DEFLATE_WORKER__",
  "src/layer/mtree-worker-main.ts": "__OCIGEN_MTREE_WORKER__",
};

/**
 * The esbuild `--define:` arguments carrying the bundled worker programs.
 * @param {string} root the repository root
 * @returns {Promise<string[]>}
 */
export async function workerDefines(root) {
  const esbuild = await import(join(root, "node_modules", "esbuild", "lib", "main.js"));
  const out = [];
  for (const [program, name] of Object.entries(PROGRAMS)) {
    const r = await esbuild.build({
      entryPoints: [join(root, program)],
      bundle: true, platform: "node", format: "cjs", target: "node20", minify: true, write: false, logLevel: "warning",
    });
    const text = r.outputFiles[0].text;
    if (text.length > MAX_BYTES) throw new Error(`${program} worker bundle is ${text.length} bytes, over ${MAX_BYTES}: pass it to esbuild another way`);
    out.push(`--define:${name}=${JSON.stringify(text)}`);
  }
  return out;
}
