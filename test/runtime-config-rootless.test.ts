// Rootless runtime config: the runtime config of a rootless unpack (`unpack --rootless`, automatic
// when not root) must be runnable by a rootless runtime, as umoci's is. Before the fix it had
// a user namespace with NO uid/gid mappings (runc: "user namespaces enabled, but no uid
// mappings found") and a network namespace an unprivileged user cannot set up.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { convertConfig, type ImageConfig, parseIdMap } from "../src/mod.ts";
import { have } from "../src/util/which.ts";

const config: ImageConfig = { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, config: { Cmd: ["/bin/sh"] } };

test("default mappings are the calling user, no network namespace, host resolv.conf", () => {
  const spec = convertConfig(config, { rootless: true });
  const linux = spec.linux as { namespaces: Array<{ type: string }>; uidMappings: unknown; gidMappings: unknown; resources?: unknown };
  assert.deepEqual(linux.uidMappings, [{ containerID: 0, hostID: process.geteuid?.() ?? 0, size: 1 }]);
  assert.deepEqual(linux.gidMappings, [{ containerID: 0, hostID: process.getegid?.() ?? 0, size: 1 }]);
  assert.deepEqual(linux.namespaces.map((n) => n.type).sort(), ["ipc", "mount", "pid", "user", "uts"]);
  assert.equal(linux.resources, undefined);
  assert.ok(spec.mounts.some((m) => m.destination === "/etc/resolv.conf" && m.type === "bind"));
  assert.ok(spec.mounts.some((m) => m.destination === "/sys" && m.type === "bind"));
  assert.ok(!spec.mounts.some((m) => m.destination === "/sys/fs/cgroup"));

  const mapped = convertConfig(config, { rootless: true, uidMappings: [parseIdMap("0:1000:65536")], gidMappings: [parseIdMap("0:2000:1")] });
  assert.deepEqual((mapped.linux as { uidMappings: unknown }).uidMappings, [{ containerID: 0, hostID: 1000, size: 65536 }]);
  assert.deepEqual((mapped.linux as { gidMappings: unknown }).gidMappings, [{ containerID: 0, hostID: 2000, size: 1 }]);

  const rootful = convertConfig(config, {});
  const rl = rootful.linux as { namespaces: Array<{ type: string }>; uidMappings?: unknown };
  assert.ok(rl.namespaces.some((n) => n.type === "network"));
  assert.equal(rl.uidMappings, undefined);
  assert.ok(!rootful.mounts.some((m) => m.destination === "/etc/resolv.conf"));
});

test("namespaces, mappings and mounts as `umoci raw runtime-config --rootless`", async (t) => {
  if (!have("umoci")) {
    if (process.env.CI) assert.fail("umoci not installed");
    t.skip("umoci not installed");
    return;
  }
  const { Layout, newImage, configImage } = await import("../src/mod.ts");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-rootless-config-"));
  try {
    const layout = await Layout.init(path.join(dir, "l"));
    await newImage(layout, "t");
    await configImage(layout, "t", { cmd: ["/bin/sh"] });
    const out = path.join(dir, "umoci.json");
    execFileSync("umoci", ["raw", "runtime-config", "--rootless", "--image", `${layout.dir}:t`, out], { stdio: "ignore" });
    const theirs = JSON.parse(fs.readFileSync(out, "utf8"));
    const mine = convertConfig((await layout.resolve("t")).config, { rootless: true });
    const l = mine.linux as Record<string, unknown>;
    const ns = (x: Array<{ type: string }>) => x.map((n) => n.type).sort();
    assert.deepEqual(ns(l.namespaces as Array<{ type: string }>), ns(theirs.linux.namespaces));
    assert.deepEqual(l.uidMappings, theirs.linux.uidMappings);
    assert.deepEqual(l.gidMappings, theirs.linux.gidMappings);
    const key = (m: { destination: string; type?: string }) => `${m.destination} ${m.type}`;
    assert.deepEqual(mine.mounts.map(key).sort(), theirs.mounts.map(key).sort());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
