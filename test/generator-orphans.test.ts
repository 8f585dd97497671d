// What happens when a tag or layout goes away (src/generator/orphans.ts):
// running units whose file vanished are found and stopped (with a recorded
// service manager here; the boot suite does it on a real systemd), volumes
// of units no tag produces are reported, never removed by gc, and removed
// only by the explicit command.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { findOrphans, listVolumes, orphanVolumes, parseListUnits, removeVolumes, type ServiceManager, stopOrphans } from "../src/generator/orphans.ts";
import { gcExtracts } from "../src/generator/gc.ts";
import { OcigenError } from "../src/errors.ts";
import { generatorEnv } from "../fixtures/generator.ts";
import { makeLayout } from "../fixtures/layout.ts";

describe("orphaned services and volumes", () => {
  test("running units whose file is gone are stopped, services before companions", () => {
    const listed = parseListUnits([
      "● a.ref.old.service not-found active running a.ref.old.service",
      "ocigen-extract@a.ref.old.service not-found active exited ocigen-extract@a.ref.old.service",
      "a.ref.new.service loaded active running OCI image a:new",
      "b.ref.gone.service not-found inactive dead b.ref.gone.service",
    ].join("\n"));
    assert.deepEqual(findOrphans(listed), ["a.ref.old.service", "ocigen-extract@a.ref.old.service"]);
    const calls: string[][] = [];
    const manager: ServiceManager = { list: () => listed, stop: (u) => void calls.push(u) };
    const e = generatorEnv("ocigen-orphans-");
    try {
      const r = stopOrphans(e.cfg, { manager });
      assert.deepEqual(r.errors, []);
      assert.deepEqual(calls, [["a.ref.old.service"], ["ocigen-extract@a.ref.old.service"]]);
      calls.length = 0;
      assert.deepEqual(stopOrphans(e.cfg, { manager, dryRun: true }).stopped.length, 2);
      assert.deepEqual(calls, [], "dry run stops nothing");
      const failing: ServiceManager = { list: () => { throw new Error("systemctl list-units failed: no bus"); }, stop: () => {} };
      assert.deepEqual(stopOrphans(e.cfg, { manager: failing }).errors, ["systemctl list-units failed: no bus"]);
    } finally {
      fs.rmSync(e.tmp, { recursive: true, force: true });
    }
  });

  test("volumes of a removed tag survive gc, are reported, and go only with volume rm", async () => {
    const e = generatorEnv("ocigen-orphans-vol-");
    try {
      makeLayout(join(e.layouts, "app"), [{ tags: ["keep"], layers: [], config: { config: { Cmd: ["/bin/true"] } } as never }]);
      const vols = join(e.tmp, "volumes");
      for (const b of ["app.ref.keep", "app.ref.gone"]) {
        fs.mkdirSync(join(vols, b, "data"), { recursive: true });
        fs.writeFileSync(join(vols, b, "data", "f"), "precious");
      }
      const gc = await gcExtracts({ config: e.cfg });
      assert.ok(!gc.removed.some((p) => p.startsWith(vols)), "gc removes no volume");
      assert.equal(fs.readFileSync(join(vols, "app.ref.gone/data/f"), "utf8"), "precious");
      assert.deepEqual(await orphanVolumes(e.cfg), [join(vols, "app.ref.gone")]);
      assert.deepEqual(await listVolumes(e.cfg), [{ dir: join(vols, "app.ref.gone"), orphaned: true }, { dir: join(vols, "app.ref.keep"), orphaned: false }]);
      // a running service's volumes are refused
      fs.mkdirSync(join(e.tmp, "run", "app.ref.keep"), { recursive: true });
      assert.throws(() => removeVolumes(e.cfg, "app.ref.keep.service"), (err) => err instanceof OcigenError && err.code === "EVOLUME" && /is running/.test(err.message));
      assert.throws(() => removeVolumes(e.cfg, "nope.service"), /nope\.service has no volumes/);
      assert.throws(() => removeVolumes(e.cfg, "../x"), /Bad unit name/);
      assert.equal(removeVolumes(e.cfg, "app.ref.gone.service"), join(vols, "app.ref.gone"));
      assert.ok(!fs.existsSync(join(vols, "app.ref.gone")));
      assert.ok(fs.existsSync(join(vols, "app.ref.keep/data/f")));
    } finally {
      fs.rmSync(e.tmp, { recursive: true, force: true });
    }
  });
});
