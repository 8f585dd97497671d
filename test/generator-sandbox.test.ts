// Confinement, network, restart and resource lines of generated units
// (src/generator/sandbox.ts): the defaults a plain image gets, what the
// per-image settings change, and the `systemd-analyze security --offline`
// score of the unit a plain image gets (at most 5.0). The score test needs
// systemd-analyze with --offline (systemd >= 252); outside CI it skips when
// that is missing, in CI it fails.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { generate } from "../src/generator/generate.ts";
import type { Reporter } from "../src/generator/report.ts";
import { parseImageSettings } from "../src/generator/settings.ts";
import { capabilitySet, DOCKER_CAPABILITIES, exposedPorts, parseSandboxKey, sandboxLines } from "../src/generator/sandbox.ts";
import { generatorEnv } from "../fixtures/generator.ts";
import { makeLayout } from "../fixtures/layout.ts";

const quiet: Reporter = { error: () => {}, warn: () => {}, info: () => {} };

function rmTemp(d: string): void {
  fs.rmSync(d, { recursive: true, force: true });
}

/** Generates units for layouts `{name: config}` plus settings files; returns unit name -> text. */
async function units(configs: Record<string, object>, settings: Record<string, string> = {}): Promise<Map<string, string>> {
  const e = generatorEnv("ocigen-sandbox-");
  try {
    for (const [name, config] of Object.entries(configs)) {
      makeLayout(join(e.layouts, name), [{ tags: ["latest"], layers: [], config: { config } as never }]);
    }
    for (const [f, t] of Object.entries(settings)) {
      fs.mkdirSync(e.settings, { recursive: true });
      fs.writeFileSync(join(e.settings, f), t);
    }
    const r = await generate({ config: e.cfg, outDir: join(e.tmp, "out"), dryRun: true, print: () => {}, reporter: quiet });
    assert.deepEqual(r.errors, []);
    return new Map(r.units.map((u) => [u.unit, u.text]));
  } finally {
    rmTemp(e.tmp);
  }
}

/** `KEY=` values of a unit text, in order. */
function values(text: string, key: string): string[] {
  return text.split("\n").filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
}

describe("sandbox defaults", () => {
  test("a plain image: Docker's capabilities, no new privileges, a system-call filter, kernel protections, restarts", async () => {
    const u = (await units({ plain: { Cmd: ["/bin/true"] } })).get("plain.ref.latest.service")!;
    assert.deepEqual(values(u, "CapabilityBoundingSet")[0].split(" ").sort(), [...DOCKER_CAPABILITIES].sort());
    assert.equal(DOCKER_CAPABILITIES.length, 14);
    assert.deepEqual(values(u, "NoNewPrivileges"), ["yes"]);
    assert.deepEqual(values(u, "SystemCallFilter"), ["@system-service chroot", "~@keyring kcmp name_to_handle_at userfaultfd"]);
    assert.deepEqual(values(u, "SystemCallErrorNumber"), ["EPERM"]);
    for (const k of ["ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock",
      "ProtectHostname", "RestrictNamespaces", "LockPersonality", "RestrictSUIDSGID", "PrivateDevices"]) {
      assert.deepEqual(values(u, k), ["yes"], k);
    }
    assert.deepEqual(values(u, "Restart"), ["on-failure"]);
    assert.deepEqual(values(u, "StartLimitBurst"), ["5"]);
    assert.deepEqual(values(u, "TimeoutStopSec"), ["10s"]);
    assert.deepEqual(values(u, "SyslogIdentifier"), ["plain:latest"]);
    assert.deepEqual(values(u, "Type"), ["exec"]);
    assert.deepEqual(values(u, "AmbientCapabilities"), []);
    assert.deepEqual(values(u, "PrivateNetwork"), []);
    assert.ok(values(u, "BindReadOnlyPaths").includes("-/etc/hosts -/etc/hostname"));
    assert.doesNotMatch(u, /network-online/, "no ports, no wait for the network");
    // [Unit] keys stay in [Unit]
    const unitSection = u.slice(u.indexOf("[Unit]"), u.indexOf("[Service]"));
    assert.match(unitSection, /\nStartLimitIntervalSec=60s\n/);
  });

  test("exposed ports: network-online ordering and the ports in the planned unit", async () => {
    const e = generatorEnv("ocigen-sandbox-ports-");
    try {
      makeLayout(join(e.layouts, "web"), [{ tags: ["latest"], layers: [], config: { config: { Cmd: ["/bin/true"], ExposedPorts: { "80/tcp": {}, "53/udp": {}, "8080": {} } } } as never }]);
      const r = await generate({ config: e.cfg, outDir: join(e.tmp, "out"), dryRun: true, print: () => {}, reporter: quiet });
      assert.equal(r.units.length, 1);
      assert.deepEqual(r.units[0].ports, ["53/udp", "80/tcp", "8080/tcp"]);
      assert.deepEqual(values(r.units[0].text, "Wants"), ["network-online.target"]);
      assert.ok(values(r.units[0].text, "After").includes("network-online.target"));
    } finally {
      rmTemp(e.tmp);
    }
    assert.deepEqual(exposedPorts({ config: { ExposedPorts: { "bogus": {}, "1000-1002/tcp": {} } } } as never), ["1000-1002/tcp"]);
  });

  test("the notify label and StopSignal", async () => {
    const u = (await units({ n: { Cmd: ["/bin/true"], Labels: { "org.ocigen.notify": "true" }, StopSignal: "SIGQUIT" } })).get("n.ref.latest.service")!;
    assert.deepEqual(values(u, "Type"), ["notify"]);
    assert.deepEqual(values(u, "NotifyAccess"), ["main"]);
    assert.ok(values(u, "BindPaths").includes("/run/systemd/notify"));
    assert.deepEqual(values(u, "KillSignal"), ["SIGQUIT"]);
  });
});

describe("sandbox settings", () => {
  test("capabilities, privileges, filter, network, restarts and resources from a settings file", async () => {
    const m = await units({
      app: { Cmd: ["/bin/true"], User: "1000:1000" },
      free: { Cmd: ["/bin/true"], User: "1000:1000" },
    }, {
      "app.image": "[Image]\nAddCapability=CAP_NET_ADMIN net_bind_service\nDropCapability=CAP_NET_RAW\nSystemCallFilter=@mount ~ptrace\n" +
        "Network=none\nMemory=512M\nCPUQuota=50%\nTasksMax=64\nRestart=always\nRestartSec=5s\nStartLimitBurst=3\nTimeoutStopSec=30s\nNotify=yes\n",
      "free.image": "[Image]\nNoNewPrivileges=no\nSeccompProfile=unconfined\n",
    });
    const a = m.get("app.ref.latest.service")!;
    const caps = values(a, "CapabilityBoundingSet")[0].split(" ");
    assert.ok(caps.includes("CAP_NET_ADMIN") && caps.includes("CAP_NET_BIND_SERVICE") && !caps.includes("CAP_NET_RAW"));
    assert.deepEqual(values(a, "AmbientCapabilities"), ["CAP_NET_ADMIN CAP_NET_BIND_SERVICE"], "a non-root user gets the added capabilities");
    assert.deepEqual(values(a, "SystemCallFilter"), ["@system-service chroot @mount", "~@keyring kcmp name_to_handle_at userfaultfd ptrace"]);
    assert.deepEqual(values(a, "PrivateNetwork"), ["yes"]);
    assert.deepEqual(values(a, "MemoryMax"), ["512M"]);
    assert.deepEqual(values(a, "CPUQuota"), ["50%"]);
    assert.deepEqual(values(a, "TasksMax"), ["64"]);
    assert.deepEqual(values(a, "Restart"), ["always"]);
    assert.deepEqual(values(a, "RestartSec"), ["5s"]);
    assert.deepEqual(values(a, "StartLimitBurst"), ["3"]);
    assert.deepEqual(values(a, "TimeoutStopSec"), ["30s"]);
    assert.deepEqual(values(a, "Type"), ["notify"]);
    const f = m.get("free.ref.latest.service")!;
    assert.deepEqual(values(f, "NoNewPrivileges"), ["no"]);
    // systemd would imply no_new_privs for a non-root service with any of these: they go
    for (const k of ["SystemCallFilter", "LockPersonality", "RestrictSUIDSGID", "ProtectClock", "PrivateDevices", "RestrictNamespaces", "ProtectKernelTunables", "ProtectHostname"]) {
      assert.deepEqual(values(f, k), [], k);
    }
    assert.equal(values(f, "CapabilityBoundingSet").length, 1, "the bounding set stays");
    assert.deepEqual(values(f, "ProtectControlGroups"), ["yes"]);
  });

  test("bad values name the file and line", () => {
    for (const [line, re] of [
      ["AddCapability=CAP_FLY", /app\.image:2: AddCapability= "CAP_FLY" is not a capability/],
      ["Memory=lots", /app\.image:2: Memory= must be bytes/],
      ["Network=bridge", /app\.image:2: Network= must be host or none/],
      ["Restart=sometimes", /app\.image:2: Restart= must be one of/],
      ["NoNewPrivileges=maybe", /app\.image:2: NoNewPrivileges= must be yes or no/],
      ["SystemCallFilter=mount;reboot", /app\.image:2: SystemCallFilter= "mount;reboot" is not a system call/],
      ["CpuQuota=50%", /app\.image:2: unknown key CpuQuota= \(did you mean CPUQuota=\?\)/],
    ] as const) {
      assert.throws(() => parseImageSettings(`[Image]\n${line}\n`, "/etc/ocigen/app.image", "layout"), re, line);
    }
  });

  test("capability arithmetic and list resets", () => {
    assert.deepEqual(capabilitySet({ dropCapabilities: ["ALL"], addCapabilities: ["CAP_KILL"] }), []);
    assert.ok(capabilitySet({ addCapabilities: ["ALL"] }).includes("CAP_SYS_ADMIN"));
    const s = parseSandboxKey(parseSandboxKey({}, "AddCapability", "CAP_KILL"), "AddCapability", "");
    assert.deepEqual(s.addCapabilities, []);
    // root keeps the seccomp options with NoNewPrivileges=no (systemd implies no_new_privs only for unprivileged services)
    const p = sandboxLines({ config: { config: {} } as never, settings: { noNewPrivileges: false }, uid: 0, systemd: true, identifier: "x:y" });
    assert.ok(p.service.includes("NoNewPrivileges=no") && p.service.some((l) => l.startsWith("SystemCallFilter=")));
    // runc mode: the runtime confines; restart and resource lines stay
    const r = sandboxLines({ config: { config: {} } as never, settings: { memory: "1G" }, uid: 0, systemd: false, identifier: "x:y" });
    assert.ok(!r.service.some((l) => /^(CapabilityBoundingSet|SystemCallFilter|NoNewPrivileges)=/.test(l)));
    assert.ok(r.service.includes("MemoryMax=1G") && r.service.includes("Restart=on-failure"));
    assert.equal(sandboxLines({ config: { config: {} } as never, settings: { notify: true }, uid: 0, systemd: false, identifier: "x:y" }).type, "exec", "no notify under runc");
  });
});

describe("systemd-analyze security", () => {
  const analyze = spawnSync("systemd-analyze", ["security", "--help"], { encoding: "utf8" });
  const missing = analyze.error ? "systemd-analyze is not installed" : !/--offline/.test(analyze.stdout) ? "systemd-analyze has no --offline (systemd < 252)" : "";
  const skip = missing && !process.env.CI ? `skipped: ${missing}` : false;
  test("the unit of a plain image scores at most 5.0 offline", { skip }, async () => {
    if (missing) assert.fail(missing);
    const u = (await units({ plain: { Cmd: ["/bin/true"] } })).get("plain.ref.latest.service")!;
    const dir = fs.mkdtempSync("/tmp/ocigen-analyze-");
    try {
      const f = join(dir, "plain.ref.latest.service");
      fs.writeFileSync(f, u);
      const r = spawnSync("systemd-analyze", ["security", "--offline=yes", "--no-pager", f], { encoding: "utf8", env: { ...process.env, SYSTEMD_COLORS: "0" } });
      const m = /Overall exposure level for \S+: ([0-9.]+)/.exec(r.stdout + r.stderr);
      assert.ok(m, `no score in: ${r.stdout}${r.stderr}`);
      const score = Number(m[1]);
      console.log(`systemd-analyze security --offline=yes: plain image unit scores ${score}`);
      assert.ok(score <= 5.0, `score ${score} > 5.0\n${r.stdout}`);
      for (const k of ["CapabilityBoundingSet=", "NoNewPrivileges=yes", "SystemCallFilter="]) assert.ok(u.includes(`\n${k}`), k);
    } finally {
      rmTemp(dir);
    }
  });
});
