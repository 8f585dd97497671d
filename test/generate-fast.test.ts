// The generator's fast path (no commander): which command lines it takes
// (src/cli/generate-argv.ts), that it does exactly what the whole CLI does for
// them (same units, same output, same failures), and the generator's own
// entry (src/ocigen-generator.ts) from the sources.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { makeLayout, mkTemp, rmTemp } from "../fixtures/layout.ts";
import { generateCommandLine } from "../src/cli/generate-argv.ts";

const ROOT = join(fileURLToPath(new URL(".", import.meta.url)), "..");
const argv = (...a: string[]) => ["node", "ocigen", ...a];

describe("generate command lines the fast path takes", () => {
  test("one or three directories, with the generate and global options", () => {
    assert.deepEqual(generateCommandLine(argv("generate", "/run/n")), { normal: "/run/n", dryRun: false, verbose: false, quiet: false });
    assert.deepEqual(generateCommandLine(argv("generate", "/run/n", "/run/e", "/run/l")), {
      normal: "/run/n", early: "/run/e", late: "/run/l", dryRun: false, verbose: false, quiet: false,
    });
    assert.deepEqual(generateCommandLine(argv("--log", "info", "-q", "generate", "--dry-run", "--config=/c", "/o")), {
      normal: "/o", dryRun: true, config: "/c", log: "info", verbose: false, quiet: true,
    });
    // the option after the verb wins, the last of repeated ones wins
    assert.equal(generateCommandLine(argv("--log=info", "generate", "--log", "error", "/o"))?.log, "error");
    assert.equal(generateCommandLine(argv("generate", "--config", "/a", "--config", "/b", "/o"))?.config, "/b");
    assert.equal(generateCommandLine(argv("--verbose", "generate", "/o"))?.verbose, true);
  });

  test("everything else goes to the whole CLI", () => {
    for (
      const a of [
        [], ["generate"], ["generate", "--help"], ["generate", "-h", "/o"], ["generate", "/a", "/b"], ["generate", "/a", "/b", "/c", "/d"],
        ["generate", "--bogus", "/o"], ["generate", "--", "/o"], ["generate", "--config"], ["generate", "--config", "--dry-run", "/o"],
        ["generate", "--config=", "/o"], ["--log", "loud", "generate", "/o"], ["generate", "--log"], ["--log", "debug", "generate", "--verbose", "/o"],
        ["ls"], ["--version"], ["help", "generate"], ["-q"],
      ]
    ) {
      assert.equal(generateCommandLine(argv(...a)), undefined, a.join(" "));
    }
  });
});

describe("the fast path does what the whole CLI does", () => {
  // under Node from the sources, also when the suite runs under Deno (as the other CLI tests do)
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync("node", ["--import", "tsx", ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, OCIGEN_KMSG: "0", ...env } });

  test("same units, same dry-run output and failures as through commander; the generator entry too", () => {
    const tmp = mkTemp("ocigen-genfast-");
    try {
      const L = join(tmp, "layouts");
      makeLayout(join(L, "example.com", "app"), [{ tags: ["latest", "v1"], layers: [], config: { config: { Cmd: ["/bin/app", "a b"], Env: ["X=1"] } } as never }]);
      makeLayout(join(L, "base"), [{ tags: ["latest"], layers: [], config: { config: {} } as never }]); // no command: a problem, exit 1
      const conf = join(tmp, "c.conf");
      fs.writeFileSync(conf, `imagelayoutdir=${L}\nextractsdir=${join(tmp, "x")}\nocigen=/usr/local/bin/ocigen\n`);
      // `--` makes the fast path hand the line to commander, which reads it the same way
      const fast = run(["src/main.ts", "generate", "--dry-run", "--config", conf, join(tmp, "o")]);
      const slow = run(["src/main.ts", "generate", "--dry-run", "--config", conf, "--", join(tmp, "o")]);
      assert.equal(fast.status, 1, fast.stderr);
      assert.match(fast.stdout, /---.*com\.example\.app\.ref\.v1\.service---\n/);
      assert.equal(fast.stdout, slow.stdout);
      assert.equal(fast.stderr, slow.stderr);
      assert.equal(slow.status, fast.status);
      // written units: the same files through the generator's own entry (systemd's three directories)
      const viaEntry = run(["src/ocigen-generator.ts", "--config", conf, join(tmp, "e1"), join(tmp, "e2"), join(tmp, "e3")]);
      const viaCli = run(["src/main.ts", "generate", "--config", conf, "--", join(tmp, "c1"), join(tmp, "c2"), join(tmp, "c3")]);
      assert.equal(viaEntry.status, 1, viaEntry.stderr);
      assert.equal(viaCli.status, 1, viaCli.stderr);
      const names = fs.readdirSync(join(tmp, "e1")).sort();
      assert.deepEqual(names, fs.readdirSync(join(tmp, "c1")).sort());
      assert.ok(names.includes("com.example.app.ref.latest.service"), names.join(","));
      for (const n of names) assert.equal(fs.readFileSync(join(tmp, "e1", n), "utf8"), fs.readFileSync(join(tmp, "c1", n), "utf8"), n);
      // a missing config: the same one-line failure either way
      const badFast = run(["src/ocigen-generator.ts", "--config", join(tmp, "none.conf"), join(tmp, "o")]);
      const badSlow = run(["src/main.ts", "generate", "--config", join(tmp, "none.conf"), "--", join(tmp, "o")]);
      assert.equal(badFast.status, 1);
      assert.equal(badFast.stderr, badSlow.stderr);
      assert.equal(badFast.stderr.trim().split("\n").length, 1, badFast.stderr);
      // what the fast path does not take, the generator entry hands to the whole program
      const help = run(["src/ocigen-generator.ts", "--help"]);
      assert.equal(help.status, 0, help.stderr);
      assert.match(help.stdout, /^Usage: ocigen generate /);
    } finally {
      rmTemp(tmp);
    }
  });

  test("units name the whole program for extract, never the generator entry", () => {
    const tmp = mkTemp("ocigen-genfast-");
    try {
      const L = join(tmp, "layouts");
      makeLayout(join(L, "app"), [{ tags: ["latest"], layers: [], config: { config: { Cmd: ["/bin/app"] } } as never }]);
      const conf = join(tmp, "c.conf");
      fs.writeFileSync(conf, `imagelayoutdir=${L}\nextractsdir=${join(tmp, "x")}\n`);
      const r = run(["src/ocigen-generator.ts", "--config", conf, "--dry-run", join(tmp, "o")], { OCIGEN_SELF: "" });
      assert.equal(r.status, 0, r.stderr);
      const ex = r.stdout.split("\n").filter((l) => / extract /.test(l));
      assert.ok(ex.length > 0, r.stdout);
      for (const l of ex) {
        assert.match(l, /src\/main\.ts extract /, l);
        assert.doesNotMatch(l, /ocigen-generator/, l);
      }
    } finally {
      rmTemp(tmp);
    }
  });
});
