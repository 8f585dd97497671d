// The inflate worker program (src/compress/worker/inflate-worker-main.ts, a
// TypeScript module) bundled into one CommonJS script, for the bundles
// (.ci/build.mjs) and the single binary (.ci/build-binary.mjs): they define
// `__OCIGEN_INFLATE_WORKER__` as its text and start the worker from it with
// `eval: true` (a single binary has no file to load a worker from). Running
// from source, src/compress/worker/pool.ts loads the module itself.
import { join } from "node:path";

/** Generous bound: the text travels as one command-line argument (Linux: 128 KiB at most). */
const MAX_BYTES = 100 * 1024;

/**
 * The esbuild `--define:` argument carrying the bundled worker.
 * @param {string} root the repository root
 * @returns {Promise<string>}
 */
export async function inflateWorkerDefine(root) {
  const esbuild = await import(join(root, "node_modules", "esbuild", "lib", "main.js"));
  const r = await esbuild.build({
    entryPoints: [join(root, "src/compress/worker/inflate-worker-main.ts")],
    bundle: true, platform: "node", format: "cjs", target: "node20", minify: true, write: false, logLevel: "warning",
  });
  const text = r.outputFiles[0].text;
  if (text.length > MAX_BYTES) throw new Error(`inflate worker bundle is ${text.length} bytes, over ${MAX_BYTES}: pass it to esbuild another way`);
  return `--define:__OCIGEN_INFLATE_WORKER__=${JSON.stringify(text)}`;
}
