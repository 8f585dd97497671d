// `ocigen status` (src/status/): what each generated unit runs, its state
// from a (fake) systemd, pins and updates, unused extracted trees with their
// size, orphaned volumes; the table, and JSON that validates against the
// README's schema (for `status` and `update`), from the engine and the CLI.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";
import { generatorEnv } from "../fixtures/generator.ts";
import { makeLayout, putImage, rmTemp, tarFiles, writeIndex } from "../fixtures/layout.ts";
import { gatherStatus } from "../src/status/status.ts";
import { statusTable } from "../src/status/table.ts";
import { statusJson, updateJson } from "../src/cli/json.ts";
import { recordEvent, writePin } from "../src/generator/update-state.ts";
import type { Runner } from "../src/update/systemd.ts";
import { storeRootfs } from "../src/store/paths.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const cli = isDeno ? [process.execPath, "run", "-A", join(root, "src/main.ts")] : [process.execPath, "--import", "tsx", join(root, "src/main.ts")];
const REF = "org.opencontainers.image.ref.name";

function schema(name: string): (doc: unknown) => void {
  const readme = fs.readFileSync(join(root, "README.md"), "utf8");
  const m = new RegExp(`<!-- json-schema:${name} -->\\n\`\`\`json\\n([\\s\\S]*?)\`\`\``).exec(readme);
  assert.ok(m, `README has a ${name} schema`);
  const AjvCtor = ((Ajv as unknown as { default?: typeof Ajv }).default ?? Ajv) as typeof Ajv;
  const ajv = new AjvCtor({ allErrors: true, strict: true });
  const validate = ajv.compile(JSON.parse(m[1]));
  return (doc) => assert.ok(validate(doc), `${name}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(doc).slice(0, 800)}`);
}

/** Layout `web` (tags v1 -> A, v2 -> B with a port), image C untagged; an old tree D in the store. */
function setup() {
  const e = generatorEnv("ocigen-status-");
  const dir = join(e.layouts, "web");
  const layer = (v: string) => [tarFiles([{ name: "etc/", dir: true }, { name: "etc/version", data: `${v}\n` }])];
  const fx = makeLayout(dir, [
    { tags: ["v1"], layers: layer("A"), config: { config: { Cmd: ["/bin/web"] } } },
    { tags: ["v2"], layers: layer("B"), config: { config: { Cmd: ["/bin/web"], ExposedPorts: { "80/tcp": {}, "443/tcp": {} } } } },
  ]);
  const C = putImage(dir, { layers: layer("C"), config: { config: { Cmd: ["/bin/web"] } } }).manifest;
  const [A, B] = fx.manifests;
  return { e, dir, A, B, C };
}

describe("ocigen status", () => {
  test("units with their manifest, rootfs, state, ports, pins and updates; unused trees with size; orphaned volumes", async () => {
    const { e, dir, A, B, C } = setup();
    try {
      // v1 ran A and was rolled back from C (the tag now names C); v2 was updated and runs B
      writeIndex(dir, { schemaVersion: 2, manifests: [{ ...C, annotations: { [REF]: "v1" } }, { ...B, annotations: { [REF]: "v2" } }] });
      writePin(e.cfg.stateDir!, { unit: "web.ref.v1.service", manifest: A.digest, from: C.digest, at: "2026-12-06T22:41:07.123Z", reason: "exited (exit status 1) and was restarted by systemd" });
      recordEvent(e.cfg.stateDir!, "web.ref.v1", { at: "2026-12-06T22:41:07.123Z", action: "rolled-back", from: A.digest, to: C.digest, reason: "exited" }, A.digest);
      recordEvent(e.cfg.stateDir!, "web.ref.v2", { at: "2026-12-06T22:41:02.000Z", action: "updated", from: A.digest, to: B.digest }, B.digest);
      for (const [base, m] of [["web.ref.v1", A.digest], ["web.ref.v2", B.digest]]) {
        fs.mkdirSync(join(e.extracts, base), { recursive: true });
        fs.writeFileSync(join(e.extracts, base, "current.json"), JSON.stringify({ name: "web", tag: base.slice(-2), manifest: m }));
      }
      // the store: A (pinned, used), B (used), and an old tree no tag or unit names
      const old = "sha256:" + "d".repeat(64);
      for (const m of [A.digest, B.digest, old]) fs.mkdirSync(storeRootfs(e.extracts, m), { recursive: true });
      fs.mkdirSync(join(storeRootfs(e.extracts, old), "usr/bin"), { recursive: true });
      fs.writeFileSync(join(storeRootfs(e.extracts, old), "usr/bin/big"), Buffer.alloc(123_456));
      fs.symlinkSync("big", join(storeRootfs(e.extracts, old), "usr/bin/link"));
      // volumes: one of a unit that exists, one of a tag that is gone
      for (const b of ["web.ref.v2", "web.ref.v0"]) fs.mkdirSync(join(e.tmp, "volumes", b, "data"), { recursive: true });

      const shown: string[] = [];
      const runner: Runner = {
        run(argv) {
          shown.push(argv.join(" "));
          const units = argv.slice(argv.indexOf("--") + 1);
          const st: Record<string, string> = { "web.ref.v1.service": "active\nSubState=running\nNRestarts=0", "web.ref.v2.service": "failed\nSubState=failed\nNRestarts=5" };
          return { status: 0, stderr: "", stdout: units.map((u) => `Id=${u}\nLoadState=loaded\nActiveState=${st[u]}\n`).join("\n") };
        },
      };
      const r = await gatherStatus({ config: e.cfg, runner, systemd: true });
      assert.deepEqual(r.errors, []);
      assert.equal(shown.length, 1, "one systemctl call for every unit");
      assert.match(shown[0], /^systemctl show .* -- web\.ref\.v1\.service web\.ref\.v2\.service$/);
      const [v1, v2] = r.units;
      assert.equal(v1.unit, "web.ref.v1.service");
      assert.equal(v1.image, "web:v1");
      assert.equal(v1.manifest, A.digest, "runs the pinned manifest");
      assert.equal(v1.tagManifest, C.digest);
      assert.equal(v1.nextManifest, A.digest);
      assert.equal(v1.extracted, true);
      assert.equal(v1.state, "active");
      assert.equal(v1.pending, false);
      assert.deepEqual(v1.pin, { manifest: A.digest, from: C.digest, at: "2026-12-06T22:41:07.123Z", reason: "exited (exit status 1) and was restarted by systemd" });
      assert.equal(v1.update?.action, "rolled-back");
      assert.deepEqual(v2.ports, ["80/tcp", "443/tcp"], "exposed ports, numerically");
      assert.equal(v2.state, "failed");
      assert.equal(v2.restarts, 5);
      assert.equal(v2.update?.action, "updated");
      assert.deepEqual(r.unused, [{ path: join(e.extracts, ".store/sha256", "d".repeat(64)), manifest: old, unpackedBytes: 123_456 + 3 }]);
      assert.deepEqual(r.volumes, [{ path: join(e.tmp, "volumes", "web.ref.v0"), unit: "web.ref.v0.service" }]);
      schema("status")(JSON.parse(JSON.stringify(statusJson(r))));

      const table = statusTable(r);
      assert.match(table, /^UNIT +STATE +MANIFEST +ROOTFS +PORTS +UPDATE$/m);
      assert.match(table, new RegExp(`^web\\.ref\\.v1\\.service +active/running +${A.digest.slice(7, 19)} +verified +- +pinned to ${A.digest.slice(7, 19)}: rolled back from ${C.digest.slice(7, 19)} at 2026-12-06T22:41:07Z: exited`, "m"));
      assert.match(table, /^web\.ref\.v2\.service +failed\/failed \(5 restarts\) +\S+ +verified +80\/tcp,443\/tcp +updated from /m);
      assert.match(table, /extracted trees no unit uses \(ocigen gc-extracts removes them\):\nMANIFEST +MB +PATH\ndddddddddddd +0\.1 +\//);
      assert.match(table, /volumes whose unit is gone .*\nUNIT +PATH\nweb\.ref\.v0\.service +\//);

      // the tag moved without a pin: the unit has an update pending
      fs.rmSync(join(e.cfg.stateDir!, "pins"), { recursive: true });
      const p = await gatherStatus({ config: e.cfg, systemd: false });
      assert.equal(p.units[0].pending, true);
      assert.equal(p.units[0].manifest, A.digest);
      assert.equal(p.units[0].nextManifest, C.digest);
      assert.equal(p.units[0].state, "unknown");
      assert.match(statusTable(p), /pending: tag names /);
      assert.match(statusTable(p), /systemd is not running here: unit states are unknown/);
      // a pin file the generator cannot read is reported, not silently ignored
      fs.mkdirSync(join(e.cfg.stateDir!, "pins"));
      fs.writeFileSync(join(e.cfg.stateDir!, "pins", "web.ref.v1.json"), "{broken");
      const b = await gatherStatus({ config: e.cfg, systemd: false });
      assert.equal(b.errors.length, 1);
      assert.match(b.errors[0], /pins\/web\.ref\.v1\.json: not JSON/);
      assert.equal(b.units[0].pin, undefined);
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("the CLI prints JSON off a terminal (and with --json), a table with --table; update --json --dry-run", () => {
    const { e } = setup();
    try {
      const run = (args: string[]) => spawnSync(cli[0], [...cli.slice(1), ...args, "--config", e.conf], { encoding: "utf8", timeout: 120_000 });
      const piped = run(["status"]);
      assert.equal(piped.status, 0, piped.stderr);
      const doc = JSON.parse(piped.stdout);
      schema("status")(doc);
      assert.deepEqual(doc.units.map((u: { unit: string }) => u.unit), ["web.ref.v1.service", "web.ref.v2.service"]);
      assert.equal(run(["status", "--json"]).stdout, piped.stdout);
      assert.match(run(["status", "--table"]).stdout, /^UNIT +STATE/);
      const both = run(["status", "--json", "--table"]);
      assert.equal(both.status, 1);
      assert.match(both.stderr, /--json and --table exclude each other/);
      const up = run(["update", "--dry-run", "--json"]);
      assert.equal(up.status, 0, up.stderr);
      schema("update")(JSON.parse(up.stdout));
      assert.deepEqual(JSON.parse(up.stdout), { dryRun: true, reloaded: false, units: [], unpinned: [], errors: [] });
      const real = run(["update"]);
      if (!fs.existsSync("/run/systemd/system")) {
        assert.equal(real.status, 1);
        assert.match(real.stderr, /systemd is not running here/);
      }
      const bad = run(["update", "--unpin", "web.ref.v1.service"]);
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /^ocigen: /m);
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("update --json documents validate: each status word", () => {
    const v = schema("update");
    const m = "sha256:" + "a".repeat(64);
    for (const status of ["updated", "rolled-back", "pinned", "failed", "skipped", "would-update"] as const) {
      v(updateJson(false, { reloaded: true, unpinned: ["x.ref.y.service"], errors: [], units: [{ unit: "x.ref.y.service", layout: "x", tag: "y", from: m, to: m, status, reason: "r", seconds: 1.5 }] }));
    }
  });
});
