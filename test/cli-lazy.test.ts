// The start-up-fast CLI path (src/cli/program.ts): the program built for a
// command line registers only the verb's group, and what it registers for
// that verb is exactly what the whole program has (same help text); every
// top-level verb and every `raw` subverb is known to the lazy table (else it
// would silently take the slow path).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Command } from "commander";
import { makeProgram } from "../src/cli/main.ts";
import { programFor, verbOf } from "../src/cli/program.ts";

const width = (c: Command) => c.configureOutput({ getOutHelpWidth: () => 80, getErrHelpWidth: () => 80 });

describe("lazy CLI", () => {
  test("verbOf skips the global options", () => {
    assert.equal(verbOf(["generate", "/run/x"]), "generate");
    assert.equal(verbOf(["--log", "debug", "-q", "--verbose", "ls"]), "ls");
    assert.equal(verbOf(["--log=info", "extract", "--name", "x"]), "extract");
    assert.equal(verbOf(["--help"]), undefined);
    assert.equal(verbOf(["-v"]), undefined);
    assert.equal(verbOf([]), undefined);
    assert.equal(verbOf(["--log"]), undefined);
  });

  test("each top-level verb gets its group only, with the same command as the whole program", async () => {
    const full = makeProgram();
    const verbs = full.commands.filter((c) => c.name() !== "raw" && c.name() !== "help");
    assert.ok(verbs.length > 10);
    for (const c of verbs) {
      for (const name of [c.name(), ...c.aliases()]) {
        const p = await programFor(["node", "ocigen", "--log", "warn", name, "--x"]);
        assert.ok(p.commands.length < full.commands.length, `${name}: not in the lazy verb table (whole program loaded)`);
        const sub = p.commands.find((s) => s.name() === c.name());
        assert.ok(sub, `${name}: missing from its group`);
        assert.equal(width(sub).helpInformation(), width(c).helpInformation(), `${name}: help differs`);
      }
    }
  });

  test("each raw subverb (umoci's raw unpack, runtime-config, add-layer) gets its group only, with the same command", async () => {
    const full = makeProgram();
    const fullRaw = full.commands.find((c) => c.name() === "raw")!;
    assert.ok(fullRaw.commands.length >= 3);
    for (const c of fullRaw.commands) {
      for (const name of [c.name(), ...c.aliases()]) {
        for (const pre of [["raw"], ["--log", "warn", "raw", "-q"]]) {
          const p = await programFor(["node", "ocigen", ...pre, name, "--x"]);
          assert.ok(p.commands.length < full.commands.length, `raw ${name}: not in the lazy raw table (whole program loaded)`);
          const sub = p.commands.find((s) => s.name() === "raw")?.commands.find((s) => s.name() === c.name());
          assert.ok(sub, `raw ${name}: missing from its group`);
          assert.equal(width(sub).helpInformation(), width(c).helpInformation(), `raw ${name}: help differs`);
        }
      }
    }
  });

  test("anything else gets the whole program", async () => {
    const full = makeProgram();
    const n = full.commands.length;
    for (const args of [["--help"], ["help", "generate"], ["raw"], ["raw", "--help"], ["raw", "no-such-verb"], ["no-such-verb"], []]) {
      const p = await programFor(["node", "ocigen", ...args]);
      assert.equal(p.commands.length, n, args.join(" "));
      // Same verbs in the same order, so `ocigen --help` reads the same either way.
      assert.equal(width(p).helpInformation(), width(full).helpInformation(), `${args.join(" ")}: help differs`);
    }
  });
});
