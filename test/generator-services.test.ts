// What a generated service gets besides its command (SPEC 4.4): the per-image
// settings rendered into the unit (volumes, tmpfs, environment, user, exec,
// read-only root, raw [Service] lines, runtime), persistent volumes seeded
// from the image, and a per-service overlay root whose writes never reach the
// shared store and are dropped at release.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { makeLayout, mkTemp, rmTemp, tarFiles } from "../fixtures/layout.ts";
import { generatorEnv } from "../fixtures/generator.ts";
import { defaultGeneratorConfig, type LayoutSettings } from "../src/generator/config.ts";
import { type ImageInfo, renderUnit, unitExtractArgv, type UnitInput } from "../src/generator/unit.ts";
import { safeName, serviceRoot, volumeDir, volumeName } from "../src/generator/state.ts";
import { ensureVolume } from "../src/generator/volumes.ts";
import { isMountPoint, mountServiceRoot, releaseServiceRoot } from "../src/generator/serviceroot.ts";
import { extract } from "../src/generator/extract.ts";
import { Layout } from "../src/oci/layout.ts";

const DIGEST = "sha256:" + "ab".repeat(32);

function input(config: Record<string, unknown>, settings: Partial<LayoutSettings> = {}, extractedRootfs: string | null = null): UnitInput {
  const image = {
    manifestDescriptor: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: DIGEST, size: 1 },
    manifest: {} as never,
    config: { config } as never,
    configDescriptor: {} as never,
  } as ImageInfo;
  return {
    name: "app", tag: "v1", base: "app.ref.v1", layoutDir: "/l/app", extractsDir: "/x", runDir: "/run/ocigen", volumesDir: "/v",
    image, settings: { ...defaultGeneratorConfig().defaults, ...settings }, ocigen: ["/usr/local/bin/ocigen"], extractedRootfs,
  };
}

const lines = (text: string, key: string) => text.split("\n").filter((l) => l.startsWith(key + "=")).map((l) => l.slice(key.length + 1));

describe("unit rendering of a service", () => {
  test("a real root directory per service, writable by default, image volumes bound from persistent directories", () => {
    const i = input({ Cmd: ["/bin/app"], Volumes: { "/data": {}, "/var/lib/my-db/": {} } });
    const text = renderUnit(i);
    assert.deepEqual(lines(text, "RootDirectory"), ["/run/ocigen/app.ref.v1/root"]);
    assert.deepEqual(lines(text, "BindsTo"), ["ocigen-extract@app.ref.v1.service"]);
    assert.deepEqual(lines(text, "ProtectSystem"), [], "the root is writable");
    assert.deepEqual(lines(text, "BindPaths"), ["/v/app.ref.v1/data:/data", "/v/app.ref.v1/var-lib-my_2ddb:/var/lib/my-db"]);
    assert.deepEqual(lines(text, "PrivateTmp"), ["yes"]);
    assert.match(lines(text, "RequiresMountsFor")[0], / \/v$/);
    const argv = unitExtractArgv(i);
    assert.deepEqual(argv.slice(1), ["extract", "--name", "app", "--ref", "v1", "--manifest", DIGEST, "--service", "--volume", "/data", "--volume", "/var/lib/my-db"]);
  });

  test("settings: volumes, tmpfs, environment, user, exec, read-only, raw lines", () => {
    const text = renderUnit(input({ Cmd: ["/bin/app"], Env: ["A=1"], User: "nobody", Volumes: { "/data": {} } }, {
      volumes: [{ host: "/srv/www", path: "/www", readOnly: true }, { path: "/data", readOnly: true }, { path: "/cache", readOnly: false }],
      tmpfs: [{ path: "/scratch", options: "size=64m" }],
      environment: [["A", "2"], ["B", "x y"]],
      user: "1000:1000",
      exec: ["/bin/other", "--flag"],
      readOnly: true,
      serviceLines: ["MemoryMax=1G", "Restart=on-failure"],
    }));
    assert.deepEqual(lines(text, "ExecStart"), ["/bin/other --flag"]);
    assert.deepEqual(lines(text, "Environment"), ["A=1", "A=2", '"B=x y"'], "settings after the image's: they win");
    assert.deepEqual([lines(text, "User"), lines(text, "Group")], [["1000"], ["1000"]]);
    assert.deepEqual(lines(text, "ProtectSystem"), ["strict"]);
    assert.deepEqual(lines(text, "BindReadOnlyPaths"), ["/etc/resolv.conf", "/v/app.ref.v1/data:/data", "/srv/www:/www", "-/etc/hosts -/etc/hostname"]);
    assert.deepEqual(lines(text, "BindPaths"), ["/v/app.ref.v1/cache:/cache"]);
    assert.deepEqual(lines(text, "TemporaryFileSystem"), ["/run:mode=0755", "/scratch:size=64m"]);
    assert.ok(text.endsWith("MemoryMax=1G\nRestart=on-failure\n"));
  });

  test("users: numeric ids only; a name before extraction is the fail-safe and asks extract to reload", () => {
    const named = input({ Cmd: ["/bin/app"], User: "app" });
    assert.deepEqual([lines(renderUnit(named), "User"), lines(renderUnit(named), "Group")], [["65534"], ["65534"]]);
    assert.deepEqual(unitExtractArgv(named).slice(-4), ["--service", "--user", "app=65534:65534", "--reload"]);
    for (const bad of ["1e20", "65535:1"]) {
      const t = renderUnit(input({ Cmd: ["/bin/app"], User: bad }));
      assert.deepEqual(lines(t, "User"), ["65534"], `${bad}: never an id systemd rejects`);
    }
    // a numeric id no system can have: the fail-safe ids, and extract fails the start (SPEC 4.4)
    const outOfRange = input({ Cmd: ["/bin/app"], User: "4294967295" });
    assert.deepEqual(lines(renderUnit(outOfRange), "User"), ["65534"]);
    assert.ok(unitExtractArgv(outOfRange).includes("4294967295=65534:65534"));
    const tmp = mkTemp("ocigen-svc-users-");
    try {
      fs.mkdirSync(join(tmp, "etc"));
      fs.writeFileSync(join(tmp, "etc/passwd"), "app:x:1234:4321::/:/bin/sh\n");
      const t = renderUnit(input({ Cmd: ["/bin/app"], User: "app" }, {}, tmp));
      assert.deepEqual([lines(t, "User"), lines(t, "Group")], [["1234"], ["4321"]]);
      assert.deepEqual(unitExtractArgv(input({ Cmd: ["/bin/app"], User: "app" }, {}, tmp)).slice(-3), ["--service", "--user", "app=1234:4321"]);
    } finally {
      rmTemp(tmp);
    }
  });

  test("runc mode: the bundle runs the service's root, no terminal, settings passed to extract", () => {
    const i = input({ Cmd: ["/bin/app"], Volumes: { "/data": {} } }, { runtime: "/usr/sbin/runc", environment: [["K", "v"]], tmpfs: [{ path: "/t" }] });
    const text = renderUnit(i);
    assert.deepEqual(lines(text, "ExecStart"), ["/usr/sbin/runc run --bundle /x/app.ref.v1 app.ref.v1"]);
    assert.deepEqual(lines(text, "RootDirectory"), []);
    assert.deepEqual(unitExtractArgv(i).slice(8), ["--service", "--volume", "/data", "--tmpfs", "/t", "--env", "K=v", "--bundle"]);
  });

  test("bad volume paths fail that image with a clear error", () => {
    assert.throws(() => renderUnit(input({ Cmd: ["/bin/app"], Volumes: { "data": {} } })), /image volume "data" is not an absolute path/);
    assert.throws(() => renderUnit(input({ Cmd: ["/bin/app"], Volumes: { "/a:b": {} } })), /image volume "\/a:b" holds characters/);
  });

  test("state paths are injective and need no quoting", () => {
    assert.equal(volumeName("/var/lib/my-sql"), "var-lib-my_2dsql");
    assert.notEqual(volumeName("/a-b"), volumeName("/a/b"));
    assert.equal(safeName("app.ref.tag\\x2bbuild"), "app.ref.tag_5cx2bbuild");
    assert.equal(serviceRoot("/run/ocigen", ".x"), "/run/ocigen/_2ex/root");
    assert.equal(volumeDir("/v", "a.ref.b", "/data"), "/v/a.ref.b/data");
  });
});

describe("volumes", () => {
  test("seeded once from the image (owner and mode kept), else created for the service's ids, then kept", () => {
    const tmp = mkTemp("ocigen-vol-");
    try {
      const root = join(tmp, "rootfs");
      fs.mkdirSync(join(root, "srv/data/sub"), { recursive: true });
      fs.symlinkSync("/srv/data", join(root, "data"));
      fs.writeFileSync(join(root, "srv/data/sub/f"), "image content");
      fs.symlinkSync("f", join(root, "srv/data/sub/link"));
      fs.chmodSync(join(root, "srv/data"), 0o750);
      const asRoot = process.getuid?.() === 0;
      if (asRoot) fs.chownSync(join(root, "srv/data"), 1234, 4321);
      const v = join(tmp, "volumes/app.ref.v1/data");
      assert.equal(ensureVolume(root, v, "/data", 1000, 1000), "seeded");
      assert.equal(fs.readFileSync(join(v, "sub/f"), "utf8"), "image content");
      assert.equal(fs.readlinkSync(join(v, "sub/link")), "f");
      assert.equal(fs.statSync(v).mode & 0o777, 0o750);
      if (asRoot) assert.deepEqual([fs.statSync(v).uid, fs.statSync(v).gid], [1234, 4321]);
      assert.equal(fs.statSync(join(tmp, "volumes")).mode & 0o777, 0o700);
      fs.writeFileSync(join(v, "written"), "by the service");
      fs.writeFileSync(join(root, "srv/data/sub/f"), "new image content");
      assert.equal(ensureVolume(root, v, "/data", 1000, 1000), "kept");
      assert.equal(fs.readFileSync(join(v, "sub/f"), "utf8"), "image content", "an existing volume is never reseeded");
      assert.equal(fs.readFileSync(join(v, "written"), "utf8"), "by the service");
      const empty = join(tmp, "volumes/app.ref.v1/cache");
      assert.equal(ensureVolume(root, empty, "/cache", 1000, 1001), "created");
      if (asRoot) assert.deepEqual([fs.statSync(empty).uid, fs.statSync(empty).gid], [1000, 1001]);
      assert.deepEqual(fs.readdirSync(join(tmp, "volumes/app.ref.v1")).sort(), ["cache", "data"], "no temporary left");
    } finally {
      rmTemp(tmp);
    }
  });
});

const canMount = process.getuid?.() === 0 && spawnSync("mount", ["--version"]).status === 0;

describe("service root", { skip: canMount || process.env.CI ? false : "not root (mounting an overlay needs root)" }, () => {
  test("an overlay over the store: writes land in the service's layer, the store is untouched, release drops them", async () => {
    const e = generatorEnv("ocigen-root-");
    try {
      e.cfg.runDir = join(e.tmp, "run");
      makeLayout(join(e.layouts, "app"), [{
        tags: ["v1"],
        layers: [tarFiles([{ name: "etc/", dir: true }, { name: "etc/passwd", data: "root:x:0:0::/:/bin/sh\n" }, { name: "file", data: "image" }])],
        config: { config: { Cmd: ["/bin/true"] } } as never,
      }]);
      const digest = (await (await Layout.open(join(e.layouts, "app"))).resolve("v1")).manifestDescriptor.digest;
      const r = await extract({ config: e.cfg, name: "app", tag: "v1", manifest: digest, service: true, noHostAccounts: true });
      const root = serviceRoot(e.cfg.runDir, "app.ref.v1");
      assert.equal(r.root, root);
      assert.ok(isMountPoint(root));
      assert.equal(fs.lstatSync(root).isDirectory(), true, "a real directory, not a symlink");
      fs.writeFileSync(join(root, "file"), "changed by the service");
      fs.mkdirSync(join(root, "proc"));
      assert.equal(fs.readFileSync(join(r.store, "file"), "utf8"), "image", "the store is untouched");
      assert.equal(fs.existsSync(join(r.store, "proc")), false, "mount points never land in the store");
      assert.equal(fs.statSync(e.cfg.runDir).mode & 0o777, 0o700);
      // a second start (restart) begins from the image's content again
      mountServiceRoot(e.cfg.runDir, "app.ref.v1", r.store);
      assert.equal(fs.readFileSync(join(root, "file"), "utf8"), "image");
      await extract({ config: e.cfg, name: "app", tag: "v1", release: true });
      assert.equal(isMountPoint(root), false);
      assert.deepEqual(fs.readdirSync(e.cfg.runDir), []);
      assert.equal(fs.readFileSync(join(r.store, "file"), "utf8"), "image");
      releaseServiceRoot(e.cfg.runDir, "app.ref.v1"); // nothing left: a no-op
    } finally {
      releaseServiceRoot(e.cfg.runDir!, "app.ref.v1");
      rmTemp(e.tmp);
    }
  });
});
