import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { README, renderHelpMarkdown, withHelpBlock } from "./readme-help.ts";
import { VERSION } from "../src/version.ts";

test("the README's verb reference is exactly the CLI's --help (regenerate: node --import tsx test/readme-help.ts --write)", () => {
  const readme = fs.readFileSync(README, "utf8");
  const md = renderHelpMarkdown();
  for (const verb of ["init", "unpack", "repack", "generate", "extract", "build", "raw unpack", "raw add-layer", "bench"]) {
    assert.match(md, new RegExp("`ocigen " + verb + "`"), `help of ${verb} rendered`);
  }
  assert.equal(readme, withHelpBlock(readme, md));
});

test("the README starts with the two set-up commands", () => {
  const lines = fs.readFileSync(README, "utf8").split("\n");
  const cmds = lines.filter((l) => l.startsWith("npm ci && "));
  assert.ok(cmds.length >= 2);
  assert.ok(lines.indexOf(cmds[0]) < 6, "first command near the top");
  assert.match(cmds[0], /npm ci && npm run example/);
  assert.match(cmds[1], /npm ci && npm test/);
  const ci = fs.readFileSync(new URL("../.ci/run", import.meta.url), "utf8");
  assert.match(ci, /^npm ci && npm test$/m, ".ci/run runs exactly the README's test command");
});

test("the README's Deno commands run as written from a checkout, with deno not on PATH", () => {
  const readme = fs.readFileSync(README, "utf8");
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  const denoLines = blocks.flatMap((b) => b.split("\n")).filter((l) => /(^|\s|\/)deno (run|task)\b/.test(l));
  assert.ok(denoLines.length >= 2, "the README shows `deno run` and `deno task`");
  for (const l of denoLines) assert.doesNotMatch(l, /^deno /, `a bare \`deno\` is not on PATH after npm ci: ${l}`);
  const root = fileURLToPath(new URL("..", import.meta.url));
  // PATH as on a fresh machine: system directories only (no node_modules/.bin, no ~/.deno/bin)
  const env = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: process.env.HOME ?? "/root", NO_COLOR: "1" };
  assert.notEqual(spawnSync("sh", ["-c", "command -v deno"], { env }).status, 0, "deno is not on the clean PATH");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-readme-deno-"));
  try {
    const run = denoLines.find((l) => / run .*src\/main\.ts --version/.test(l));
    assert.ok(run, "a `deno run ... --version` line");
    const r = spawnSync("sh", ["-c", run], { cwd: root, env, encoding: "utf8", timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${VERSION}\n`);
    const task = denoLines.find((l) => / task ocigen ls --layout DIR/.test(l));
    assert.ok(task, "a `deno task ocigen ls --layout DIR` line");
    spawnSync("sh", ["-c", run.replace("--version", `init --layout ${dir}/l`)], { cwd: root, env, timeout: 120_000 });
    const t = spawnSync("sh", ["-c", task.replace("DIR", `${dir}/l`)], { cwd: root, env, encoding: "utf8", timeout: 120_000 });
    assert.equal(t.status, 0, t.stderr);
    assert.equal(t.stdout, "", "an empty layout has no tags");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
