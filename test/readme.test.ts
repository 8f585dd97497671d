import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { README, renderHelpMarkdown, withHelpBlock } from "./readme-help.ts";

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
