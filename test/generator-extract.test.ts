// `ocigen extract` and `ocigen gc-extracts`: first run extracts, second is a no-op,
// a moved tag gets a new rootfs, concurrent runs extract once and both succeed,
// a corrupt layer fails and leaves the previous rootfs served; user checks,
// runc bundles, and the generator reading the extracted rootfs (users, Atomic).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { spawn } from "node:child_process";
import { makeLayout, mkTemp, putImage, rmTemp, tarFiles, treeHash } from "../fixtures/layout.ts";
import { Layout } from "../src/oci/layout.ts";
import { type GeneratorEnv, generatorEnv, have } from "../fixtures/generator.ts";
import { extract } from "../src/generator/extract.ts";
import { gcExtracts } from "../src/generator/gc.ts";
import { generate } from "../src/generator/generate.ts";
import { storeRootfs } from "../src/store/paths.ts";
import type { Descriptor } from "../src/oci/types.ts";
import { main } from "../src/cli/main.ts";

type Env = GeneratorEnv;

function setup(): Env {
  return generatorEnv("ocigen-extract-");
}

const PASSWD = "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:101:nginx:/:/bin/false\n";

function image(marker: string, extra: Partial<Record<string, unknown>> = {}) {
  return {
    layers: [
      tarFiles([{ name: "etc/", dir: true }, { name: "etc/passwd", data: PASSWD }, { name: "bin/", dir: true }]),
      tarFiles([{ name: "marker", data: marker }]),
    ],
    config: { config: { Cmd: ["/bin/true"], ...extra } } as never,
  };
}

async function retag(dir: string, tag: string, desc: Descriptor): Promise<void> {
  const l = await Layout.open(dir);
  await l.setTag(tag, desc);
}

describe("ocigen extract", () => {
  test("first run extracts, second is a no-op, a moved tag gets a new rootfs, gc removes the old one", async () => {
    const e = setup();
    try {
      const dir = join(e.layouts, "myorg.com/app");
      makeLayout(dir, [{ tags: ["stable"], ...image("one") }]);
      const r1 = await extract({ config: e.cfg, name: "myorg.com/app", tag: "stable" });
      assert.equal(r1.extracted, true);
      assert.equal(r1.changed, true);
      assert.equal(r1.rootfs, join(e.extracts, "com.myorg.app.ref.stable/rootfs"));
      assert.equal(fs.readlinkSync(r1.rootfs), `../.store/sha256/${r1.manifest.slice(7)}/rootfs`);
      assert.equal(fs.readFileSync(join(r1.rootfs, "marker"), "utf8"), "one");
      assert.deepEqual(JSON.parse(fs.readFileSync(join(e.extracts, "com.myorg.app.ref.stable/current.json"), "utf8")), { name: "myorg.com/app", tag: "stable", manifest: r1.manifest });

      const before = treeHash(e.extracts);
      const r2 = await extract({ config: e.cfg, name: "myorg.com/app", tag: "stable" });
      assert.equal(r2.extracted, false);
      assert.equal(r2.changed, false);
      assert.equal(treeHash(e.extracts), before, "a no-op changes nothing");

      const img2 = putImage(dir, image("two"));
      await retag(dir, "stable", img2.manifest);
      const r3 = await extract({ config: e.cfg, name: "myorg.com/app", tag: "stable" });
      assert.equal(r3.extracted, true);
      assert.notEqual(r3.manifest, r1.manifest);
      assert.equal(fs.readFileSync(join(r3.rootfs, "marker"), "utf8"), "two");
      assert.ok(fs.existsSync(r1.store), "the old rootfs stays until gc");

      const dry = await gcExtracts({ config: e.cfg, dryRun: true });
      assert.deepEqual(dry.removed, [join(e.extracts, ".store/sha256", r1.manifest.slice(7))]);
      assert.ok(fs.existsSync(r1.store));
      const gc = await gcExtracts({ config: e.cfg });
      assert.deepEqual(gc.removed, dry.removed);
      assert.deepEqual(gc.errors, []);
      assert.equal(fs.existsSync(r1.store), false);
      assert.ok(fs.existsSync(r3.store));

      // A removed tag: its unit directory and rootfs go.
      await (await Layout.open(dir)).removeTag("stable");
      const gc2 = await gcExtracts({ config: e.cfg });
      assert.deepEqual(gc2.removed.sort(), [join(e.extracts, "com.myorg.app.ref.stable"), join(e.extracts, ".store/sha256", r3.manifest.slice(7))].sort());
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("two concurrent runs (separate processes, two units of one image): one extraction, both succeed", async () => {
    const e = setup();
    try {
      const dir = join(e.layouts, "app");
      makeLayout(dir, [{ tags: ["a", "b"], ...image("same") }]);
      const run = (tag: string) =>
        new Promise<{ code: number; err: string }>((resolve) => {
          const p = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "--log", "info", "extract", "--config", e.conf, "--name", "app", "--ref", tag], { stdio: ["ignore", "ignore", "pipe"] });
          let err = "";
          p.stderr.on("data", (d) => (err += d));
          p.on("close", (code) => resolve({ code: code ?? 1, err }));
        });
      const [a, b] = await Promise.all([run("a"), run("b")]);
      assert.equal(a.code, 0, a.err);
      assert.equal(b.code, 0, b.err);
      const extractions = [a.err, b.err].filter((s) => /\(extracted\)/.test(s)).length;
      assert.equal(extractions, 1, `exactly one extraction:\n${a.err}\n${b.err}`);
      assert.equal(fs.readlinkSync(join(e.extracts, "app.ref.a/rootfs")), fs.readlinkSync(join(e.extracts, "app.ref.b/rootfs")));
      assert.equal(fs.readFileSync(join(e.extracts, "app.ref.a/rootfs/marker"), "utf8"), "same");
      assert.deepEqual(fs.readdirSync(join(e.extracts, ".store/sha256")).filter((n) => !n.endsWith(".lock")).length, 1);
      // in-process concurrency too
      const [x, y] = await Promise.all([extract({ config: e.cfg, name: "app", tag: "a" }), extract({ config: e.cfg, name: "app", tag: "a" })]);
      assert.equal(x.extracted || y.extracted, false);
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("a corrupt layer fails, leaves no partial tree, and the previous rootfs stays served", async () => {
    const e = setup();
    try {
      const dir = join(e.layouts, "app");
      makeLayout(dir, [{ tags: ["latest"], ...image("good") }]);
      const r1 = await extract({ config: e.cfg, name: "app", tag: "latest" });
      const bad = putImage(dir, image("bad"));
      const blob = join(dir, "blobs/sha256", bad.layers[1].digest.slice(7));
      const b = fs.readFileSync(blob);
      b[Math.floor(b.length / 2)] ^= 0xff;
      fs.writeFileSync(blob, b);
      await retag(dir, "latest", bad.manifest);
      await assert.rejects(extract({ config: e.cfg, name: "app", tag: "latest" }), (err: Error) => err.message.includes(`layer ${bad.layers[1].digest.slice(0, 19)}`) && /digest mismatch/.test(err.message));
      assert.equal(fs.readlinkSync(r1.rootfs), `../.store/sha256/${r1.manifest.slice(7)}/rootfs`);
      assert.equal(fs.readFileSync(join(r1.rootfs, "marker"), "utf8"), "good");
      const badStore = storeRootfs(e.extracts, bad.manifest.digest);
      assert.equal(fs.existsSync(badStore), false);
      const left = fs.existsSync(join(badStore, "..")) ? fs.readdirSync(join(badStore, "..")) : [];
      assert.deepEqual(left, [], "no temporary tree left");
      assert.deepEqual(fs.readdirSync(join(e.extracts, "app.ref.latest")).filter((n) => n.startsWith(".")), []);
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("--user: ids checked against the image's passwd, host accounts, reload; --bundle writes a runtime config", async (t) => {
    const e = setup();
    try {
      const dir = join(e.layouts, "web");
      makeLayout(dir, [{ tags: ["latest"], ...image("u", { User: "nginx", Env: ["A=1"] }) }]);
      await assert.rejects(
        extract({ config: e.cfg, name: "web", tag: "latest", user: "nginx=65534:65534" }),
        /image user "nginx" is 101:101 in the image, but the unit was generated with 65534:65534.*systemctl daemon-reload/,
      );
      // The extraction happened; the generator now resolves the name from it.
      let out = "";
      const g = await generate({ config: e.cfg, outDir: join(e.tmp, "out"), dryRun: true, print: (s) => (out += s), reporter: { error() {}, warn() {}, info() {} } });
      assert.deepEqual(g.errors, []);
      assert.match(out, /\nUser=101\nGroup=101\n/);
      assert.match(out, /--user nginx=101:101\n/);
      // The host (a fake root here) lacks uid/gid 101: accounts are registered with systemd-sysusers --root.
      const host = join(e.tmp, "host");
      fs.mkdirSync(join(host, "etc"), { recursive: true });
      fs.writeFileSync(join(host, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
      fs.writeFileSync(join(host, "etc/group"), "root:x:0:\n");
      const calls: string[] = [];
      const systemd = { reload: () => void calls.push("reload"), ids: (u: string) => (calls.push(u), { user: "101", group: "101" }) };
      if (!have("systemd-sysusers")) {
        if (process.env.CI) assert.fail("systemd-sysusers not installed");
        t.diagnostic("systemd-sysusers not installed: host accounts not checked");
      } else {
        const ok = await extract({ config: e.cfg, name: "web", tag: "latest", user: "nginx=101:101", service: true, hostRoot: host, systemd, noMount: true });
        assert.equal(ok.extracted, false);
        assert.deepEqual(ok.accounts, ["ocigen-g101", "ocigen-u101"]);
        assert.match(fs.readFileSync(join(host, "etc/passwd"), "utf8"), /^ocigen-u101:x:101:101:/m);
        assert.match(fs.readFileSync(join(host, "etc/group"), "utf8"), /^ocigen-g101:x:101:/m);
        assert.deepEqual(calls, [], "ids as generated: no reload");
        // Present on the host now: nothing registered again.
        const again0 = await extract({ config: e.cfg, name: "web", tag: "latest", user: "nginx=101:101", service: true, hostRoot: host, systemd, noMount: true });
        assert.deepEqual(again0.accounts, []);
        // Generated before the rootfs existed (fail-safe ids): systemd is reloaded and asked for the ids.
        const re = await extract({ config: e.cfg, name: "web", tag: "latest", user: "nginx=65534:65534", service: true, hostRoot: host, systemd, noMount: true });
        assert.equal(re.reloaded, true);
        assert.deepEqual(calls, ["reload", "web.ref.latest.service"]);
        const stale = { reload() {}, ids: () => ({ user: "65534", group: "65534" }) };
        await assert.rejects(
          extract({ config: e.cfg, name: "web", tag: "latest", user: "nginx=65534:65534", service: true, hostRoot: host, systemd: stale, noMount: true }),
          /image web:latest: user "nginx" is 101:101, but after daemon-reload systemd has 65534:65534/,
        );
        // gc: the account stays while a unit runs as it, and goes with the last one.
        const kept = await gcExtracts({ config: e.cfg, hostAccounts: true, hostRoot: host });
        assert.deepEqual(kept.accounts, []);
        const layout = await Layout.open(dir);
        const desc = (await layout.resolve("latest")).manifestDescriptor;
        await layout.removeTag("latest");
        const gone = await gcExtracts({ config: e.cfg, hostAccounts: true, hostRoot: host });
        assert.deepEqual(gone.accounts, ["ocigen-u101", "ocigen-g101"]);
        assert.doesNotMatch(fs.readFileSync(join(host, "etc/passwd"), "utf8"), /ocigen-u101/);
        await retag(dir, "latest", desc);
      }
      await assert.rejects(
        extract({ config: e.cfg, name: "web", tag: "latest", user: "ghost=65534:65534", service: true, noHostAccounts: true, systemd, noMount: true }),
        /image web:latest: user "ghost": .*no such user in the image's \/etc\/passwd/,
      );
      const b = await extract({ config: e.cfg, name: "web", tag: "latest", bundle: true });
      assert.equal(b.changed, true);
      const spec = JSON.parse(fs.readFileSync(join(e.extracts, "web.ref.latest/config.json"), "utf8"));
      assert.deepEqual(spec.root, { path: b.store, readonly: true });
      assert.equal(spec.process.terminal, false, "a service has no terminal");
      assert.deepEqual(spec.process.args, ["/bin/true"]);
      assert.deepEqual([spec.process.user.uid, spec.process.user.gid], [101, 101]);
      const again = await extract({ config: e.cfg, name: "web", tag: "latest", bundle: true });
      assert.equal(again.changed, false);
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("an Atomic image's service.template is used once its rootfs is extracted", async () => {
    const e = setup();
    try {
      const dir = join(e.layouts, "etcd");
      makeLayout(dir, [{
        tags: ["latest"],
        layers: [tarFiles([
          { name: "exports/", dir: true },
          { name: "exports/service.template", data: "[Unit]\nDescription=etcd $NAME\n\n[Service]\nExecStartPre=$EXEC_STARTPRE\nExecStart=$EXEC_START\nEnvironment=DATA=$STATE_DIRECTORY/etcd\n" },
          { name: "exports/manifest.json", data: JSON.stringify({ defaultValues: { STATE_DIRECTORY: "/srv/state" } }) },
        ])],
        config: { config: { Cmd: ["/usr/bin/etcd"] } } as never,
      }]);
      const opts = { config: { ...e.cfg, atomicTemplates: true }, outDir: join(e.tmp, "out"), dryRun: true, reporter: { error() {}, warn() {}, info() {} } };
      let first = "";
      await generate({ ...opts, print: (s) => (first += s) });
      assert.match(first, /RootDirectory=/, "before extraction: the normal unit");
      await extract({ config: e.cfg, name: "etcd", tag: "latest" });
      let second = "";
      const g = await generate({ ...opts, print: (s) => (second += s) });
      assert.deepEqual(g.errors, []);
      assert.equal(g.units[0].atomic, true);
      assert.match(second, /\nDescription=etcd etcd\.ref\.latest\n/);
      assert.match(second, /\nEnvironment=DATA=\/srv\/state\/etcd\n/);
      assert.match(second, /\nRequires=ocigen-extract@etcd\.ref\.latest\.service\n/);
      assert.match(second, /\nExecStart=\/bin\/true extract --config \S+ --name etcd --ref latest --bundle\n/);
      assert.match(second, /\nExecStart=\S*runc run --bundle \S+\/extracts\/etcd\.ref\.latest etcd\.ref\.latest\n/);
      // atomictemplates = no (the default): the normal unit again, the image's template is not trusted
      assert.equal(e.cfg.atomicTemplates, false, "off by default");
      let third = "";
      await generate({ ...opts, config: e.cfg, print: (s) => (third += s) });
      assert.match(third, /RootDirectory=/);
      assert.doesNotMatch(third, /runc run|\/srv\/state/);
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("bad names and unknown tags fail with one clear line", async () => {
    const e = setup();
    try {
      makeLayout(join(e.layouts, "app"), [{ tags: ["latest"], ...image("x") }]);
      await assert.rejects(extract({ config: e.cfg, name: "../etc", tag: "latest" }), /Bad layout name/);
      await assert.rejects(extract({ config: e.cfg, name: "app", tag: "nope" }), /no such tag/);
      await assert.rejects(extract({ config: e.cfg, name: "missing", tag: "latest" }), /missing/);
      // through the CLI: exit 1 and one line naming the culprit; gc-extracts --dry-run is fine
      const orig = process.stderr.write.bind(process.stderr);
      let err = "";
      (process.stderr as unknown as { write: (s: string) => boolean }).write = (s: string) => ((err += s), true);
      let code: number;
      let gcCode: number;
      try {
        code = await main(["node", "ocigen", "extract", "--config", e.conf, "--name", "app", "--ref", "nope"]);
        process.exitCode = undefined;
        gcCode = await main(["node", "ocigen", "gc-extracts", "--config", e.conf, "--dry-run"]);
        process.exitCode = undefined;
      } finally {
        (process.stderr as unknown as { write: typeof orig }).write = orig;
      }
      assert.equal(code, 1);
      assert.match(err, /^ocigen: Cannot resolve tag nope in \S+\/app: no such tag\n$/);
      assert.equal(gcCode, 0);
    } finally {
      rmTemp(e.tmp);
    }
  });
});
