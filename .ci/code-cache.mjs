// The Node bundle's start-up: dist/ocigen.mjs is a small ES module loader
// holding the whole CLI as one CommonJS program (text), which it compiles
// with node:vm and a V8 code cache made at build time, beside it as
// dist/ocigen.mjs.cache. Why: Node 20 has no module.enableCompileCache,
// and compiling the 1.5 MB ES module bundle at every start cost ~30-40 ms
// (plus every `node:` builtin any module imports, loaded up front because
// ES imports are hoisted; the CommonJS program loads each builtin when the
// module using it first runs).
//
// The cache:
//  - is made by running the program on a real workload (a small image is
//    made, configured, unpacked, and generated into units: .ci/build.mjs
//    calls trainCodeCache), each step in a child process that compiles the
//    very same text with the previous step's cache and writes
//    `script.createCachedData()` on exit: the functions every step ran are
//    in it (compiled lazily otherwise). Chained, not only the last step's:
//    a cache made by the unpack alone left `generate` (the boot path of the
//    single binary and of `ocigen generate`) to compile its functions at
//    every run;
//  - starts with the sha256 of the program text (64 hex characters): the
//    loader uses a cache only for its own text (V8 checks only the length
//    of the source, the V8 version and its flags; a cache V8 rejects, from
//    another Node or other flags, just means compiling as usual);
//  - is only read at run time, never written: it is code, and it lives
//    where the program does, with the same owner.
// Without a cache (missing, another build's, rejected) the program runs the
// same, compiled as usual.
//
// The single binary (.ci/build-binary.mjs) does the same with SEA assets:
// its main script compiles the program asset with the cache asset, trained
// here on the binary's own program text.
//
// Usage (internal): node .ci/code-cache.mjs --run SOURCE OUT ARGV1 [FROM] -- ARGS...
//   compiles SOURCE's text as a loader would (with the cache FROM, a raw V8
//   cache without id, when given: exit 3 if V8 rejects it), runs it with
//   ARGS (argv[1] = ARGV1), and writes the cache to OUT on exit;
// node .ci/code-cache.mjs --check LOADER: prints "accepted" when LOADER's
//   cache is used by this Node, else why not.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Script } from "node:vm";
import { workerDefines } from "./worker-bundles.mjs";

const SELF = fileURLToPath(import.meta.url);

/**
 * esbuild's CommonJS output turns each ES import of a builtin (`import fs
 * from "node:fs"`) into `__toESM(require("node:fs"), 1)`: a fresh object
 * with a getter per export of the builtin, made by every importing module
 * (about 150 at start, for 6 builtins; its copying loop was hot enough for
 * V8 to optimise). The program makes one per builtin instead: they are
 * read-only views of the same module object. Measured: `--version` 149 ->
 * 143 M instructions, the 2 MB unpack 975 -> 939 M, generate 785 -> 745 M.
 */
const BUILTIN_ESM = /__toESM\(require\("(node:[\w/]+)"\),1\)/g;

/**
 * The esbuild arguments of the CLI program, shared by the Node bundle
 * (.ci/build.mjs) and the single binary (.ci/build-binary.mjs): one CommonJS
 * bundle of src/main.ts with the worker programs embedded and `import.meta.*`
 * mapped to the loader's values. `--main-fields`: a package without an
 * "exports" map is taken from its ES module build, which esbuild can
 * tree-shake (hash-wasm: 234 KB of UMD with every algorithm embedded, against
 * the 22 KB of the one the bench uses); packages with an "exports" map are
 * resolved through it either way.
 * @param {string} root the repository root
 * @returns {Promise<string[]>}
 * @example
 * execFileSync(esbuild, [...await cliBundleArgs(root), "--minify-whitespace"]);
 */
export async function cliBundleArgs(root) {
  return [
    "src/main.ts", "--bundle", "--platform=node", "--format=cjs", "--target=node20", "--main-fields=module,main",
    "--log-level=warning", ...await workerDefines(root), "--define:import.meta.url=__ocigen_meta_url",
    "--define:import.meta.filename=__filename", "--define:import.meta.dirname=__dirname",
  ];
}

/**
 * The program text the loader compiles: the CommonJS bundle wrapped as a
 * function of the CommonJS variables plus the loader's URL (what
 * `import.meta.url` means in the sources), in strict mode as the sources
 * (ES modules) are, with one ES interop object per builtin (see
 * `BUILTIN_ESM`). Throws when the bundle is not pure ASCII (V8 would keep
 * all of it as a two-byte string).
 * @param {string} cjs esbuild's CommonJS output
 * @returns {string}
 * @example
 * wrapProgram("console.log(1)"); // '(function (require, __filename, __dirname, __ocigen_meta_url) {"use strict";\nconsole.log(1)\n})'
 */
export function wrapProgram(cjs) {
  let body = cjs.startsWith("#!") ? "//" + cjs.slice(2) : cjs;
  let shared = 0;
  body = body.replace(BUILTIN_ESM, (_, name) => (shared++, `__ocigenBuiltin(${JSON.stringify(name)})`));
  if (shared > 0) body = `var __ocigenBuiltin=(c=>n=>c[n]??=__toESM(require(n),1))(Object.create(null));${body}`;
  const bad = /[^\x00-\x7f]/.exec(body);
  if (bad) {
    // esbuild escapes non-ASCII in strings, not in every regular expression
    // literal; one such character makes V8 hold the whole program as a
    // two-byte string: 8% more instructions at every start, measured
    const line = body.slice(0, bad.index).split("\n").length;
    const at = body.slice(Math.max(0, bad.index - 40), bad.index + 20).replace(/\s+/g, " ");
    throw new Error(`the program must be ASCII: U+${bad[0].codePointAt(0).toString(16).padStart(4, "0")} on line ${line}: ...${at}... (escape it in the source, e.g. \\u2026)`);
  }
  return `(function (require, __filename, __dirname, __ocigen_meta_url) {"use strict";\n${body}\n})`;
}

/**
 * The id a cache must start with to be used for `program`.
 * @param {string} program the wrapped program text
 * @returns {string} 64 hex characters
 * @example
 * programId(wrapProgram(cjs)).length; // 64
 */
export function programId(program) {
  return createHash("sha256").update(program).digest("hex");
}

/**
 * The text of dist/ocigen.mjs, the loader of `program` (a wrapped program,
 * written beside it as ocigen.mjs.program: a 1.5 MB string literal in the
 * loader itself would cost ~15 ms of ES module compile at every start).
 * @param {string} program
 * @returns {string}
 * @example
 * writeFileSync("dist/ocigen.mjs", loaderText(program), { mode: 0o755 });
 */
export function loaderText(program) {
  return `#!/usr/bin/env node
// ocigen's command line, generated by .ci/build.mjs (see .ci/code-cache.mjs):
// the program is ocigen.mjs.program beside this file (CommonJS),
// compiled with the V8 code cache the build made (ocigen.mjs.cache) when that
// cache starts with the program's id below; otherwise compiled as usual.
// One ES import: each builtin imported as an ES module costs a facade
// (~3 M instructions each at start); require costs a fraction of that.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { readFileSync } = require("node:fs");
const { dirname } = require("node:path");
const process = require("node:process");
const { fileURLToPath } = require("node:url");
const { Script } = require("node:vm");
const ID = ${JSON.stringify(programId(program))};
const file = fileURLToPath(import.meta.url);
let program;
try {
  program = readFileSync(file + ".program", "utf8");
} catch (e) {
  process.stderr.write(\`ocigen: \${file}.program: cannot read ocigen's program beside its loader (\${e.code ?? e.message}): rebuild or reinstall\\n\`);
  process.exit(1);
}
let cachedData;
try {
  const c = readFileSync(file + ".cache");
  if (c.length > ID.length && c.toString("latin1", 0, ID.length) === ID) cachedData = c.subarray(ID.length);
} catch {
  // no cache: compile as usual
}
const script = new Script(program, { filename: file + ".program", cachedData });
script.runInThisContext()(require, file, dirname(file), import.meta.url);
`;
}

/**
 * Trains a V8 code cache for `program` (a wrapped program, saved as
 * `programFile`) on a small workload run by the program itself: an image
 * is made (init, new, insert of a few files), given a command (config),
 * unpacked into a bundle, and generated into units (generate, the boot
 * path). Each step runs in a child that compiles the program exactly as a
 * loader does (argv[1] = `argv1`), with the cache the step before wrote, so
 * the cache written to `out` holds what every step compiled; it is prefixed
 * with `programId(program)` when `withId`. Throws when a step fails; the
 * caller decides whether a build without cache is acceptable. `steps`: the
 * size of the cache after each step (it only grows: see the header).
 * @param {{ program: string, programFile: string, argv1: string, out: string, withId?: boolean }} o
 * @returns {{ bytes: number, ms: number, steps: { step: string, bytes: number }[] }}
 * @example
 * trainCodeCache({ program, programFile: "dist/ocigen.mjs.program", argv1: "dist/ocigen.mjs", out: "dist/ocigen.mjs.cache" });
 */
export function trainCodeCache({ program, programFile, argv1, out, withId = true }) {
  const t0 = Date.now();
  const tmp = mkdtempSync(join(tmpdir(), "ocigen-code-cache-"));
  try {
    const tree = join(tmp, "tree");
    mkdirSync(join(tree, "etc"), { recursive: true });
    mkdirSync(join(tree, "usr/bin"), { recursive: true });
    writeFileSync(join(tree, "etc/os-release"), "ID=ocigen-cache\n");
    for (let i = 0; i < 8; i++) writeFileSync(join(tree, `usr/bin/tool${i}`), Buffer.alloc(4096 * (i + 1), i + 1), { mode: 0o755 });
    const layouts = join(tmp, "layouts");
    const layout = join(layouts, "cache");
    const conf = join(tmp, "generator.conf");
    writeFileSync(conf, `[system]\nimagelayoutdir = ${layouts}\nextractsdir = ${join(tmp, "extracts")}\n`);
    const steps = [];
    let from;
    const run = (argv) => {
      const cache = join(tmp, `cache.${steps.length}`);
      const r = spawnSync(process.execPath, [SELF, "--run", programFile, cache, argv1, ...(from ? [from] : []), "--", ...argv], {
        encoding: "utf8",
        env: { ...process.env, NODE_OPTIONS: "", OCIGEN_KMSG: "0" },
      });
      if (r.status !== 0) throw new Error(`code cache: \`ocigen ${argv.join(" ")}\` failed: ${(r.stderr || r.error?.message || "").trim()}`);
      steps.push({ step: argv[0], bytes: statSync(cache).size });
      from = cache;
    };
    run(["init", "--layout", layout]);
    run(["new", "--image", `${layout}:cache`]);
    run(["insert", "--image", `${layout}:cache`, tree, "/"]);
    run(["config", "--image", `${layout}:cache`, "--config.entrypoint", "/usr/bin/tool0", "--config.cmd", "--serve", "--config.user", "1000:1000"]);
    run(["unpack", "--image", `${layout}:cache`, join(tmp, "bundle")]);
    run(["generate", "--config", conf, join(tmp, "units")]);
    const data = readFileSync(from);
    writeFileSync(out, withId ? Buffer.concat([Buffer.from(programId(program), "latin1"), data]) : data);
    return { bytes: data.length, ms: Date.now() - t0, steps };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--run") {
  // child of trainCodeCache: the loader's compile, plus the cache written on exit
  const dd = process.argv.indexOf("--");
  const [src, out, loader, from] = process.argv.slice(3, dd);
  const program = readFileSync(src, "utf8");
  const script = new Script(program, { filename: src, cachedData: from ? readFileSync(from) : undefined });
  if (from && script.cachedDataRejected) {
    process.stderr.write(`code cache: V8 rejected the previous step's cache ${from}\n`);
    process.exit(3);
  }
  process.argv = [process.argv[0], loader, ...process.argv.slice(dd + 1)];
  process.on("exit", () => writeFileSync(out, script.createCachedData()));
  script.runInThisContext()(createRequire(loader), loader, dirname(loader), pathToFileURL(loader).href);
} else if (process.argv[2] === "--check") {
  const loader = process.argv[3];
  const program = readFileSync(loader + ".program", "utf8");
  let cache;
  try {
    cache = readFileSync(loader + ".cache");
  } catch {
    console.log("missing");
    process.exit(0);
  }
  const id = programId(program);
  if (cache.toString("latin1", 0, id.length) !== id) console.log("other program");
  else console.log(new Script(program, { filename: loader + ".program", cachedData: cache.subarray(id.length) }).cachedDataRejected ? "rejected" : "accepted");
}
