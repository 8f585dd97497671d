// Architecture rules of src/, checked on the source text:
// - no import cycles: the relative imports of every src/**/*.ts (static
//   `import ... from`, `export ... from`, side-effect `import "..."`, type-only
//   imports, and dynamic `import("...")`) form a graph without cycles; a
//   failure names the files of one cycle in order. Dynamic and type-only
//   imports count: a cycle through them still means two files that cannot be
//   read or changed one without the other;
// - no folder-level cycles either: with each folder directly under src/ as
//   one node (and each file directly in src/ as its own), no folder imports
//   a folder that imports it back, directly or through others; a failure
//   names the folders of one cycle and one import that makes each step;
// - commander (the command-line parser) is imported only under src/cli/:
//   engines get their settings as arguments, never parse a command line;
// - no file under src/ is longer than 500 lines unless a comment line in its
//   first 40 lines says why, starting with "Over 500 lines:" and a reason
//   (a long file is one concern that does not split, not an accident).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

const SRC = path.join(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), "..", "src");

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

/** Comments removed, so an import written in a JSDoc example does not count. */
function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

/** Module specifiers a file imports: static, re-exports, side-effect and dynamic. */
function importSpecifiers(text: string): string[] {
  const code = stripComments(text);
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^"'`;]*?\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
    /^\s*import\s*["']([^"']+)["']/gm,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]);
  return out;
}

/** The relative-import graph of src/: file -> files it imports (paths relative to src/). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const deps = importSpecifiers(fs.readFileSync(file, "utf8"))
      .filter((s) => s.startsWith("./") || s.startsWith("../"))
      .map((s) => path.relative(SRC, path.resolve(path.dirname(file), s)));
    graph.set(path.relative(SRC, file), [...new Set(deps)].sort());
  }
  return graph;
}

/** One cycle of the graph as [a, b, ..., a], or undefined. */
function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    state.set(n, "open");
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      if (state.get(d) === "open") return [...stack.slice(stack.indexOf(d)), d];
      if (state.get(d) === undefined && graph.has(d)) {
        const c = visit(d);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, "done");
    return undefined;
  };
  for (const n of graph.keys()) {
    if (state.get(n) === undefined) {
      const c = visit(n);
      if (c) return c;
    }
  }
  return undefined;
}

test("the import parser sees static, re-export, type-only, side-effect and dynamic imports, not comments", () => {
  const text = [
    `import { a } from "./a.ts";`,
    `import type { B } from "../b.ts";`,
    `export { c } from "./c.ts";`,
    `export * from "./d.ts";`,
    `import "./e.ts";`,
    `const f = await import("./f.ts");`,
    `import {`,
    `  g,`,
    `} from "./g.ts";`,
    `// import { x } from "./commented.ts";`,
    `/** @example import { y } from "./example.ts"; */`,
  ].join("\n");
  assert.deepEqual(importSpecifiers(text).sort(), ["../b.ts", "./a.ts", "./c.ts", "./d.ts", "./e.ts", "./f.ts", "./g.ts"]);
});

test("the cycle finder reports a cycle through three files and none in a tree", () => {
  const cyclic = new Map([["a.ts", ["b.ts"]], ["b.ts", ["c.ts"]], ["c.ts", ["a.ts"]], ["d.ts", ["a.ts"]]]);
  assert.deepEqual(findCycle(cyclic), ["a.ts", "b.ts", "c.ts", "a.ts"]);
  const tree = new Map([["a.ts", ["b.ts", "c.ts"]], ["b.ts", ["c.ts"]], ["c.ts", []]]);
  assert.equal(findCycle(tree), undefined);
});

test("src/ has no import cycles", () => {
  const graph = importGraph();
  assert.ok(graph.size > 50, `expected the source tree under ${SRC}, found ${graph.size} files`);
  const edges = [...graph.values()].reduce((n, d) => n + d.length, 0);
  assert.ok(edges > 100, `expected the import graph to have edges, found ${edges}`);
  const cycle = findCycle(graph);
  assert.equal(cycle, undefined, `import cycle: ${cycle?.join(" -> ")}`);
});

/** The folder (or top-level file) of a path relative to src/. */
function unitOf(rel: string): string {
  return rel.split(path.sep)[0];
}

/**
 * The folder-level graph of a file graph: folder -> folders it imports, each
 * edge with one file import that makes it (for messages). Imports that leave
 * src/ (package.json) are not part of it.
 */
function folderGraph(files: Map<string, string[]>): { graph: Map<string, string[]>; why: Map<string, string> } {
  const sets = new Map<string, Set<string>>();
  const why = new Map<string, string>();
  for (const [file, deps] of files) {
    const from = unitOf(file);
    if (!sets.has(from)) sets.set(from, new Set());
    for (const d of deps) {
      if (d.startsWith("..")) continue;
      const to = unitOf(d);
      if (to === from) continue;
      sets.get(from)!.add(to);
      if (!why.has(`${from} ${to}`)) why.set(`${from} ${to}`, `src/${file} imports src/${d}`);
    }
  }
  const graph = new Map<string, string[]>();
  for (const [k, v] of sets) graph.set(k, [...v].sort());
  return { graph, why };
}

test("the folder graph joins files by their folder and finds a loop between two folders", () => {
  const files = new Map([
    [path.join("a", "x.ts"), [path.join("b", "y.ts"), path.join("a", "z.ts")]],
    [path.join("a", "z.ts"), []],
    [path.join("b", "y.ts"), ["errors.ts"]],
    [path.join("b", "w.ts"), [path.join("a", "z.ts")]],
    ["errors.ts", [path.join("..", "package.json")]],
  ]);
  const { graph, why } = folderGraph(files);
  assert.deepEqual(graph.get("a"), ["b"]);
  assert.deepEqual(graph.get("b"), ["a", "errors.ts"]);
  assert.deepEqual(graph.get("errors.ts"), []);
  assert.deepEqual(findCycle(graph), ["a", "b", "a"]);
  assert.equal(why.get("b a"), `src/${path.join("b", "w.ts")} imports src/${path.join("a", "z.ts")}`);
  files.delete(path.join("b", "w.ts"));
  assert.equal(findCycle(folderGraph(files).graph), undefined);
});

test("src/ has no folder-level import cycles", () => {
  const { graph, why } = folderGraph(importGraph());
  assert.ok(graph.size > 15, `expected the folders of ${SRC}, found ${graph.size}`);
  const cycle = findCycle(graph);
  const steps = cycle?.slice(1).map((to, i) => why.get(`${cycle[i]} ${to}`)).join("; ");
  assert.equal(cycle, undefined, `folder import cycle: ${cycle?.join(" -> ")} (${steps})`);
});

/** Most lines a file under src/ may have without saying why at its top. */
const MAX_LINES = 500;
const LONG_REASON = /^[ \t]*(?:\/\/|\*|\/\*\*?)[ \t]*Over 500 lines:[ \t]*\S/m;

/** Files of `files` (path -> text) over MAX_LINES lines with no "Over 500 lines:" reason in their first 40 lines. */
function longWithoutReason(files: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [file, text] of files) {
    const lines = text.split("\n");
    const count = text.endsWith("\n") ? lines.length - 1 : lines.length;
    if (count <= MAX_LINES) continue;
    if (!LONG_REASON.test(lines.slice(0, 40).join("\n"))) out.push(`${file} (${count} lines)`);
  }
  return out;
}

test("the long-file rule counts lines and accepts only a reason at the top", () => {
  const long = (head: string, n: number) => head + "x\n".repeat(n);
  const files = new Map([
    ["short.ts", long("", 500)],
    ["long.ts", long("", 501)],
    ["reason.ts", long("/**\n * Over 500 lines: one state machine that does not split.\n */\n", 600)],
    ["empty-reason.ts", long("// Over 500 lines:\n", 600)],
    ["late-reason.ts", long("", 100) + "// Over 500 lines: too late\n" + "x\n".repeat(500)],
  ]);
  assert.deepEqual(longWithoutReason(files), ["long.ts (501 lines)", "empty-reason.ts (601 lines)", "late-reason.ts (601 lines)"]);
});

test(`no file under src/ is over ${MAX_LINES} lines without a reason at its top`, () => {
  const files = new Map<string, string>();
  for (const file of sourceFiles(SRC)) {
    // generated by the build (the embedded WebAssembly), never edited
    if (file.includes(`${path.sep}generated${path.sep}`)) continue;
    files.set(`src/${path.relative(SRC, file)}`, fs.readFileSync(file, "utf8"));
  }
  assert.ok(files.size > 50, `expected the source tree under ${SRC}, found ${files.size} files`);
  const bad = longWithoutReason(files);
  assert.deepEqual(bad, [], `over ${MAX_LINES} lines with no "Over ${MAX_LINES} lines: <reason>" comment in the first 40 lines: ${bad.join(", ")}`);
});

test("commander is imported only under src/cli/", () => {
  const users: string[] = [];
  for (const file of sourceFiles(SRC)) {
    if (importSpecifiers(fs.readFileSync(file, "utf8")).includes("commander")) users.push(path.relative(SRC, file));
  }
  assert.ok(users.some((f) => f.startsWith(`cli${path.sep}`)), "expected src/cli/ to import commander");
  const outside = users.filter((f) => !f.startsWith(`cli${path.sep}`));
  assert.deepEqual(outside, [], `commander imported outside src/cli/: ${outside.map((f) => `src/${f}`).join(", ")}`);
});
