// The real-systemd end-to-end suite: boots Debian 12's systemd (252) with
// systemd-nspawn over an overlay of a cached debootstrap tree
// (fixtures/boot.ts), installs ocigen's generator in it the ways the README
// tells users to (node bundle, single binary, `deno run`), drops layouts
// made offline on the host (fixtures/boot-images.ts) into imagelayoutdir,
// and asserts what a user gets: `systemctl show` properties, the ids in
// /proc/<MainPID>/status, and what each image's own command printed into
// its service's journal.
//
// Boots are shared between cases: one per install way and NSS variant (and
// one for the README tour). Runs as root with systemd-nspawn; outside CI it
// skips with the reason when it cannot run, in CI (CI=true) it fails instead.
// Runs under Node only (under Deno it skips: one run of a 5-minute suite is
// enough, and the install ways cover Deno). Prints a PASS/FAIL table and the
// run time at the end.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { bootGuest, bootSuite, ensureDebs, ensureTree, type Guest, hostOk, q } from "../fixtures/boot.ts";
import { type BootImages, buildImages } from "../fixtures/boot-images.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const LAYOUTS = "/var/lib/oci/layouts";
const STAGE = "/root/ocigen-boot-stage";

const { why, skip } = bootSuite("boot suite");

interface CaseResult {
  boot: string;
  name: string;
  result: "PASS" | "FAIL";
  seconds: number;
  reason: string;
}
const results: CaseResult[] = [];
const t0 = Date.now();
let treeSeconds = 0;
let images: BootImages | undefined;
let work = "";

/** A case: a subtest whose outcome goes into the summary table. */
function kase(boot: string, name: string, fn: () => Promise<void> | void): void {
  test(name, { timeout: 240_000 }, async () => {
    const s = Date.now();
    try {
      await fn();
      results.push({ boot, name, result: "PASS", seconds: (Date.now() - s) / 1000, reason: "" });
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      results.push({ boot, name, result: "FAIL", seconds: (Date.now() - s) / 1000, reason: failureReason(msg) });
      throw e;
    }
  });
}

/** One line for the table: the assertion, plus the exit status and the journal's own error line when there are. */
function failureReason(msg: string): string {
  const first = msg.split("\n")[0].replace(/(Job for \S+ failed|A dependency job for \S+ failed).*$/, "$1").slice(0, 110);
  const status = msg.match(/status=\d+\/[A-Z_]+/)?.[0];
  const line = msg.match(/(Failed at step [^\n]*|Failed to [^\n]*|level=error msg="[^"]*"|ocigen: [^\n]*)/)?.[0];
  return [first, status, line?.slice(0, 140)].filter(Boolean).join(" | ");
}

/** Starts a unit, checks it stays active 3 s with NRestarts=0, waits for its marker; returns its InvocationID. */
async function startLong(g: Guest, unit: string, marker: RegExp, verb = "start"): Promise<{ invocation: string; journal: string }> {
  const r = g.run(`systemctl ${verb} ${q(unit)}`, { timeoutMs: 180_000 });
  assert.equal(r.status, 0, `systemctl ${verb} ${unit} failed: ${r.stderr.trim()}\n${g.diagnose(unit)}`);
  await g.waitActive(unit, 3);
  const invocation = g.show(unit, ["InvocationID"]).InvocationID;
  const journal = await g.waitJournal(unit, marker, { invocation });
  return { invocation, journal };
}

function assertIds(g: Guest, unit: string, uid: number, gid: number): void {
  const st = g.mainPidStatus(unit);
  assert.deepEqual(st.uid, [uid, uid, uid, uid], `${unit}: /proc/${st.pid}/status Uid`);
  assert.deepEqual(st.gid, [gid, gid, gid, gid], `${unit}: /proc/${st.pid}/status Gid`);
}

/** The guest's imagelayoutdir is a bind mount made at boot: copy the layouts there after boot. */
function seedAfterBoot(g: Guest): void {
  const dst = join(g.dir, "var-lib-oci", "layouts");
  hostOk(["cp", "-a", images!.layouts, dst]);
}

/** Moves a tag in the guest the way `skopeo copy` would: new blobs first, then index.json renamed over. */
function applyUpdate(g: Guest, name: string): void {
  const src = `${STAGE}/updates/${name}`;
  const dst = `${LAYOUTS}/${name}`;
  g.ok(`cp -a ${src}/blobs/. ${dst}/blobs/ && cp ${src}/index.json ${dst}/.index.json.new && mv ${dst}/.index.json.new ${dst}/index.json`);
}

function nssAbsent(g: Guest): void {
  const r = g.run("dpkg -s libnss-systemd >/dev/null 2>&1; echo dpkg=$?; ls /usr/lib/*/libnss_systemd.so.2 /lib/*/libnss_systemd.so.2 2>/dev/null | wc -l; grep -c systemd /etc/nsswitch.conf");
  const [dpkg, libs, nsswitch] = r.stdout.trim().split("\n");
  assert.equal(dpkg, "dpkg=1", "libnss-systemd must not be installed on this boot");
  assert.equal(libs.trim(), "0", "libnss_systemd.so.2 must be absent on this boot");
  assert.equal(nsswitch.trim(), "0", "/etc/nsswitch.conf must not name systemd on this boot");
  assert.notEqual(g.run("getent passwd 1001").status, 0, "the host must not know uid 1001 before the test");
}

/** Modification times and sizes of the cached tree's top and of files a boot would change if it wrote through. */
function treeFingerprint(tree: string): string {
  return ["", "etc", "etc/passwd", "etc/nsswitch.conf", "var/lib/dpkg/status", "usr/local/bin", "var/lib", "root", "var/log/journal"]
    .map((p) => {
      try {
        const st = fs.statSync(join(tree, p));
        return `${p}:${st.mtimeMs}:${st.size}`;
      } catch {
        return `${p}:absent`;
      }
    }).join(" ");
}

let builtBinary = "";
/** Builds (or reuses a fresh) single binary on the host, once per run. */
function singleBinary(): string {
  if (!builtBinary) builtBinary = buildSingleBinary();
  return builtBinary;
}

function buildSingleBinary(): string {
  const dist = join(repo, "dist/ocigen");
  const newest = (d: string): number => fs.readdirSync(d).reduce((t, n) => {
    const p = join(d, n);
    const st = fs.statSync(p);
    return Math.max(t, st.isDirectory() ? newest(p) : st.mtimeMs);
  }, 0);
  if (fs.existsSync(dist) && fs.statSync(dist).mtimeMs > newest(join(repo, "src"))) return dist;
  const out = join(work, "bin", "ocigen");
  const r = spawnSync(process.execPath, [join(repo, ".ci/build-binary.mjs"), "--out", out], { cwd: repo, encoding: "utf8", timeout: 600_000 });
  assert.equal(r.status, 0, `build-binary failed: ${r.stderr}`);
  return out;
}

describe("boot suite: generated services on a booted systemd 252", { skip, timeout: 1_800_000 }, () => {
  let tree = "";
  let treeBefore = "";
  let debs: { nss: string; runc: string };

  before(() => {
    if (why) throw new Error(`CI=true but the boot suite cannot run: ${why}`);
    const made = ensureTree((s) => console.log(s));
    tree = made.tree;
    treeSeconds = made.seconds;
    treeBefore = treeFingerprint(tree);
    const [nss, runc] = ensureDebs(tree, ["libnss-systemd", "runc"]);
    debs = { nss, runc };
    work = fs.mkdtempSync("/var/tmp/ocigen-boot-suite-");
    images = buildImages(join(work, "images"));
  });

  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
    const total = (Date.now() - t0) / 1000;
    const w = Math.max(...results.map((r) => r.name.length), 4);
    const lines = [
      "",
      `boot suite: ${results.filter((r) => r.result === "PASS").length}/${results.length} cases pass; ` +
      `run time ${total.toFixed(1)} s (cached tree: ${treeSeconds ? `made in ${treeSeconds.toFixed(0)} s` : "reused"})`,
      `${"boot".padEnd(12)} ${"case".padEnd(w)} result  seconds  reason`,
      ...results.map((r) => `${r.boot.padEnd(12)} ${r.name.padEnd(w)} ${r.result.padEnd(6)}  ${r.seconds.toFixed(1).padStart(7)}  ${r.reason}`),
      "",
    ];
    console.log(lines.join("\n"));
  });

  // ---- boot 1: node bundle install, libnss-systemd and runc installed -------------------------------
  describe("node bundle install, with libnss-systemd", () => {
    let g: Guest;
    const B = "node+nss";
    before(async () => {
      g = await bootGuest({
        name: "node",
        tree,
        binds: [{ src: repo }, { src: process.execPath, dst: "/usr/local/bin/node" }, { src: dirname(debs.nss), dst: "/root/debs" }],
        prepare: (root) => {
          fs.mkdirSync(join(root, STAGE.slice(1)), { recursive: true });
          hostOk(["cp", "-a", images!.updates, join(root, STAGE.slice(1), "updates")]);
        },
      });
      seedAfterBoot(g);
      g.ok(`dpkg -i /root/debs/${q(debs.nss.split("/").pop()!)} /root/debs/${q(debs.runc.split("/").pop()!)}`, { timeoutMs: 180_000 });
      g.ok("node dist/ocigen.mjs install-generator", { cwd: repo });
      // runc mode for the `rc` layout, the documented per-layout section
      g.ok(`printf '\\n[layout rc]\\nruntime = runc\\n' >> /etc/oci-generator.conf`);
      // per-image settings for the `st` layout (SPEC 4.4): an extra volume, one tag excluded
      g.ok(`mkdir -p /etc/ocigen /srv/st-host && printf '[Image]\\nExcludeTag=skip\\nVolume=/extra\\nVolume=/srv/st-host:/hostdir\\n' > /etc/ocigen/st.image`);
      g.ok("systemctl daemon-reload", { timeoutMs: 120_000 });
    });
    after(async () => {
      await g?.shutdown();
    });

    kase(B, "nss present (precondition)", () => {
      assert.equal(g.run("dpkg -s libnss-systemd >/dev/null").status, 0, "libnss-systemd installed");
      assert.match(g.ok("grep '^passwd:' /etc/nsswitch.conf"), /systemd/);
      assert.match(g.ok("runc --version"), /runc version/);
    });

    kase(B, "plain command (long-running)", async () => {
      const { journal } = await startLong(g, "bb.ref.plain.service", /plain-ok uid=0/);
      assert.match(journal, /plain-ok uid=0/);
      assertIds(g, "bb.ref.plain.service", 0, 0);
      // the unit a user gets, for the record
      console.log(g.run("systemctl cat bb.ref.plain.service").stdout.replace(/^/gm, "unit| "));
    });

    kase(B, "plain command (one-shot)", async () => {
      const unit = "bb.ref.oneshot.service";
      const r = g.runToEnd(unit, 120, /oneshot-ok version=v1/);
      assert.equal(r.exitStatus, 0, `exit status ${r.exitStatus}, want 0 (systemctl: ${r.stderr.trim()})\n${g.diagnose(unit)}`);
      assert.equal(r.waitStatus, 0, `systemctl start --wait ${unit}: ${r.stderr.trim()}`);
      assert.match(r.journal, /oneshot-ok version=v1/, r.journal);
    });

    kase(B, "named User app, first start (nss present)", async () => {
      await startLong(g, "bb.ref.named.service", /named-ok uid=1001 gid=1001/);
      assertIds(g, "bb.ref.named.service", 1001, 1001);
    });

    kase(B, "numeric User 1000:1000", async () => {
      await startLong(g, "bb.ref.numeric.service", /numeric-ok uid=1000 gid=1000/);
      assertIds(g, "bb.ref.numeric.service", 1000, 1000);
    });

    kase(B, "root fs writable, write gone after restart", async () => {
      const unit = "bb.ref.rootwrite.service";
      const first = await startLong(g, unit, /write-(ok|failed)/);
      assert.match(first.journal, /marker-absent/);
      assert.match(first.journal, /write-ok/, `a write to / failed:\n${first.journal}`);
      const second = await startLong(g, unit, /write-(ok|failed)/, "restart");
      assert.notEqual(second.invocation, first.invocation);
      assert.match(second.journal, /marker-absent/, `the write to / survived a restart:\n${second.journal}`);
      assert.match(second.journal, /write-ok/);
      const store = g.run(`find /var/lib/oci/extracts -name rootwrite-marker 2>/dev/null`).stdout.trim();
      assert.equal(store, "", `the service wrote into the shared extracts store: ${store}`);
      // nothing in any extracted rootfs changed while the service restarted (no mount points made there by systemd)
      g.ok("touch /run/ocigen-boot-stamp && sleep 1.1");
      await startLong(g, unit, /write-(ok|failed)/, "restart");
      const changed = g.run("find /var/lib/oci/extracts -path '*/rootfs/*' -newer /run/ocigen-boot-stamp 2>/dev/null | head -n 20").stdout.trim();
      assert.equal(changed, "", `a service start changed the shared extracts store:\n${changed}`);
    });

    kase(B, "Volumes /data seeded, kept over restart and image update", async () => {
      const unit = "vol.ref.cur.service";
      const a = await startLong(g, unit, /runs=\d+/);
      assert.match(a.journal, /seed=seed-v1 version=v1/, `volume not seeded from the image:\n${a.journal}`);
      assert.match(a.journal, /runs=1\b/);
      const b = await startLong(g, unit, /runs=\d+/, "restart");
      assert.match(b.journal, /runs=2\b/, `volume content lost on restart:\n${b.journal}`);
      applyUpdate(g, "vol");
      g.ok("systemctl daemon-reload", { timeoutMs: 120_000 });
      const c = await startLong(g, unit, /runs=\d+/, "restart");
      assert.match(c.journal, /version=v2/, `the update did not run the new content:\n${c.journal}`);
      assert.match(c.journal, /seed=seed-v1/, `the volume was re-seeded by the update:\n${c.journal}`);
      assert.match(c.journal, /runs=3\b/, `volume content lost on image update:\n${c.journal}`);
    });

    kase(B, "dated build tag is not a unit", () => {
      assert.equal(g.show("bb.ref.plain.service", ["LoadState"]).LoadState, "loaded");
      assert.equal(g.show("bb.ref.plain-2026-12-06_1.service", ["LoadState"]).LoadState, "not-found", "a dated tag became a unit");
    });

    kase(B, "WorkingDir + Env seen by the process", async () => {
      const { journal } = await startLong(g, "bb.ref.wdenv.service", /pwd=/);
      assert.match(journal, /pwd=\/srv\/app FOO=foo value BAR=bar/);
    });

    kase(B, "tag moved + daemon-reload + restart runs new content", async () => {
      const unit = "mover.ref.cur.service";
      const a = await startLong(g, unit, /content=/);
      assert.match(a.journal, /content=v1/);
      applyUpdate(g, "mover");
      g.ok("systemctl daemon-reload", { timeoutMs: 120_000 });
      const b = await startLong(g, unit, /content=/, "restart");
      assert.match(b.journal, /content=v2/, `after the tag moved, the restart ran:\n${b.journal}`);
    });

    kase(B, "runc mode: no tty, runc list shows it", async () => {
      const unit = "rc.ref.latest.service";
      const { journal } = await startLong(g, unit, /runc-ok/);
      assert.match(journal, /tty-no/, `the container got a tty:\n${journal}`);
      const exec = g.show(unit, ["ExecStart"]).ExecStart ?? "";
      assert.match(exec, /runc/, `not run by runc: ExecStart=${exec}`);
      const roots = [...exec.matchAll(/--root[= ]([^ ;]+)/g)].map((m) => m[1]);
      const lists = ["runc list", ...roots.map((r) => `runc --root ${q(r)} list`)].map((c) => g.run(c).stdout).join("\n");
      assert.match(lists, /\brunning\b/, `runc list shows no running container:\n${lists}`);
    });

    kase(B, "corrupt layouts beside good ones", async () => {
      const good = "bb.ref.plain.service";
      if (g.show(good, ["ActiveState"]).ActiveState !== "active") await startLong(g, good, /plain-ok/);
      // index.json that is not JSON: no unit, reported; the others are generated
      assert.equal(g.show("broken-index.ref.latest.service", ["LoadState"]).LoadState, "not-found");
      // reported: to /dev/kmsg only when it is the kernel's character device, never as a new file. A container has
      // no /dev/kmsg and systemd 252 gives generators its own stderr, /dev/null there: so check that systemd saw the
      // generator fail, and that the installed generator, run as systemd runs it, names the layout in one line
      assert.notEqual(g.run("test -f /dev/kmsg").status, 0, `/dev/kmsg is a regular file in the guest (written by the generator?): ${g.run("head -c 300 /dev/kmsg").stdout}`);
      const journal = g.run("journalctl -b --no-pager -q").stdout;
      assert.match(journal, /ocigen-generator failed with exit status 1/, "systemd did not see the generator report a failure");
      const gen = g.run("mkdir -p /tmp/gen-n /tmp/gen-e /tmp/gen-l && /usr/local/lib/systemd/system-generators/ocigen-generator /tmp/gen-n /tmp/gen-e /tmp/gen-l");
      assert.equal(gen.status, 1, `generator exit status with a broken layout: ${gen.status}`);
      const lines = gen.stderr.trim().split("\n").filter((l) => /broken-index/.test(l));
      assert.equal(lines.length, 1, `want one error line naming broken-index, got:\n${gen.stderr}`);
      assert.match(lines[0], /index\.json/, lines[0]);
      assert.equal(g.run("test -e /tmp/gen-n/bb.ref.plain.service").status, 0, "the good layouts were not generated beside the broken one");
      // a layer blob with a changed byte: its service fails to start, clearly; the good one keeps running
      const bad = "broken-blob.ref.plain.service";
      assert.equal(g.show(bad, ["LoadState"]).LoadState, "loaded", `${bad} should be generated (its index is fine)`);
      const r = g.run(`systemctl start ${bad}`, { timeoutMs: 180_000 });
      assert.notEqual(r.status, 0, `${bad} started from a corrupt layer`);
      const j = g.run(`journalctl -b --no-pager -q -u ${q(bad)} -u ${q(`ocigen-extract@${bad}`)}`).stdout;
      assert.match(j, /digest|sha256|corrupt|mismatch/i, `no clear error for the corrupt blob:\n${j}`);
      await g.waitActive(good, 3);
      assert.equal(g.run(`find /var/lib/oci/extracts -path '*broken*' -name busybox 2>/dev/null`).stdout.trim(), "", "a corrupt layer was extracted");
    });

    kase(B, "settings file: extra Volume, excluded tag", async () => {
      assert.equal(g.show("st.ref.skip.service", ["LoadState"]).LoadState, "not-found", "excluded tag still became a unit");
      const unit = "st.ref.keep.service";
      assert.equal(g.show(unit, ["LoadState"]).LoadState, "loaded");
      const a = await startLong(g, unit, /extra-write-/);
      assert.match(a.journal, /extra-write-ok/, a.journal);
      const b = await startLong(g, unit, /extra-write-/, "restart");
      assert.match(b.journal, /extra-had=kept/, `the settings Volume=/extra is not persistent:\n${b.journal}`);
      assert.equal(g.run("cat /srv/st-host/from-image").stdout.trim(), "hostdir-ok", "Volume=/srv/st-host:/hostdir: the image's write is not in the host directory");
    });

    kase(B, "random configs: every unit loaded or refused clearly", async () => {
      const fixture = join(repo, "fixtures/random-configs.ts");
      assert.ok(fs.existsSync(fixture), "fixtures/random-configs.ts is not there (the settings branch adds it)");
      await randomConfigs(g, fixture);
    });
  });

  // ---- boot 2: single binary, no libnss-systemd ----------------------------------------------------
  describe("single binary install, without libnss-systemd", () => {
    let g: Guest;
    const B = "binary-nss";
    let bin = "";
    before(async () => {
      bin = singleBinary();
      g = await bootGuest({
        name: "bin",
        tree,
        binds: [{ src: repo }, { src: dirname(bin), dst: "/opt/ocigen-dist" }],
      });
      seedAfterBoot(g);
    });
    after(async () => {
      await g?.shutdown();
    });

    kase(B, "libnss-systemd absent (precondition)", () => nssAbsent(g));

    kase(B, "install-generator from the single binary", () => {
      g.ok("/opt/ocigen-dist/ocigen install-generator");
      const f = g.ok("head -c 4 /usr/local/bin/ocigen | od -An -c | tr -d ' \\n'");
      assert.equal(f, "177ELF", "usr/local/bin/ocigen is the binary");
      g.ok("systemctl daemon-reload", { timeoutMs: 120_000 });
      assert.equal(g.show("bb.ref.plain.service", ["LoadState"]).LoadState, "loaded");
    });

    kase(B, "plain command (single binary)", async () => {
      await startLong(g, "bb.ref.plain.service", /plain-ok uid=0/);
      assertIds(g, "bb.ref.plain.service", 0, 0);
    });

    kase(B, "named User app, first start (no nss)", async () => {
      nssAbsent(g);
      await startLong(g, "bb.ref.named.service", /named-ok uid=1001 gid=1001/);
      assertIds(g, "bb.ref.named.service", 1001, 1001);
    });

    kase(B, "numeric User 1000:1000 (no nss)", async () => {
      await startLong(g, "bb.ref.numeric.service", /numeric-ok uid=1000 gid=1000/);
      assertIds(g, "bb.ref.numeric.service", 1000, 1000);
    });
  });

  // ---- boot 3: deno run ----------------------------------------------------------------------------
  describe("deno run install", () => {
    let g: Guest;
    const B = "deno";
    before(async () => {
      g = await bootGuest({ name: "deno", tree, binds: [{ src: repo }] });
      seedAfterBoot(g);
    });
    after(async () => {
      await g?.shutdown();
    });

    kase(B, "install-generator through deno run", () => {
      g.ok("node_modules/.bin/deno run --allow-read --allow-write --allow-env --allow-run --allow-sys src/main.ts install-generator", { cwd: repo, timeoutMs: 180_000 });
      assert.match(g.ok("cat /usr/local/bin/ocigen"), /deno/);
      g.ok("systemctl daemon-reload", { timeoutMs: 180_000 });
      assert.equal(g.show("bb.ref.plain.service", ["LoadState"]).LoadState, "loaded", g.run("journalctl -b -q --no-pager | grep -i ocigen | tail -n 20").stdout);
    });

    kase(B, "plain command (deno)", async () => {
      await startLong(g, "bb.ref.plain.service", /plain-ok uid=0/);
      assertIds(g, "bb.ref.plain.service", 0, 0);
    });
  });

  // ---- boot 4: the README's offline generator tour, verbatim ----------------------------------------
  describe("README offline generator tour", () => {
    let g: Guest;
    const B = "tour";
    before(async () => {
      // Node >= 20 and npm (for the tour's `npm ...` steps run from node_modules) as a user gets them from NodeSource (Debian 12's own nodejs is 18): the host's, bound in;
      // `sudo` as on a user's machine (we are root already); the repo writable through an overlay (the tour may build)
      const npm = ["/usr/lib/node_modules/npm", "/usr/local/lib/node_modules/npm"].find((p) => fs.existsSync(p));
      g = await bootGuest({
        name: "tour",
        tree,
        privateNetwork: true, // the tour says it works offline: no network here but loopback
        binds: [
          { src: repo, overlay: true },
          { src: process.execPath, dst: "/usr/local/bin/node" },
          ...(npm ? [{ src: npm, dst: "/usr/local/lib/node_modules/npm" }] : []),
          { src: dirname(singleBinary()), dst: "/opt/ocigen-dist" },
        ],
        prepare: (root) => {
          const bin = join(root, "usr/local/bin");
          fs.mkdirSync(bin, { recursive: true });
          if (npm) {
            fs.symlinkSync("../lib/node_modules/npm/bin/npm-cli.js", join(bin, "npm"));
            fs.symlinkSync("../lib/node_modules/npm/bin/npx-cli.js", join(bin, "npx"));
          }
          if (!fs.existsSync(join(root, "usr/bin/sudo"))) fs.writeFileSync(join(bin, "sudo"), '#!/bin/sh\n# root already: run the command\nexec "$@"\n', { mode: 0o755 });
        },
      });
    });
    after(async () => {
      await g?.shutdown();
    });

    kase(B, "README Offline generator tour, verbatim", () => {
      const readme = fs.readFileSync(join(repo, "README.md"), "utf8");
      const at = readme.search(/^## Offline generator tour\s*$/m);
      assert.ok(at >= 0, "README.md has no `## Offline generator tour` section");
      const block = readme.slice(at).match(/```sh\n([\s\S]*?)```/)?.[1];
      assert.ok(block, "no ```sh block in the tour");
      assert.equal(g.ok("ls /sys/class/net").trim(), "lo", "the tour guest must have no network");
      // the state the tour starts from ("in this checkout after npm ci && npm run build:binary"):
      // node_modules from the host's npm ci, dist/ocigen the binary build:binary makes (built on the host)
      if (/build:binary/.test(readme.slice(at, at + 2000))) g.ok(`cp /opt/ocigen-dist/ocigen dist/ocigen`, { cwd: repo });
      g.ok(`cat > /root/tour.sh`, { input: block });
      const r = g.run("sh -ex /root/tour.sh", { cwd: repo, timeoutMs: 600_000 });
      assert.equal(r.status, 0, `the tour failed (exit ${r.status}):\n${r.stdout}\n${r.stderr.split("\n").slice(-30).join("\n")}`);
      // what the README says it prints ("It prints `...` and `...`")
      const after = readme.slice(at).split("```sh\n")[1].split("```")[1] ?? "";
      const says = after.match(/It prints ([\s\S]*?)\.\s/)?.[1] ?? "";
      const expected = [...says.matchAll(/`([^`]+)`/g)].map((m) => m[1].replace(/\s+/g, " "));
      const out = r.stdout.replace(/[ \t]*\n[ \t]*/g, "\n");
      for (const e of expected) assert.ok(out.split("\n").some((l) => l.includes(e)), `the tour did not print "${e}":\n${r.stdout}`);
      console.log(`tour: exit 0, printed ${expected.length} promised line(s)`);
    });
  });

  describe("harness", () => {
    kase("harness", "cached tree untouched by the boots", () => {
      assert.equal(treeFingerprint(tree), treeBefore, `${tree} changed during the suite (boots must only write their overlays)`);
    });
  });
});

/** Seed and count of the random configs loaded into the guest (the same seed gives the same configs). */
const RANDOM_SEED = 20261206;
const RANDOM_COUNT = 40;

/**
 * Loads the seeded random configs into the guest (one layout each, written
 * by fixtures/random-configs.ts into imagelayoutdir through the host side of
 * its bind mount), reloads, and checks: every unit generated from them is
 * LoadState=loaded, and every layout that got no unit is named by an error
 * of `ocigen generate`.
 */
async function randomConfigs(g: Guest, fixture: string): Promise<void> {
  const mod = await import(fixture) as { writeRandomLayouts?: (dir: string, seed: number, n: number) => { name: string; tag: string }[] };
  assert.equal(typeof mod.writeRandomLayouts, "function", `${fixture} exports no writeRandomLayouts(dir, seed, n)`);
  const imgs = mod.writeRandomLayouts!(join(g.dir, "var-lib-oci", "layouts"), RANDOM_SEED, RANDOM_COUNT);
  assert.equal(imgs.length, RANDOM_COUNT);
  g.ok("systemctl daemon-reload", { timeoutMs: 180_000 });
  // which generated unit came from which layout: its SourcePath=
  const units = new Map<string, string>();
  for (const line of g.run(`grep -H '^SourcePath=${LAYOUTS}/' /run/systemd/generator/*.service`).stdout.split("\n")) {
    const m = line.match(/^\/run\/systemd\/generator\/(.+\.service):SourcePath=(.*)$/);
    if (m) units.set(m[1], m[2].slice(LAYOUTS.length + 1));
  }
  const bad: string[] = [];
  let loaded = 0;
  for (const [unit, layout] of units) {
    if (!layout.startsWith("random.ocigen.test/")) continue;
    const st = g.show(unit, ["LoadState", "LoadError"]);
    if (st.LoadState === "loaded") loaded++;
    else bad.push(`${unit} (${layout}): LoadState=${st.LoadState} ${st.LoadError ?? ""}`);
  }
  const withUnit = new Set([...units.values()]);
  const refused = imgs.filter((i) => !withUnit.has(i.name));
  const gen = g.run("ocigen generate --dry-run /tmp/ocigen-random-out", { timeoutMs: 180_000 });
  const unexplained = refused.filter((i) => !gen.stderr.includes(i.name));
  const warnings = g.run("journalctl -b --no-pager -q -o cat | grep -c '^/run/systemd/generator/test\\.ocigen\\.random'").stdout.trim();
  console.log(`random configs (seed ${RANDOM_SEED}): ${imgs.length} layouts, ${loaded} generated unit files loaded, ${refused.length} layouts refused, ` +
    `${warnings} systemd parse warnings on their units`);
  assert.deepEqual(bad, [], "units systemd did not load");
  assert.deepEqual(unexplained.map((i) => i.name), [], `layouts with no unit and no error naming them; generate said:\n${gen.stderr.slice(0, 2000)}`);
}
