// The settings object (src/settings.ts): every variable it reads, its
// default, and that a value a variable cannot hold falls back to the default.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { defaultSettings, DEFAULT_LOCK_TIMEOUT_MS, settingsFromEnv } from "../src/settings.ts";
import { DEFAULT_PATH } from "../src/util/which.ts";

describe("settings from the environment", () => {
  test("defaults: nothing taken from any environment", () => {
    const s = defaultSettings();
    assert.equal(s.path, DEFAULT_PATH);
    assert.deepEqual(s.childEnv, {});
    assert.equal(s.terminalCapable, true);
    assert.equal(s.columns, undefined);
    assert.equal(s.progressIntervalMs, 100);
    assert.equal(s.gzip, "parallel");
    assert.equal(s.inflate, "auto");
    assert.equal(s.lookahead, true);
    assert.equal(s.copy, "auto");
    assert.equal(s.lockTimeoutMs, DEFAULT_LOCK_TIMEOUT_MS);
    assert.equal(DEFAULT_LOCK_TIMEOUT_MS, 3_600_000);
    assert.equal(s.isolation, "auto");
    assert.equal(s.sourceDateEpoch, undefined);
    assert.equal(s.kmsg, false);
    assert.equal(s.generatorConf, undefined);
    assert.equal(s.self, undefined);
    assert.equal(s.asGenerator, false);
  });

  test("each variable sets its field", () => {
    const env = {
      PATH: "/opt/bin:/bin", TERM: "dumb", COLUMNS: "132", OCIGEN_PROGRESS_INTERVAL_MS: "0", OCIGEN_GZIP: "portable",
      OCIGEN_INFLATE: "worker", OCIGEN_LOOKAHEAD: "0", OCIGEN_COPY: "js", OCIGEN_LOCK_TIMEOUT: "2.5", OCIGEN_ISOLATION: "none",
      SOURCE_DATE_EPOCH: " 1600000000 ", OCIGEN_GENERATOR_CONF: "/etc/x.conf", OCIGEN_SELF: "/usr/local/bin/ocigen",
      OCIGEN_AS_GENERATOR: "1", UNRELATED: "kept for children",
    };
    const s = settingsFromEnv(env);
    assert.equal(s.path, "/opt/bin:/bin");
    assert.equal(s.terminalCapable, false);
    assert.equal(s.columns, 132);
    assert.equal(s.progressIntervalMs, 0);
    assert.equal(s.gzip, "portable");
    assert.equal(s.inflate, "worker");
    assert.equal(s.lookahead, false);
    assert.equal(s.copy, "js");
    assert.equal(s.lockTimeoutMs, 2500);
    assert.equal(s.isolation, "none");
    assert.equal(s.sourceDateEpoch, 1_600_000_000);
    assert.equal(s.generatorConf, "/etc/x.conf");
    assert.equal(s.self, "/usr/local/bin/ocigen");
    assert.equal(s.asGenerator, true);
    assert.equal(s.kmsg, true); // as the generator
    assert.equal(s.childEnv.UNRELATED, "kept for children");
    assert.equal(s.childEnv.PATH, "/opt/bin:/bin");
  });

  test("a value a variable cannot hold gives the default", () => {
    const s = settingsFromEnv({
      OCIGEN_LOCK_TIMEOUT: "soon", OCIGEN_PROGRESS_INTERVAL_MS: "-5", COLUMNS: "wide", OCIGEN_INFLATE: "fast",
      OCIGEN_ISOLATION: "docker", SOURCE_DATE_EPOCH: "yesterday", OCIGEN_GZIP: "best", OCIGEN_COPY: "rsync",
    });
    assert.equal(s.lockTimeoutMs, DEFAULT_LOCK_TIMEOUT_MS);
    assert.equal(s.progressIntervalMs, 100);
    assert.equal(s.columns, undefined);
    assert.equal(s.inflate, "auto");
    assert.equal(s.isolation, "auto");
    assert.equal(s.sourceDateEpoch, undefined);
    assert.equal(s.gzip, "parallel");
    assert.equal(s.copy, "auto");
    assert.equal(settingsFromEnv({ OCIGEN_LOCK_TIMEOUT: "0" }).lockTimeoutMs, DEFAULT_LOCK_TIMEOUT_MS);
  });

  test("kmsg: when systemd runs the program or it runs as ocigen-generator; OCIGEN_KMSG forces it", () => {
    const asGen = { argv: ["node", "/usr/lib/systemd/system-generators/ocigen-generator"], argv0: "node" };
    const plain = { argv: ["node", "/usr/local/bin/ocigen"], argv0: "node" };
    assert.equal(settingsFromEnv({ SYSTEMD_SCOPE: "system" }, plain).kmsg, true);
    assert.equal(settingsFromEnv({ INVOCATION_ID: "x" }, plain).kmsg, true);
    assert.equal(settingsFromEnv({}, plain).kmsg, false);
    assert.equal(settingsFromEnv({}, asGen).kmsg, true);
    assert.equal(settingsFromEnv({}, asGen).asGenerator, true);
    assert.equal(settingsFromEnv({ SYSTEMD_LOG_TARGET: "console" }, asGen).kmsg, false);
    assert.equal(settingsFromEnv({ OCIGEN_KMSG: "0", SYSTEMD_SCOPE: "system" }, plain).kmsg, false);
    assert.equal(settingsFromEnv({ OCIGEN_KMSG: "1" }, plain).kmsg, true);
  });

  test("built once: later changes of the environment do not reach it", () => {
    const env: Record<string, string | undefined> = { OCIGEN_LOCK_TIMEOUT: "7" };
    const s = settingsFromEnv(env);
    env.OCIGEN_LOCK_TIMEOUT = "9";
    env.NEW = "x";
    assert.equal(s.lockTimeoutMs, 7000);
    assert.equal(s.childEnv.NEW, undefined);
  });
});

describe("OCIGEN_LOCK_TIMEOUT reaches the layout lock", () => {
  test("a layout held by a live process: the CLI gives up after the configured wait, naming the lock", async () => {
    const { ocigen, ocigenWith } = await import("./cli-in-process.ts");
    const { withTemp } = await import("../fixtures/layout.ts");
    const { hostName } = await import("../src/fs/atomic.ts");
    const { LOCK_FILE } = await import("../src/oci/layout-lock.ts");
    const fs = await import("node:fs");
    const { join } = await import("node:path");
    const process = (await import("node:process")).default;
    await withTemp("ocigen-settings-lock-", async (dir) => {
      const layout = join(dir, "l");
      assert.equal((await ocigen("init", "--layout", layout)).code, 0);
      // this test's own process holds the lock: alive, so it is never broken as stale
      fs.writeFileSync(join(layout, LOCK_FILE), `${process.pid} ${hostName()}\n`);
      const t0 = Date.now();
      const r = await ocigenWith(settingsFromEnv({ OCIGEN_LOCK_TIMEOUT: "1" }), "new", "--image", `${layout}:x`);
      const took = Date.now() - t0;
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /lock/i);
      assert.ok(took >= 900 && took < 20_000, `waited ${took} ms for a 1 s lock timeout`);
    });
  });
});
