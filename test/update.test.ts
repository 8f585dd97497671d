// Auto-update planning and rollback (src/update/) against a fake service
// manager: the runner below answers `systemctl show/restart/daemon-reload/
// reset-failed` and `systemd-run` the way systemd does, and plays the
// companion unit on each restart (writes current.json with the manifest the
// generator would now serve: the tag's, or the pinned one). The boot suite
// (test/boot-update.test.ts) does the same on a real systemd.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { generatorEnv, type GeneratorEnv } from "../fixtures/generator.ts";
import { makeLayout, putImage, rmTemp, tarFiles, writeIndex } from "../fixtures/layout.ts";
import type { Descriptor } from "../src/oci/types.ts";
import { generate } from "../src/generator/generate.ts";
import { parseImageSettings } from "../src/generator/settings.ts";
import { OcigenError } from "../src/errors.ts";
import { planUnits, update, type UpdateOptions } from "../src/update/update.ts";
import { healthRunArgv } from "../src/update/health.ts";
import { listPins, pinFor, readPin, readRecord, writePin } from "../src/generator/update-state.ts";
import type { RunResult, Runner } from "../src/update/systemd.ts";

const REF = "org.opencontainers.image.ref.name";

/** A layout `app` with tag v1 on image A, and images B, C (untagged) to move the tag to. */
function setup(prefix: string): { e: GeneratorEnv; dir: string; img: Record<"A" | "B" | "C", Descriptor>; move: (to: Descriptor) => void } {
  const e = generatorEnv(prefix);
  const dir = join(e.layouts, "app");
  const layer = (v: string) => [tarFiles([{ name: "etc/", dir: true }, { name: "etc/version", data: `${v}\n` }])];
  const fx = makeLayout(dir, [{ tags: ["v1"], layers: layer("A"), config: { config: { Cmd: ["/bin/app", "A"], ExposedPorts: { "8080/tcp": {} } } } }]);
  const B = putImage(dir, { layers: layer("B"), config: { config: { Cmd: ["/bin/app", "B"] } } }).manifest;
  const C = putImage(dir, { layers: layer("C"), config: { config: { Cmd: ["/bin/app", "C"] } } }).manifest;
  const move = (to: Descriptor) => writeIndex(dir, { schemaVersion: 2, manifests: [{ ...to, annotations: { [REF]: "v1" } }] });
  return { e, dir, img: { A: fx.manifests[0], B, C }, move };
}

type Outcome = "good" | "fail" | "nostart";

/** The fake service manager (see the file's comment). */
class FakeSystemd implements Runner {
  calls: string[] = [];
  reloads = 0;
  units = new Map<string, Record<string, string>>();
  /** What starting a manifest does (default good). */
  outcome = new Map<string, Outcome>();
  /** Exit status of the health command per manifest (default 0). */
  health = new Map<string, number>();
  private inv = 0;
  constructor(private e: GeneratorEnv, private dir: string) {}

  tagManifest(): string {
    const idx = JSON.parse(fs.readFileSync(join(this.dir, "index.json"), "utf8")) as { manifests: Descriptor[] };
    return idx.manifests.find((d) => d.annotations?.[REF] === "v1")!.digest;
  }
  /** What the companion serves now: the tag's, or the pinned manifest. */
  served(base: string): string {
    const tag = this.tagManifest();
    return pinFor(this.e.cfg.stateDir!, base, tag)?.manifest ?? tag;
  }
  current(base: string): string | undefined {
    try {
      return (JSON.parse(fs.readFileSync(join(this.e.extracts, base, "current.json"), "utf8")) as { manifest: string }).manifest;
    } catch {
      return undefined;
    }
  }
  /** Starts unit `u` as systemd would (the companion writes current.json). */
  start(u: string): boolean {
    const base = u.replace(/\.service$/, "");
    const m = this.served(base);
    const out = this.outcome.get(m) ?? "good";
    if (out === "nostart") {
      this.units.set(u, { ...this.units.get(u), ActiveState: "failed", SubState: "failed", Result: "exit-code" });
      return false;
    }
    fs.mkdirSync(join(this.e.extracts, base), { recursive: true });
    fs.writeFileSync(join(this.e.extracts, base, "current.json"), JSON.stringify({ name: "app", tag: "v1", manifest: m }));
    const prev = this.units.get(u);
    this.units.set(u, {
      LoadState: "loaded", ActiveState: out === "good" ? "active" : "activating", SubState: out === "good" ? "running" : "auto-restart",
      Result: out === "good" ? "success" : "exit-code", NRestarts: out === "good" ? "0" : String(Number(prev?.NRestarts ?? "0") + 1),
      ExecMainStatus: out === "good" ? "0" : "1", ExecMainCode: out === "good" ? "0" : "1", InvocationID: `inv${++this.inv}`,
    });
    return true;
  }
  run(argv: readonly string[]): RunResult {
    this.calls.push(argv.join(" "));
    const ok = (stdout = ""): RunResult => ({ status: 0, stdout, stderr: "" });
    if (argv[0] === "systemd-run") {
      const u = "app.ref.v1.service";
      const code = this.health.get(this.current(u.replace(/\.service$/, "")) ?? "") ?? 0;
      return { status: code, stdout: "", stderr: code ? "health: not ready" : "" };
    }
    assert.equal(argv[0], "systemctl");
    const [verb, ...rest] = argv.slice(1).filter((a) => a !== "--");
    switch (verb) {
      case "show": {
        const units = rest.filter((a) => !a.startsWith("--property="));
        return ok(units.map((u) => Object.entries({ Id: u, LoadState: "loaded", ActiveState: "inactive", SubState: "dead", NRestarts: "0", ...this.units.get(u) })
          .map(([k, v]) => `${k}=${v}`).join("\n") + "\n").join("\n"));
      }
      case "daemon-reload":
        this.reloads++;
        return ok();
      case "reset-failed":
        return ok();
      case "restart":
        return this.start(rest[0]) ? ok() : { status: 1, stdout: "", stderr: `Job for ${rest[0]} failed because the control process exited with error code.` };
      default:
        throw new Error(`fake systemd: unexpected ${argv.join(" ")}`);
    }
  }
}

/** Runs `fn` on {@link setup}'s layout with app.ref.v1.service running on a fake systemd; removes the temporary tree afterwards. */
async function withRunning(prefix: string, fn: (s: ReturnType<typeof setup> & { sd: FakeSystemd }) => Promise<void>): Promise<void> {
  const s = setup(prefix);
  try {
    const sd = new FakeSystemd(s.e, join(s.e.layouts, "app"));
    sd.start("app.ref.v1.service");
    await fn({ ...s, sd });
  } finally {
    rmTemp(s.e.tmp);
  }
}

function opts(e: GeneratorEnv, sd: FakeSystemd, extra: Partial<UpdateOptions> = {}): UpdateOptions {
  let t = 0;
  const prefetched: string[] = [];
  return {
    config: e.cfg, runner: sd, systemd: true, sleep: async (ms) => void (t += ms), now: () => t, pollMs: 500,
    prefetch: async (_c, _n, _t, m) => void prefetched.push(m), ...extra,
  };
}

describe("ocigen update: rollout and rollback", () => {
  test("a moved tag is extracted, reloaded, restarted and recorded; an unmoved one is left alone", () =>
    withRunning("ocigen-update-good-", async ({ e, img, move, sd }) => {
      let r = await update(opts(e, sd));
      assert.deepEqual(r.units, [], "nothing moved");
      assert.equal(sd.reloads, 0);
      move(img.B);
      const prefetched: string[] = [];
      r = await update(opts(e, sd, { prefetch: async (_c, _n, _t, m) => void prefetched.push(m) }));
      assert.deepEqual(prefetched, [img.B.digest], "new content extracted first");
      assert.equal(r.units.length, 1);
      assert.equal(r.units[0].status, "updated", r.units[0].reason);
      assert.equal(r.units[0].from, img.A.digest);
      assert.equal(r.units[0].to, img.B.digest);
      assert.match(r.units[0].reason!, /stayed active for 10 s/);
      assert.equal(sd.reloads, 1);
      assert.equal(sd.calls.filter((c) => c.startsWith("systemctl restart")).length, 1);
      const reloadAt = sd.calls.indexOf("systemctl daemon-reload");
      assert.ok(reloadAt >= 0 && reloadAt < sd.calls.findIndex((c) => c.startsWith("systemctl restart")), "reload before restart");
      assert.equal(sd.current("app.ref.v1"), img.B.digest);
      const rec = readRecord(e.cfg.stateDir!, "app.ref.v1");
      assert.equal(rec.manifest, img.B.digest);
      assert.equal(rec.history.at(-1)?.action, "updated");
      assert.deepEqual(listPins(e.cfg.stateDir!).pins, []);
    }));

  test("an image that exits non-zero is rolled back: pinned to the previous manifest, which the generator serves, and restarted", () =>
    withRunning("ocigen-update-bad-", async ({ e, img, move, sd }) => {
      sd.outcome.set(img.B.digest, "fail");
      move(img.B);
      const r = await update(opts(e, sd));
      assert.equal(r.units.length, 1);
      const u = r.units[0];
      assert.equal(u.status, "rolled-back", u.reason);
      assert.match(u.reason!, /exited \(exit status 1\) and was restarted by systemd; the previous content runs again/);
      assert.equal(sd.reloads, 2, "reload to roll out, reload to roll back");
      assert.equal(sd.current("app.ref.v1"), img.A.digest, "the old content runs");
      assert.equal(sd.units.get("app.ref.v1.service")?.ActiveState, "active");
      const pin = readPin(e.cfg.stateDir!, "app.ref.v1")!;
      assert.equal(pin.manifest, img.A.digest);
      assert.equal(pin.from, img.B.digest);
      // the generator honours the pin: the unit's companion serves A while the tag names B
      const plan = await planUnits(e.cfg);
      assert.equal(plan.units[0].manifest, img.A.digest);
      assert.equal(plan.units[0].tagManifest, img.B.digest);
      assert.match(plan.units[0].extractUnit.text, new RegExp(`--manifest ${img.A.digest}`));
      assert.equal(readRecord(e.cfg.stateDir!, "app.ref.v1").history.at(-1)?.action, "rolled-back");

      // a second run leaves the pinned unit alone
      const before = sd.calls.length;
      const again = await update(opts(e, sd));
      assert.deepEqual(again.units.map((x) => x.status), ["pinned"]);
      assert.equal(sd.calls.slice(before).filter((c) => /restart|daemon-reload/.test(c)).length, 0);

      // the tag moves again to a good image: the stale pin goes and C is rolled out
      move(img.C);
      assert.equal((await planUnits(e.cfg)).units[0].manifest, img.C.digest, "a stale pin is ignored by the generator");
      const third = await update(opts(e, sd));
      assert.deepEqual(third.unpinned, ["app.ref.v1.service"]);
      assert.deepEqual(third.units.map((x) => [x.status, x.from, x.to]), [["updated", img.A.digest, img.C.digest]]);
      assert.equal(readPin(e.cfg.stateDir!, "app.ref.v1"), null);
      assert.equal(sd.current("app.ref.v1"), img.C.digest);
    }));

  test("a unit that does not start, or fails its health command, is rolled back; --unpin retries", () =>
    withRunning("ocigen-update-health-", async ({ e, img, move, sd }) => {
      sd.outcome.set(img.B.digest, "nostart");
      move(img.B);
      let r = await update(opts(e, sd));
      assert.equal(r.units[0].status, "rolled-back");
      assert.match(r.units[0].reason!, /did not start: Job for app\.ref\.v1\.service failed/);
      assert.equal(sd.current("app.ref.v1"), img.A.digest);

      // B starts now but never gets healthy
      sd.outcome.set(img.B.digest, "good");
      sd.health.set(img.B.digest, 1);
      fs.mkdirSync(e.settings, { recursive: true });
      fs.writeFileSync(join(e.settings, "app.image"), "[Image]\nHealthCmd=/bin/check --quick\nHealthTimeout=4\n");
      r = await update(opts(e, sd, { unpin: ["app.ref.v1.service"] }));
      assert.deepEqual(r.unpinned, ["app.ref.v1.service"]);
      assert.equal(r.units[0].status, "rolled-back", r.units[0].reason);
      assert.match(r.units[0].reason!, /health command did not succeed within 4 s \(last: exit 1: health: not ready\)/);
      const health = sd.calls.filter((c) => c.startsWith("systemd-run"));
      assert.ok(health.length >= 3, `health command retried (${health.length})`);
      assert.match(health[0], / -p RootDirectory=\S+\/run\/app\.ref\.v1\/root /);
      assert.match(health[0], / -- \/bin\/check --quick$/);
      assert.equal(readPin(e.cfg.stateDir!, "app.ref.v1")?.from, img.B.digest);

      // healthy now: --unpin rolls it out
      sd.health.set(img.B.digest, 0);
      r = await update(opts(e, sd, { unpin: ["app.ref.v1"] }));
      assert.equal(r.units[0].status, "updated");
      assert.match(r.units[0].reason!, /health command succeeded/);
      assert.equal(sd.current("app.ref.v1"), img.B.digest);
      await assert.rejects(update(opts(e, sd, { unpin: ["app.ref.v1"] })), (err) => err instanceof OcigenError && err.code === "EUPDATE" && /is not pinned/.test(err.message));
    }));

  test("stopped units are not restarted; AutoUpdate=no is skipped; --dry-run changes nothing; a failed extraction restarts nothing", () =>
    withRunning("ocigen-update-misc-", async ({ e, img, move, sd }) => {
      move(img.B);
      const dry = await update(opts(e, sd, { dryRun: true }));
      assert.deepEqual(dry.units.map((u) => u.status), ["would-update"]);
      assert.deepEqual(sd.calls.filter((c) => !c.startsWith("systemctl show")), [], "dry run ran nothing");
      assert.equal(fs.existsSync(e.cfg.stateDir!), false, "dry run wrote no state");

      const bad = await update(opts(e, sd, { prefetch: async () => { throw new OcigenError("EDIGEST", "blob sha256:ab: digest mismatch"); } }));
      assert.deepEqual(bad.units.map((u) => u.status), ["failed"]);
      assert.match(bad.units[0].reason!, /extracting \S+ failed: blob sha256:ab: digest mismatch/);
      assert.equal(sd.calls.filter((c) => /restart/.test(c)).length, 0);

      fs.mkdirSync(e.settings, { recursive: true });
      fs.writeFileSync(join(e.settings, "app.image"), "[Image]\nAutoUpdate=no\n");
      assert.deepEqual((await update(opts(e, sd))).units.map((u) => u.status), ["skipped"]);
      fs.rmSync(join(e.settings, "app.image"));

      sd.units.set("app.ref.v1.service", { ActiveState: "inactive", SubState: "dead" });
      const r = await update(opts(e, sd));
      assert.equal(r.units[0].status, "updated");
      assert.match(r.units[0].reason!, /not running/);
      assert.equal(sd.calls.filter((c) => /restart/.test(c)).length, 0, "a stopped unit is not started");
      assert.equal(sd.reloads, 1);
    }));

  test("the generator serves a pinned manifest only while the tag names the failed one", async () => {
    const { e, img, move } = setup("ocigen-update-pin-");
    try {
      move(img.B);
      writePin(e.cfg.stateDir!, { unit: "app.ref.v1.service", manifest: img.A.digest, from: img.B.digest, at: "2026-12-06T22:00:00.000Z", reason: "exited 1" });
      const printed: string[] = [];
      const r = await generate({ config: e.cfg, outDir: join(e.tmp, "out"), dryRun: true, print: (s) => void printed.push(s) });
      assert.deepEqual(r.errors, []);
      assert.equal(r.units[0].manifest, img.A.digest);
      assert.deepEqual(r.units[0].pin, { manifest: img.A.digest, from: img.B.digest, at: "2026-12-06T22:00:00.000Z", reason: "exited 1" });
      assert.match(printed.join(""), new RegExp(`--manifest ${img.A.digest}`));
      assert.doesNotMatch(printed.join(""), new RegExp(`--manifest ${img.B.digest}`));
      move(img.C);
      assert.equal((await planUnits(e.cfg)).units[0].manifest, img.C.digest);
      // a broken pin file never breaks generation
      fs.writeFileSync(join(e.cfg.stateDir!, "pins", "app.ref.v1.json"), "{not json");
      const g = await planUnits(e.cfg);
      assert.deepEqual(g.errors, []);
      assert.equal(g.units[0].manifest, img.C.digest);
    } finally {
      rmTemp(e.tmp);
    }
  });
});

describe("auto-update settings and the health command's sandbox", () => {
  test("HealthCmd=, HealthTimeout=, AutoUpdate= parse; bad values name the file and line", () => {
    const s = parseImageSettings("[Image]\nHealthCmd=/bin/sh -c 'wget -qO- localhost'\nHealthTimeout=30s\nAutoUpdate=no\n", "/etc/ocigen/app.image", "layout");
    assert.deepEqual(s.update, { healthCmd: ["/bin/sh", "-c", "wget -qO- localhost"], healthTimeout: 30, autoUpdate: false });
    assert.throws(() => parseImageSettings("[Image]\n\nHealthTimeout=soon\n", "/etc/ocigen/app.image", "layout"), /^OcigenError: \/etc\/ocigen\/app\.image:3: HealthTimeout= must be seconds/);
    assert.throws(() => parseImageSettings("[Image]\nHealthCmd=\"unterminated\n", "/e/a.image", "layout"), /\/e\/a\.image:2: HealthCmd=/);
    assert.throws(() => parseImageSettings("[Image]\nAutoUpdate=maybe\n", "/e/a.image", "tag"), /\/e\/a\.image:2: AutoUpdate= must be yes or no/);
    assert.throws(() => parseImageSettings("[Image]\nHealthcmd=/x\n", "/e/a.image", "tag"), /did you mean HealthCmd=/);
  });

  test("the health command gets the service's [Service] sandbox, not how it starts or restarts", () => {
    const unit = [
      "[Unit]", "Description=x", "BindsTo=ocigen-extract@a.service", "", "[Service]", "Type=exec", "Slice=oci.slice",
      "Environment=\"A=1 2\"", "User=1000", "Group=1000", "ExecStart=/bin/app", "RootDirectory=/run/ocigen/a/root",
      "NoNewPrivileges=yes", "CapabilityBoundingSet=CAP_CHOWN", "Restart=on-failure", "RestartSec=2s", "SystemCallFilter=@system-service",
      "Environment=P=100%%", "",
    ].join("\n");
    const argv = healthRunArgv(unit, ["/bin/check", "a b"], 7);
    assert.deepEqual(argv, [
      "systemd-run", "--wait", "--pipe", "--quiet", "--collect", "--service-type=exec", "-p", "RuntimeMaxSec=7",
      "-p", "Slice=oci.slice", "-p", "Environment=\"A=1 2\"", "-p", "User=1000", "-p", "Group=1000", "-p", "RootDirectory=/run/ocigen/a/root",
      "-p", "NoNewPrivileges=yes", "-p", "CapabilityBoundingSet=CAP_CHOWN", "-p", "SystemCallFilter=@system-service", "-p", "Environment=P=100%",
      "--", "/bin/check", "a b",
    ]);
  });
});
