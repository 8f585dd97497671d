// `npm run build:binary`: builds dist/ocigen, a single-file executable of the
// CLI using Node's single executable application (SEA) support:
//  1. bundle src/main.ts as ONE CommonJS script (Node 20 SEA runs CJS only)
//     into dist/sea/ocigen.cjs; the WASM modules are base64 TS modules
//     (src/wasm/generated/*.ts, made by .ci/build.mjs) so they are inside,
//     and so are the worker programs (bundled as text, defined as
//     `__OCIGEN_*_WORKER__`: see .ci/worker-bundles.mjs);
//     `__OCIGEN_SEA__` is defined true so src/install/self.ts knows;
//  2. `node --experimental-sea-config dist/sea/sea-config.json` -> the blob.
//     Its main script is a small loader (dist/sea/main.cjs) that compiles
//     the program (asset "program": the bundle, wrapped as .ci/code-cache.mjs
//     wraps the Node bundle's) with a V8 code cache trained on a small
//     workload (asset "cache"; unless --no-code-cache: an image made,
//     configured, unpacked and generated into units): start-up without
//     compiling the functions those verbs run. The cache is tied to
//     this exact node binary, which is the one copied; one V8 rejects is
//     only slower;
//     The bundle must not call `import()` at run time: a SEA's main script
//     has no dynamic-import callback (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING),
//     so the build fails if one is left (esbuild turns `import()` of bundled
//     modules into `require`; builtins must be imported statically);
//  3. copy this node binary, strip its symbols and debug info (`strip`, on
//     Linux; about 13 MB of the 99 MB of an official node 20; `--no-strip`
//     keeps them) and inject the blob with `postject`
//     (sentinel fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2).
//     What remains is node itself (V8, ICU data, OpenSSL): smaller needs a
//     node built without full ICU, which this script does not do;
//  4. run `BINARY --version` as a smoke test, rename into place.
//
// Usage: node .ci/build-binary.mjs [--out dist/ocigen] [--no-code-cache] [--no-minify] [--no-strip]
// Needs the dev dependencies (esbuild, postject); the result needs nothing.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cliBundleArgs, trainCodeCache, wrapProgram } from "./code-cache.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (n) => join(root, "node_modules", ".bin", n);
const args = process.argv.slice(2);
const outArg = args.indexOf("--out");
const out = resolve(outArg >= 0 ? args[outArg + 1] : join(root, "dist", "ocigen"));
const codeCache = !args.includes("--no-code-cache");
const minify = !args.includes("--no-minify");
const strip = !args.includes("--no-strip") && process.platform === "linux";
const FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
const t0 = Date.now();

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 20 || (major === 20 && minor < 0)) throw new Error(`build:binary needs Node >= 20 (this is ${process.version})`);

// WASM kernels must be compiled and embedded first (npm run build does it).
const wasmSrc = existsSync(join(root, "wasm")) ? readdirSync(join(root, "wasm")).filter((f) => f.endsWith(".ts") && !f.startsWith("_") && !f.endsWith(".d.ts")) : [];
const missing = wasmSrc.filter((f) => !existsSync(join(root, "src/wasm/generated", f)));
if (missing.length) {
  console.error(`build-binary: compiling WASM modules first (${missing.join(", ")} missing)`);
  execFileSync(process.execPath, [join(root, ".ci/build.mjs"), "--wasm-only"], { cwd: root, stdio: "inherit" });
}

// Intermediate files: dist/sea/, or beside --out (so tests building elsewhere never touch dist/).
const work = outArg >= 0 ? `${out}.sea-work` : join(root, "dist", "sea");
mkdirSync(work, { recursive: true });
mkdirSync(dirname(out), { recursive: true });
const cjs = join(work, "ocigen.cjs");
const programFile = join(work, "program.js");
const cacheFile = join(work, "program.cache");
const mainFile = join(work, "main.cjs");
const blob = join(work, "ocigen.blob");
const cfg = join(work, "sea-config.json");

// 1. CJS bundle. import.meta.* has no meaning in CJS: map it to the binary's path.
execFileSync(bin("esbuild"), [
  ...await cliBundleArgs(root), `--outfile=${cjs}`, "--define:__OCIGEN_SEA__=true",
  ...(minify ? ["--minify-whitespace", "--minify-syntax"] : []),
], { cwd: root, stdio: "inherit" });

// A dynamic import() left in the bundle crashes the binary when that path runs.
const dyn = readFileSync(cjs, "utf8").split("\n").flatMap((l, i) => (/(?<![\w$.])import\(/.test(l) ? [`${i + 1}: ${l.trim().slice(0, 120)}`] : []));
if (dyn.length) throw new Error(`build-binary: ${cjs} calls import() at run time, which a single executable cannot:\n${dyn.join("\n")}`);

// 2. SEA blob: the loader, the program and its code cache.
const program = wrapProgram(readFileSync(cjs, "utf8"));
writeFileSync(programFile, program);
rmSync(cacheFile, { force: true });
let cacheNote = "off";
if (codeCache) {
  try {
    const c = trainCodeCache({ program, programFile, argv1: out, out: cacheFile, withId: false });
    cacheNote = `${(c.bytes / 1024).toFixed(0)} KiB, trained on init, new, insert, config, unpack and generate`;
  } catch (e) {
    console.error(`build-binary: warning: no code cache (the binary starts slower): ${e.message}`);
    cacheNote = "failed";
  }
}
writeFileSync(mainFile, `// ocigen's single binary: compiles the program asset with its code cache asset (.ci/build-binary.mjs)
const { getAsset, getRawAsset } = require("node:sea");
const { Script } = require("node:vm");
const { pathToFileURL } = require("node:url");
let cachedData;
try {
  cachedData = new Uint8Array(getRawAsset("cache"));
} catch {
  // built without a code cache
}
const script = new Script(getAsset("program", "utf8"), { filename: __filename, cachedData });
script.runInThisContext()(require, __filename, __dirname, pathToFileURL(__filename).href);
`);
writeFileSync(cfg, JSON.stringify({
  main: mainFile, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false,
  assets: { program: programFile, ...(existsSync(cacheFile) ? { cache: cacheFile } : {}) },
}, null, 2) + "\n");
execFileSync(process.execPath, ["--experimental-sea-config", cfg], { cwd: root, stdio: "pipe" });

// 3. node binary + blob.
const tmp = `${out}.tmp-${process.pid}`;
rmSync(tmp, { force: true });
copyFileSync(process.execPath, tmp);
chmodSync(tmp, 0o755);
if (strip) {
  try {
    execFileSync("strip", ["--strip-all", tmp], { stdio: "pipe" });
  } catch (e) {
    console.error(`build-binary: strip failed (${String(e.stderr ?? e.message).trim()}); keeping the symbols`);
    copyFileSync(process.execPath, tmp);
  }
}
const pj = [tmp, "NODE_SEA_BLOB", blob, "--sentinel-fuse", FUSE];
if (process.platform === "darwin") {
  execFileSync("codesign", ["--remove-signature", tmp], { stdio: "inherit" });
  pj.push("--macho-segment-name", "NODE_SEA");
}
try {
  // postject (LIEF) prints harmless "Can't find string offset" warnings on Linux; show output only on failure.
  execFileSync(bin("postject"), pj, { cwd: root, stdio: "pipe" });
} catch (e) {
  process.stderr.write(String(e.stdout ?? "") + String(e.stderr ?? ""));
  rmSync(tmp, { force: true });
  throw new Error("build-binary: postject failed");
}
if (process.platform === "darwin") execFileSync("codesign", ["--sign", "-", tmp], { stdio: "inherit" });

// 4. smoke test, then publish atomically.
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const v = execFileSync(tmp, ["--version"], { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } }).trim();
if (v !== pkg.version) {
  rmSync(tmp, { force: true });
  throw new Error(`build-binary: ${tmp} --version printed ${JSON.stringify(v)}, expected ${pkg.version}`);
}
renameSync(tmp, out);
const mb = (f) => (statSync(f).size / 1e6).toFixed(1);
console.error(`build-binary: wrote ${out}: ${mb(out)} MB (script ${mb(cjs)} MB, blob ${mb(blob)} MB; ocigen ${v}, node ${process.version}, code cache ${cacheNote}, ${strip ? "stripped" : "not stripped"}) in ${Date.now() - t0} ms`);
