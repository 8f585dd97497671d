// Auto-update with rollback on a booted systemd 252 (the boot harness of
// fixtures/boot.ts: systemd-nspawn over an overlay of the cached Debian 12
// tree). Layouts made on the host with umoci hold every image; a tag is
// "moved" by swapping the layout's index.json, as skopeo or umoci would.
// - a tag moved to a good image: `ocigen update` extracts, reloads, restarts,
//   the service runs the new content, and `ocigen status` shows it updated;
// - a tag moved to an image whose command exits 1: `ocigen update` rolls it
//   back (pin), the previous content runs again (read from its own output),
//   `ocigen status` shows the pin, and a daemon-reload keeps the pin;
// - the tag moves again: the pin is dropped and the new content rolled out;
// - HealthCmd=: the health command runs in the service's root through
//   systemd-run; content that never gets healthy is rolled back.
// Runs as root under Node; outside CI it skips with the reason when it cannot
// run, in CI (CI=true) it fails instead. Needs dist/ built (npm ci).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { bootGuest, bootSuite, ensureTree, type Guest, hostOk, q } from "../fixtures/boot.ts";
import { BUSYBOX, baseRootfs, longCmd } from "../fixtures/boot-images.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const LAYOUTS = "/var/lib/oci/layouts";
const REF = "org.opencontainers.image.ref.name";

/** What the images need beyond the boot harness (see `bootSuite`). */
function unavailable(): string | undefined {
  if (!BUSYBOX) return "static busybox is not installed (busybox-static)";
  if (spawnSync("sh", ["-c", "command -v umoci"]).status !== 0) return "umoci is needed to make the test images";
  if (!fs.existsSync(join(repo, "dist/ocigen.mjs"))) return "dist/ocigen.mjs is not built (npm ci)";
  return undefined;
}
const { why, skip } = bootSuite("auto-update boot suite", unavailable);

/** What each image prints, and whether it gets healthy (writes /ready into its root). */
const SHOW = `echo "content=$(cat /etc/version)"`;
const VARIANTS: Record<string, { version: string; cmd: string[] }> = {
  A: { version: "A", cmd: longCmd(SHOW) },
  B: { version: "B", cmd: longCmd(`${SHOW}; echo ok > /ready`) },
  C: { version: "C", cmd: ["/bin/sh", "-c", `${SHOW}; echo failing; exit 1`] },
  D: { version: "D", cmd: longCmd(`${SHOW}; echo never-ready`) },
};

/**
 * Layout `name` under `layouts` with one tag `app` per variant in `tags`;
 * returns index.json texts with `app` naming each variant (the first is the layout's).
 */
function buildLayout(layouts: string, work: string, name: string, tags: string[]): Record<string, string> {
  const dir = join(layouts, name);
  hostOk(["umoci", "init", "--layout", dir]);
  hostOk(["umoci", "new", "--image", `${dir}:base`]);
  for (const t of tags) {
    const v = VARIANTS[t];
    const bundle = join(work, `bundle-${name}-${t}`);
    hostOk(["umoci", "unpack", "--image", `${dir}:base`, bundle]);
    baseRootfs(join(bundle, "rootfs"), `${v.version}`);
    hostOk(["umoci", "repack", "--image", `${dir}:${t}`, bundle]);
    fs.rmSync(bundle, { recursive: true, force: true });
    const args = ["umoci", "config", "--image", `${dir}:${t}`, "--clear=config.entrypoint", "--clear=config.cmd", "--config.exposedports=8080/tcp"];
    for (const c of v.cmd) args.push(`--config.cmd=${c}`);
    hostOk(args);
  }
  const idx = JSON.parse(fs.readFileSync(join(dir, "index.json"), "utf8")) as { manifests: Array<{ annotations?: Record<string, string> }> };
  const out: Record<string, string> = {};
  for (const t of tags) {
    const d = idx.manifests.find((m) => m.annotations?.[REF] === t)!;
    out[t] = JSON.stringify({ ...idx, manifests: [{ ...d, annotations: { [REF]: "app" } }] });
  }
  fs.writeFileSync(join(dir, "index.json"), out[tags[0]]);
  return out;
}

interface StatusDoc {
  units: Array<{ unit: string; manifest: string; tagManifest: string; nextManifest: string; state: string; extracted: boolean; ports: string[]; pin?: { manifest: string; from: string; reason: string }; pending: boolean; update?: { action: string } }>;
}

describe("boot: ocigen update rolls out moved tags and rolls back failing ones", { skip, timeout: 900_000 }, () => {
  let g: Guest;
  let work = "";
  const t0 = Date.now();
  const times: string[] = [];
  const idx: Record<string, Record<string, string>> = {};
  const digest = (layout: string, v: string) => (JSON.parse(idx[layout][v]) as { manifests: Array<{ digest: string }> }).manifests[0].digest;

  /** Makes layout `name`'s tag `app` name variant `v` (index.json replaced atomically, as skopeo does). */
  const moveTag = (name: string, v: string) => {
    fs.writeFileSync(join(g.dir, "var-lib-oci", "layouts", name, ".index.json.new"), idx[name][v]);
    fs.renameSync(join(g.dir, "var-lib-oci", "layouts", name, ".index.json.new"), join(g.dir, "var-lib-oci", "layouts", name, "index.json"));
  };
  const status = (): StatusDoc => JSON.parse(g.ok("ocigen status")) as StatusDoc;
  const unitOf = (s: StatusDoc, unit: string) => s.units.find((u) => u.unit === unit)!;
  const update = (args = "") => {
    const r = g.run(`ocigen update --json ${args}`, { timeoutMs: 300_000 });
    console.log(`update ${args}: exit ${r.status} ${r.stdout.trim()}${r.stderr.trim() ? `\n  stderr: ${r.stderr.trim()}` : ""}`);
    return { status: r.status, doc: JSON.parse(r.stdout) as { units: Array<{ unit: string; status: string; from?: string; to: string; reason?: string; seconds?: number }>; unpinned: string[] } };
  };

  before(async () => {
    if (why) throw new Error(`CI=true but the auto-update boot suite cannot run: ${why}`);
    const { tree } = ensureTree((s) => console.log(s));
    work = fs.mkdtempSync("/var/tmp/ocigen-update-");
    const layouts = join(work, "layouts");
    fs.mkdirSync(layouts);
    idx.au = buildLayout(layouts, work, "au", ["A", "B", "C"]);
    idx.hc = buildLayout(layouts, work, "hc", ["A", "B", "D"]);
    g = await bootGuest({ name: "update", tree, privateNetwork: true, binds: [{ src: repo }, { src: process.execPath, dst: "/usr/local/bin/node" }] });
    hostOk(["cp", "-a", layouts, join(g.dir, "var-lib-oci", "layouts")]);
    g.ok("node dist/ocigen.mjs install-generator", { cwd: repo });
    fs.mkdirSync(join(g.root, "etc/ocigen"), { recursive: true });
    fs.writeFileSync(join(g.root, "etc/ocigen/hc.image"), '[Image]\nHealthCmd=/bin/sh -c "test -e /ready"\nHealthTimeout=8\n');
    g.ok("systemctl daemon-reload", { timeoutMs: 120_000 });
    g.ok("systemctl start au.ref.app.service hc.ref.app.service", { timeoutMs: 180_000 });
    await g.waitActive("au.ref.app.service", 2);
    await g.waitActive("hc.ref.app.service", 2);
    await g.waitJournal("au.ref.app.service", /content=A/);
    times.push(`boot+install+start ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  after(async () => {
    await g?.shutdown();
    if (work) fs.rmSync(work, { recursive: true, force: true });
    console.log(`auto-update boot suite: ${times.join(", ")}; total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  test("the timer and service are installed and valid; status before any update", () => {
    assert.equal(g.show("ocigen-update.timer", ["LoadState"]).LoadState, "loaded");
    assert.equal(g.show("ocigen-update.service", ["LoadState"]).LoadState, "loaded");
    const s = status();
    const au = unitOf(s, "au.ref.app.service");
    assert.equal(au.state, "active");
    assert.equal(au.manifest, digest("au", "A"));
    assert.equal(au.extracted, true);
    assert.deepEqual(au.ports, ["8080/tcp"]);
    assert.equal(au.pending, false);
    console.log(g.ok("ocigen status --table").replace(/^/gm, "status-before| "));
  });

  test("a tag moved to a good image is rolled out and shown by status", async () => {
    const s = Date.now();
    moveTag("au", "B");
    const pending = unitOf(status(), "au.ref.app.service");
    assert.equal(pending.pending, true, "status shows the update pending");
    assert.equal(pending.nextManifest, digest("au", "B"));
    const before = g.show("au.ref.app.service", ["InvocationID"]).InvocationID;
    const other = g.show("hc.ref.app.service", ["InvocationID"]).InvocationID;
    moveTag("hc", "B"); // moved too, but not named on the command line: left alone
    const r = update("--timeout 5 au.ref.app.service");
    moveTag("hc", "A");
    assert.equal(r.status, 0);
    assert.deepEqual(r.doc.units.map((u) => [u.unit, u.status, u.from, u.to]), [["au.ref.app.service", "updated", digest("au", "A"), digest("au", "B")]]);
    const inv = g.show("au.ref.app.service", ["InvocationID", "ActiveState"]);
    assert.notEqual(inv.InvocationID, before, "restarted");
    assert.equal(inv.ActiveState, "active");
    const j = await g.waitJournal("au.ref.app.service", /content=B/, { invocation: inv.InvocationID });
    assert.doesNotMatch(j, /content=A/);
    // the other unit was not touched
    assert.deepEqual(g.show("hc.ref.app.service", ["InvocationID", "ActiveState"]), { InvocationID: other, ActiveState: "active" });
    const st = unitOf(status(), "au.ref.app.service");
    assert.equal(st.manifest, digest("au", "B"));
    assert.equal(st.update?.action, "updated");
    assert.equal(st.pending, false);
    console.log(g.ok("ocigen status --table").replace(/^/gm, "status-updated| "));
    times.push(`good rollout ${((Date.now() - s) / 1000).toFixed(1)} s`);
  });

  test("a tag moved to an image whose command fails is rolled back; the old content keeps running; status says so", async () => {
    const s = Date.now();
    moveTag("au", "C");
    const r = update("--timeout 6 au.ref.app.service");
    assert.equal(r.status, 1, "a rollback exits 1");
    const u = r.doc.units[0];
    assert.equal(u.status, "rolled-back", u.reason);
    assert.match(u.reason!, /exit status 1|restarted by systemd/);
    assert.match(u.reason!, /the previous content runs again/);
    // the bad content did run (its own output), and the previous content runs again
    const sys = g.journal("au.ref.app.service");
    assert.match(sys, /content=C\nfailing/);
    await g.waitActive("au.ref.app.service", 3);
    const inv = g.show("au.ref.app.service", ["InvocationID"]).InvocationID;
    const j = await g.waitJournal("au.ref.app.service", /content=B/, { invocation: inv });
    assert.doesNotMatch(j, /content=C/);
    // the operator's layout still names C; the pin holds the unit on B
    assert.equal(JSON.parse(g.ok(`cat ${LAYOUTS}/au/index.json`)).manifests[0].digest, digest("au", "C"));
    const st = unitOf(status(), "au.ref.app.service");
    assert.equal(st.state, "active");
    assert.equal(st.manifest, digest("au", "B"));
    assert.equal(st.tagManifest, digest("au", "C"));
    assert.equal(st.pin?.manifest, digest("au", "B"));
    assert.equal(st.pin?.from, digest("au", "C"));
    assert.equal(st.update?.action, "rolled-back");
    const table = g.ok("ocigen status --table");
    console.log(table.replace(/^/gm, "status-rolled-back| "));
    assert.match(table, /au\.ref\.app\.service +active\/running .* pinned to \S+: rolled back from /);
    // the generator honours the pin on every reload
    g.ok("systemctl daemon-reload", { timeoutMs: 120_000 });
    assert.match(g.ok("systemctl cat ocigen-extract@au.ref.app.service"), new RegExp(`--manifest ${digest("au", "B")}`));
    const again = await (async () => {
      g.ok("systemctl restart au.ref.app.service", { timeoutMs: 120_000 });
      await g.waitActive("au.ref.app.service", 2);
      const i = g.show("au.ref.app.service", ["InvocationID"]).InvocationID;
      return await g.waitJournal("au.ref.app.service", /content=/, { invocation: i });
    })();
    assert.match(again, /content=B/, "a restart after daemon-reload still runs the pinned content");
    // a second update run leaves it pinned
    const second = update("--timeout 3 au.ref.app.service");
    assert.equal(second.status, 0);
    assert.deepEqual(second.doc.units.map((x) => x.status), ["pinned"]);
    times.push(`rollback ${((Date.now() - s) / 1000).toFixed(1)} s`);
  });

  test("the tag moves again: the pin goes and the new content is rolled out", async () => {
    moveTag("au", "A");
    const r = update("--timeout 4 au.ref.app.service");
    assert.equal(r.status, 0);
    assert.deepEqual(r.doc.unpinned, ["au.ref.app.service"]);
    assert.deepEqual(r.doc.units.map((u) => [u.status, u.to]), [["updated", digest("au", "A")]]);
    const inv = g.show("au.ref.app.service", ["InvocationID"]).InvocationID;
    await g.waitJournal("au.ref.app.service", /content=A/, { invocation: inv });
    assert.equal(unitOf(status(), "au.ref.app.service").pin, undefined);
  });

  test("HealthCmd= runs in the service's root: healthy content is kept, content that never gets healthy is rolled back", async () => {
    const s = Date.now();
    moveTag("hc", "B");
    const good = update("hc.ref.app.service");
    assert.equal(good.status, 0);
    assert.equal(good.doc.units[0].status, "updated", good.doc.units[0].reason);
    assert.match(good.doc.units[0].reason!, /health command succeeded/);
    moveTag("hc", "D");
    const bad = update("hc.ref.app.service");
    assert.equal(bad.status, 1);
    assert.equal(bad.doc.units[0].status, "rolled-back", bad.doc.units[0].reason);
    assert.match(bad.doc.units[0].reason!, /health command did not succeed within 8 s/);
    const inv = g.show("hc.ref.app.service", ["InvocationID", "ActiveState"]);
    assert.equal(inv.ActiveState, "active");
    await g.waitJournal("hc.ref.app.service", /content=B/, { invocation: inv.InvocationID });
    times.push(`health ${((Date.now() - s) / 1000).toFixed(1)} s`);
  });

  test("ocigen-update.service runs the same update (what the timer starts)", async () => {
    moveTag("hc", "A");
    g.run("systemctl start ocigen-update.service", { timeoutMs: 300_000 });
    const out = g.journal("ocigen-update.service");
    console.log(out.replace(/^/gm, "update.service| "));
    // A never writes /ready: the timer's run rolls it back like a manual one, and says so
    assert.match(out, /hc\.ref\.app\.service: rolled-back/);
    assert.equal(g.show("hc.ref.app.service", ["ActiveState"]).ActiveState, "active");
  });
});
