// Preloaded with `node --import ./test/env-guard.mjs`: makes any read of the
// environment by an engine fail. Engines (every module under src/ except
// src/settings.ts, src/cli/** and the program entry src/main.ts) must take
// their settings as options; only the settings module and the command line
// read `process.env`.
//
// How: `process.env` becomes an accessor whose getter, and a Proxy around
// the real environment whose traps (get, has, keys, set, delete), look at
// the stack of the access. The frame that touches the environment decides:
// - a file under src/ that is an engine: a violation;
// - src/settings.ts: a violation if the code that called into it (the next
//   frame outside settings.ts) is an engine (reading the environment
//   through the settings module is reading it all the same);
// - anything else (node internals such as child_process filling a child's
//   environment or os.tmpdir(), node_modules, test/, fixtures/, the command
//   line): allowed.
// A violation throws an Error naming the file, and is also recorded and
// reported on stderr when the process exits (exit code 1), so an engine
// that swallows the error in a try/catch is caught all the same.
// ENV_GUARD_PENDING: comma-separated src-relative paths still allowed to
// read the environment (work in progress elsewhere), reported but not fatal.
// ENV_GUARD_SRC: the tree treated as src/ (default this repository's src/).
import process from "node:process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// ENV_GUARD_SRC: another tree to treat as src/ (the guard's own test)
const SRC = process.env.ENV_GUARD_SRC ? path.resolve(process.env.ENV_GUARD_SRC) : path.join(ROOT, "src");
const SELF = fileURLToPath(import.meta.url);

/**
 * What a source location is for the guard: "engine", "settings", "edge"
 * (src/cli/**, src/main.ts) or "other" (not under src/).
 */
export function classify(file) {
  if (!path.isAbsolute(file)) return "other";
  const rel = path.relative(SRC, file);
  if (rel.startsWith("..") || path.isAbsolute(rel)) return "other";
  if (rel === "settings.ts") return "settings";
  if (rel === "main.ts" || rel.startsWith(`cli${path.sep}`)) return "edge";
  return "engine";
}

/** The files of a V8 stack trace's frames, innermost first. */
export function stackFiles(stack) {
  const out = [];
  for (const line of String(stack).split("\n").slice(1)) {
    const m = /\(?((?:file:\/\/|\/)[^()]*?)(?::\d+){1,2}\)?\s*$/.exec(line.trim());
    if (!m) {
      out.push("<internal>");
      continue;
    }
    let f = m[1];
    if (f.startsWith("file://")) {
      try {
        f = fileURLToPath(f);
      } catch { /* keep */ }
    }
    out.push(f.replace(/\?.*$/, ""));
  }
  return out;
}

/**
 * The engine file at fault for an access whose stack has `files` (innermost
 * first, the guard's own frames included or not), or undefined.
 */
export function offender(files) {
  const fs = files.filter((f) => f !== SELF);
  if (fs.length === 0) return undefined;
  const first = classify(fs[0]);
  if (first === "engine") return fs[0];
  if (first === "settings") {
    const caller = fs.find((f) => classify(f) !== "settings");
    if (caller !== undefined && classify(caller) === "engine") return caller;
  }
  return undefined;
}

const pending = new Set((process.env.ENV_GUARD_PENDING ?? "").split(",").filter(Boolean));
/** Offending file (repo-relative) -> what it read, first few. */
const seen = new Map();

function check(what) {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 64;
  const stack = new Error().stack;
  Error.stackTraceLimit = limit;
  const file = offender(stackFiles(stack));
  if (file === undefined) return;
  const rel = path.relative(path.dirname(SRC), file);
  const reads = seen.get(rel) ?? new Set();
  if (reads.size < 3) reads.add(what);
  seen.set(rel, reads);
  if (!pending.has(path.relative(SRC, file))) {
    throw new Error(`env-guard: ${rel} reads the environment (${what}); engines take their settings as options (src/settings.ts)`);
  }
}

export function install() {
  const real = process.env;
  const name = (k) => (typeof k === "string" ? `process.env.${k}` : "process.env");
  const guarded = new Proxy(real, {
    get(t, k) {
      if (typeof k === "string") check(name(k));
      return Reflect.get(t, k);
    },
    has(t, k) {
      check(`${String(k)} in process.env`);
      return Reflect.has(t, k);
    },
    ownKeys(t) {
      check("keys of process.env");
      return Reflect.ownKeys(t);
    },
    getOwnPropertyDescriptor(t, k) {
      check(name(k));
      return Reflect.getOwnPropertyDescriptor(t, k);
    },
    set(t, k, v) {
      check(`${name(k)} =`);
      t[k] = v;
      return true;
    },
    deleteProperty(t, k) {
      check(`delete ${name(k)}`);
      return Reflect.deleteProperty(t, k);
    },
  });
  Object.defineProperty(process, "env", {
    configurable: true,
    enumerable: true,
    get() {
      check("process.env");
      return guarded;
    },
    set(v) {
      check("process.env =");
      for (const k of Object.keys(real)) delete real[k];
      Object.assign(real, v);
    },
  });
  process.on("exit", () => {
    const list = (files) => files.map((f) => `${f} (${[...seen.get(f)].join(", ")})`).join("; ");
    const isPending = (f) => pending.has(path.relative(path.basename(SRC), f));
    const allowed = [...seen.keys()].filter(isPending);
    const bad = [...seen.keys()].filter((f) => !isPending(f));
    if (allowed.length) process.stderr.write(`env-guard: still allowed (pending): ${list(allowed)}\n`);
    if (bad.length) {
      process.stderr.write(`env-guard: engines read the environment: ${list(bad)}\n`);
      process.exitCode = 1;
    }
  });
}

if (process.env.ENV_GUARD_OFF !== "1") install();
