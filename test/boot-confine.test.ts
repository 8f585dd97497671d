// Confinement, restarts and lifecycle of generated services on a booted
// systemd 252 (the boot harness of fixtures/boot.ts: systemd-nspawn over an
// overlay of the cached Debian 12 tree, with its own network namespace).
// Each case reads what the image's own process printed:
// - a root process cannot load a kernel module, set the clock or mount
//   (EPERM), and its capability bounding set is Docker's;
// - a non-root user binds port 80 only with AddCapability=CAP_NET_BIND_SERVICE;
// - a setuid-root binary gains nothing under the default NoNewPrivileges=yes
//   and gains root with NoNewPrivileges=no;
// - a command that exits 1 is restarted per the default and stops being
//   restarted at the start limit;
// - a removed tag's unit is gone after daemon-reload, `ocigen gc-extracts`
//   stops the still-running service and collects its extracted tree, and its
//   volume stays on disk.
// Runs as root under Node; outside CI it skips with the reason when it
// cannot run, in CI (CI=true) it fails instead. Needs dist/ built (npm ci).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { bootGuest, bootSuite, ensureTree, type Guest, hostOk, q } from "../fixtures/boot.ts";
import { BUSYBOX, baseRootfs } from "../fixtures/boot-images.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const LAYOUTS = "/var/lib/oci/layouts";

/** What the images need beyond the boot harness (see `bootSuite`). */
function unavailable(): string | undefined {
  if (!BUSYBOX) return "static busybox is not installed (busybox-static)";
  if (spawnSync("sh", ["-c", "command -v umoci && command -v cc"]).status !== 0) return "umoci and a C compiler (gcc) are needed to make the test images";
  if (!fs.existsSync(join(repo, "dist/ocigen.mjs"))) return "dist/ocigen.mjs is not built (npm ci)";
  return undefined;
}
const { why, skip } = bootSuite("confinement boot suite", unavailable);

/** A static program that prints its effective and real uid (made setuid root in the image). */
const SUID_PROBE = `#include <stdio.h>
#include <unistd.h>
int main(void) { printf("suid-probe euid=%d uid=%d\\n", (int)geteuid(), (int)getuid()); return 0; }
`;

/** A static program that tells systemd it is ready (sd_notify's READY=1 by hand), then waits. */
const NOTIFY_PROBE = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(void) {
  const char *p = getenv("NOTIFY_SOCKET");
  if (!p) { puts("notify-no-socket"); return 1; }
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  strncpy(a.sun_path, p, sizeof a.sun_path - 1);
  if (a.sun_path[0] == '@') a.sun_path[0] = 0;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&a, sizeof a) < 0) { perror("notify-sendto"); return 1; }
  puts("notify-sent"); fflush(stdout);
  for (;;) pause();
}
`;

/** What the probe image's root process tries; each line names the attempt and its outcome. */
const PROBE = [
  `grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/self/status`,
  `insmod /mod.ko 2>&1; echo "insmod-rc=$?"`,
  // the time asked for is the current one, so a confinement that fails never moves the host's clock
  `date -s "@$(date +%s)" 2>&1; echo "date-rc=$?"`,
  `mkdir -p /mnt/x; mount -t tmpfs none /mnt/x 2>&1; echo "mount-rc=$?"`,
  `echo probe-done`,
].join("; ");

const BIND80 = `nc -l -p 80 -e true 2>&1 & p=$!; sleep 1; if kill -0 $p 2>/dev/null; then echo "bind80-ok uid=$(id -u)"; else echo "bind80-failed uid=$(id -u)"; fi; exec sleep 100000`;

const TAGS: Record<string, { cmd: string[]; user?: string; volumes?: string[]; labels?: string[] }> = {
  // the probe's output also goes to a file in a host directory (journald may drop lines of a process this short)
  probe: { cmd: ["/bin/sh", "-c", `{ ${PROBE}; } >/out/probe.log 2>&1; cat /out/probe.log`] },
  bind80: { cmd: ["/bin/sh", "-c", BIND80], user: "1001:1001" },
  nobind80: { cmd: ["/bin/sh", "-c", BIND80], user: "1001:1001" },
  suid: { cmd: ["/bin/sh", "-c", "/bin/suid-probe >/out/suid.log 2>&1; cat /out/suid.log"], user: "1001:1001" },
  suidfree: { cmd: ["/bin/sh", "-c", "/bin/suid-probe >/out/suidfree.log 2>&1; cat /out/suidfree.log"], user: "1001:1001" },
  fail: { cmd: ["/bin/sh", "-c", "echo fail-run >>/out/fail.log; echo fail-run; exit 1"] },
  notify: { cmd: ["/bin/notify-probe"], labels: ["org.ocigen.notify=true"] },
};

function configTag(dir: string, from: string, tag: string, spec: { cmd: string[]; user?: string; volumes?: string[]; labels?: string[] }): void {
  const args = ["umoci", "config", "--image", `${dir}:${from}`, "--tag", tag, "--clear=config.entrypoint", "--clear=config.cmd"];
  for (const c of spec.cmd) args.push(`--config.cmd=${c}`);
  if (spec.user) args.push(`--config.user=${spec.user}`);
  for (const v of spec.volumes ?? []) args.push(`--config.volume=${v}`);
  for (const l of spec.labels ?? []) args.push(`--config.label=${l}`);
  hostOk(args);
}

/** Builds layouts `cf` (the probes) and `lc` (lifecycle, tags keep and gone) under `dir`, and `lc`'s index without `gone`. */
function buildImages(dir: string): { layouts: string; lcIndexWithoutGone: string } {
  const layouts = join(dir, "layouts");
  fs.mkdirSync(layouts, { recursive: true });
  const probe = join(dir, "suid-probe");
  fs.writeFileSync(`${probe}.c`, SUID_PROBE);
  hostOk(["cc", "-static", "-O2", "-s", "-o", probe, `${probe}.c`]);
  const notify = join(dir, "notify-probe");
  fs.writeFileSync(`${notify}.c`, NOTIFY_PROBE);
  hostOk(["cc", "-static", "-O2", "-s", "-o", notify, `${notify}.c`]);
  for (const name of ["cf", "lc"]) {
    const l = join(layouts, name);
    hostOk(["umoci", "init", "--layout", l]);
    hostOk(["umoci", "new", "--image", `${l}:base`]);
    const bundle = join(dir, `bundle-${name}`);
    hostOk(["umoci", "unpack", "--image", `${l}:base`, bundle]);
    const root = join(bundle, "rootfs");
    baseRootfs(root, "v1");
    if (name === "cf") {
      fs.copyFileSync(probe, join(root, "bin/suid-probe"));
      fs.chownSync(join(root, "bin/suid-probe"), 0, 0);
      fs.chmodSync(join(root, "bin/suid-probe"), 0o4755);
      fs.copyFileSync(notify, join(root, "bin/notify-probe"));
      fs.chmodSync(join(root, "bin/notify-probe"), 0o755);
      fs.writeFileSync(join(root, "mod.ko"), "not really a module, the kernel never reads it\n");
      fs.mkdirSync(join(root, "mnt"), { recursive: true });
    }
    hostOk(["umoci", "repack", "--image", `${l}:base`, bundle]);
    fs.rmSync(bundle, { recursive: true, force: true });
    if (name === "cf") for (const [tag, spec] of Object.entries(TAGS)) configTag(l, "base", tag, spec);
    else {
      configTag(l, "base", "keep", { cmd: ["/bin/sh", "-c", "echo keep-ok; exec sleep 100000"] });
      configTag(l, "base", "gone", { cmd: ["/bin/sh", "-c", "echo precious > /data/kept; echo gone-ok; exec sleep 100000"], volumes: ["/data"] });
    }
    hostOk(["umoci", "rm", "--image", `${l}:base`]);
  }
  const copy = join(dir, "lc-copy");
  hostOk(["cp", "-a", join(layouts, "lc"), copy]);
  hostOk(["umoci", "rm", "--image", `${copy}:gone`]);
  const lcIndexWithoutGone = join(dir, "lc-index-without-gone.json");
  fs.copyFileSync(join(copy, "index.json"), lcIndexWithoutGone);
  return { layouts, lcIndexWithoutGone };
}

describe("boot: confinement, restarts and lifecycle of generated services", { skip, timeout: 900_000 }, () => {
  let g: Guest;
  let work = "";
  const t0 = Date.now();
  const times: string[] = [];

  before(async () => {
    if (why) throw new Error(`CI=true but the confinement boot suite cannot run: ${why}`);
    const { tree } = ensureTree((s) => console.log(s));
    work = fs.mkdtempSync("/var/tmp/ocigen-confine-");
    const imgs = buildImages(join(work, "images"));
    g = await bootGuest({
      name: "confine",
      tree,
      privateNetwork: true,
      // the guest keeps CAP_SYS_TIME so that only the unit's confinement can stop the clock probe (which asks for the current time)
      allowSetClock: true,
      binds: [{ src: repo }, { src: process.execPath, dst: "/usr/local/bin/node" }],
      prepare: (root) => fs.copyFileSync(imgs.lcIndexWithoutGone, join(root, "root/lc-index-without-gone.json")),
    });
    hostOk(["cp", "-a", imgs.layouts, join(g.dir, "var-lib-oci", "layouts")]);
    g.ok("node dist/ocigen.mjs install-generator", { cwd: repo });
    g.ok("mkdir -p /etc/ocigen");
    g.ok(`printf '[Image]\\nAddCapability=CAP_NET_BIND_SERVICE\\n' > '/etc/ocigen/cf:bind80.image'`);
    // the probes' output also goes to files in a host directory: journald may miss lines of processes this short
    g.ok("mkdir -p /root/probe-out && chmod 1777 /root/probe-out");
    for (const t of ["probe", "suid", "fail"]) g.ok(`printf '[Image]\\nVolume=/root/probe-out:/out\\n' > '/etc/ocigen/cf:${t}.image'`);
    g.ok(`printf '[Image]\\nNoNewPrivileges=no\\nVolume=/root/probe-out:/out\\n' > '/etc/ocigen/cf:suidfree.image'`);
    g.ok(`printf '[Image]\\nMemory=64M\\nCPUQuota=50%%\\nTasksMax=32\\n' > '/etc/ocigen/cf:nobind80.image'`);
    g.ok("systemctl daemon-reload", { timeoutMs: 120_000 });
    times.push(`boot+install ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  after(async () => {
    await g?.shutdown();
    if (work) fs.rmSync(work, { recursive: true, force: true });
    console.log(`confinement boot suite: ${times.join(", ")}; total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  test("the default unit's sandbox is what systemd runs", () => {
    const p = g.show("cf.ref.probe.service", ["LoadState", "NoNewPrivileges", "CapabilityBoundingSet", "SystemCallErrorNumber", "ProtectClock", "Restart"]);
    assert.equal(p.LoadState, "loaded");
    assert.equal(p.NoNewPrivileges, "yes");
    assert.equal(p.ProtectClock, "yes");
    assert.equal(p.Restart, "on-failure");
    assert.match(p.CapabilityBoundingSet, /cap_net_bind_service/);
    assert.doesNotMatch(p.CapabilityBoundingSet, /cap_sys_admin|cap_sys_module|cap_sys_time/);
    console.log(g.run("systemctl cat cf.ref.probe.service").stdout.replace(/^/gm, "unit| "));
  });

  test("a root process cannot load a module, set the clock or mount: EPERM", () => {
    const s = Date.now();
    const r = g.runToEnd("cf.ref.probe.service");
    const out = g.ok("cat /root/probe-out/probe.log");
    console.log(out.replace(/^/gm, "probe| "));
    assert.equal(r.exitStatus, 0, `probe exit ${r.exitStatus}\n${g.diagnose("cf.ref.probe.service")}`);
    assert.match(out, /probe-done/);
    assert.match(out, /insmod: can't insert '\/mod\.ko': Operation not permitted/);
    assert.match(out, /insmod-rc=1/);
    assert.match(out, /date: can't set date: Operation not permitted/);
    // busybox date exits 0 even when it could not set the clock: its message is what tells
    // busybox mount reports EPERM as "permission denied (are you root?)"
    assert.match(out, /mount: permission denied \(are you root\?\)|mount: .*Operation not permitted/);
    assert.match(out, /mount-rc=(1|255)/);
    assert.match(out, /NoNewPrivs:\s+1/);
    assert.match(out, /Seccomp:\s+2/);
    // Docker's 14 capabilities less MKNOD (PrivateDevices=): 0x...a80405fb minus bit 27 (CAP_MKNOD)
    const bnd = BigInt(`0x${out.match(/CapBnd:\s+([0-9a-f]+)/)![1]}`);
    const bits = (n: bigint) => [...Array(64).keys()].filter((i) => (n >> BigInt(i)) & 1n);
    assert.deepEqual(bits(bnd), [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 29, 31], `CapBnd ${bnd.toString(16)}`);
    times.push(`probe ${((Date.now() - s) / 1000).toFixed(1)} s`);
  });

  test("AddCapability=CAP_NET_BIND_SERVICE lets a non-root user bind port 80; without it the bind fails", async () => {
    g.ok("systemctl start cf.ref.bind80.service cf.ref.nobind80.service", { timeoutMs: 120_000 });
    const ok = await g.waitJournal("cf.ref.bind80.service", /bind80-(ok|failed)/);
    assert.match(ok, /bind80-ok uid=1001/, ok);
    assert.match(g.ok("cat /proc/net/tcp /proc/net/tcp6"), /:0050 0+:0000 0A/, "nothing listens on port 80");
    const no = await g.waitJournal("cf.ref.nobind80.service", /bind80-(ok|failed)/);
    assert.match(no, /bind80-failed uid=1001/, no);
    assert.match(no, /Permission denied/);
    // resource limits from the settings file, as systemd applies them
    const lim = g.show("cf.ref.nobind80.service", ["MemoryMax", "CPUQuotaPerSecUSec", "TasksMax"]);
    assert.deepEqual(lim, { MemoryMax: String(64 << 20), CPUQuotaPerSecUSec: "500ms", TasksMax: "32" });
    const cgroup = `/sys/fs/cgroup${g.show("cf.ref.nobind80.service", ["ControlGroup"]).ControlGroup}`;
    // the kernel's side, where this container's cgroup tree has the controllers (nspawn may not delegate them)
    const controllers = g.run(`cat ${q(cgroup)}/cgroup.controllers`).stdout.split(/\s+/);
    if (controllers.includes("memory")) assert.equal(g.ok(`cat ${q(cgroup)}/memory.max`).trim(), String(64 << 20));
    if (controllers.includes("pids")) assert.equal(g.ok(`cat ${q(cgroup)}/pids.max`).trim(), "32");
    console.log(`resource limits: ${JSON.stringify(lim)}; cgroup ${cgroup} controllers: ${controllers.join(" ") || "(none visible)"}`);
    const amb = g.show("cf.ref.bind80.service", ["AmbientCapabilities"]).AmbientCapabilities;
    assert.match(amb, /cap_net_bind_service/);
    g.ok("systemctl stop cf.ref.bind80.service cf.ref.nobind80.service");
  });

  test("NoNewPrivileges keeps a setuid binary from gaining root unless the setting allows it", () => {
    g.runToEnd("cf.ref.suid.service");
    const blocked = g.ok("cat /root/probe-out/suid.log");
    assert.match(blocked, /suid-probe euid=1001 uid=1001/, `${blocked}\n${g.diagnose("cf.ref.suid.service")}`);
    g.runToEnd("cf.ref.suidfree.service");
    const allowed = g.ok("cat /root/probe-out/suidfree.log");
    assert.match(allowed, /suid-probe euid=0 uid=1001/, `${allowed}\n${g.diagnose("cf.ref.suidfree.service")}`);
    assert.equal(g.show("cf.ref.suidfree.service", ["NoNewPrivileges"]).NoNewPrivileges, "no");
  });

  test("an image labelled org.ocigen.notify=true runs as Type=notify and is started once it says READY=1", async () => {
    const unit = "cf.ref.notify.service";
    assert.equal(g.show(unit, ["Type"]).Type, "notify");
    const s = Date.now();
    const r = g.run(`systemctl start ${q(unit)}`, { timeoutMs: 150_000 });
    assert.equal(r.status, 0, `${r.stderr}\n${g.diagnose(unit)}`);
    const st = g.show(unit, ["ActiveState", "SubState", "StatusErrno"]);
    assert.equal(st.ActiveState, "active", g.diagnose(unit));
    await g.waitJournal(unit, /notify-sent/);
    assert.ok(Date.now() - s < 30_000, "the start waited for the timeout, not for READY=1");
    assert.match(g.run("journalctl -t cf:notify --no-pager -q -o cat").stdout, /notify-sent/, "journalctl -t LAYOUT:TAG finds the image's output");
    g.ok(`systemctl stop ${q(unit)}`);
  });

  test("a command that exits 1 is restarted, then stops at the start limit", async () => {
    const s = Date.now();
    const unit = "cf.ref.fail.service";
    g.run(`systemctl start ${q(unit)}`, { timeoutMs: 60_000 });
    let st: Record<string, string> = {};
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      st = g.show(unit, ["ActiveState", "Result", "NRestarts"]);
      if (st.ActiveState === "failed") break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(st.ActiveState, "failed", `${unit} never gave up: ${JSON.stringify(st)}\n${g.diagnose(unit)}`);
    const sys = g.run(`journalctl --no-pager -q -o cat -u ${q(unit)}`).stdout;
    assert.match(sys, /Start request repeated too quickly/, `${unit}: ${JSON.stringify(st)}\n${g.diagnose(unit)}`);
    const runs = (g.ok("cat /root/probe-out/fail.log").match(/^fail-run$/gm) ?? []).length;
    // StartLimitBurst=5 starts in StartLimitIntervalSec=60s: the first and 4 restarts run, the 5th restart is refused
    assert.equal(runs, 5, `the command ran ${runs} times, want StartLimitBurst=5\n${g.diagnose(unit)}`);
    assert.equal(Number(st.NRestarts), 5, "restarts scheduled (the last one refused by the limit)");
    console.log(`exit-1 service: ${runs} runs, NRestarts=${st.NRestarts}, then failed (start limit) after ${((Date.now() - s) / 1000).toFixed(1)} s`);
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal(g.show(unit, ["ActiveState"]).ActiveState, "failed", "restarted after the limit");
    assert.equal((g.ok("cat /root/probe-out/fail.log").match(/^fail-run$/gm) ?? []).length, 5);
    times.push(`restart limit ${((Date.now() - s) / 1000).toFixed(1)} s`);
  });

  test("a removed tag: unit gone at daemon-reload, gc stops the service and collects its tree, the volume stays", async () => {
    const unit = "lc.ref.gone.service";
    g.ok(`systemctl start ${q(unit)} lc.ref.keep.service`, { timeoutMs: 120_000 });
    await g.waitActive(unit, 1);
    await g.waitJournal(unit, /gone-ok/);
    const vol = "/var/lib/ocigen/volumes/lc.ref.gone/data/kept";
    assert.equal(g.ok(`cat ${vol}`).trim(), "precious");
    const tree = g.ok("readlink -f /var/lib/oci/extracts/lc.ref.gone/rootfs").trim();
    assert.match(tree, /^\/var\/lib\/oci\/extracts\/\.store\//);
    // the tag goes (as `umoci rm` or `skopeo` would leave the layout), then the generator runs again
    g.ok(`cp /root/lc-index-without-gone.json ${LAYOUTS}/lc/.index.json.new && mv ${LAYOUTS}/lc/.index.json.new ${LAYOUTS}/lc/index.json`);
    g.ok("systemctl daemon-reload", { timeoutMs: 120_000 });
    assert.notEqual(g.run(`systemctl cat ${q(unit)}`).status, 0, "the removed tag's unit is still known");
    assert.ok(!fs.existsSync(join(g.root, "run/systemd/generator", unit)), "the unit file is still generated");
    const left = g.show(unit, ["LoadState", "ActiveState"]);
    assert.equal(left.LoadState, "not-found");
    console.log(`removed tag after daemon-reload: LoadState=${left.LoadState} ActiveState=${left.ActiveState} (systemd keeps a running unit)`);
    const gc = g.run("ocigen gc-extracts", { timeoutMs: 120_000 });
    console.log(`gc-extracts: ${gc.stdout}${gc.stderr}`.trim().replace(/^/gm, "gc| "));
    assert.equal(gc.status, 0, gc.stderr);
    assert.match(gc.stdout, /stopped lc\.ref\.gone\.service/);
    assert.match(gc.stdout, /removed \/var\/lib\/oci\/extracts\/lc\.ref\.gone/);
    assert.notEqual(g.show(unit, ["ActiveState"]).ActiveState, "active");
    assert.equal(g.run(`test -e ${q(tree)}`).status, 1, `the removed tag's tree ${tree} is still there`);
    assert.equal(g.run("mountpoint -q /run/ocigen/lc.ref.gone/root").status !== 0, true, "its root is still mounted");
    assert.equal(g.ok(`cat ${vol}`).trim(), "precious", "gc deleted the volume");
    assert.match(gc.stderr, /volume \/var\/lib\/ocigen\/volumes\/lc\.ref\.gone belongs to no current tag/);
    // the other tag's service was not touched
    assert.equal(g.show("lc.ref.keep.service", ["ActiveState"]).ActiveState, "active");
    // only the explicit command deletes a volume
    assert.match(g.ok("ocigen volume ls"), /lc\.ref\.gone \(orphaned\)/);
    g.ok("ocigen volume rm lc.ref.gone.service");
    assert.equal(g.run(`test -e /var/lib/ocigen/volumes/lc.ref.gone`).status, 1);
  });
});
