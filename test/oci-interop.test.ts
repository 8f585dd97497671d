// Interop with umoci and skopeo: layouts ocigen makes are accepted by them,
// layouts they make are read by ocigen (same `ls` and `stat` output as
// umoci), and `ocigen gc` keeps exactly what `umoci gc` keeps.
import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { gzipSync } from "fflate";
import { Layout } from "../src/oci/layout.ts";
import { MediaType } from "../src/oci/types.ts";
import { digestBytes } from "../src/digest/index.ts";
import { hostPlatform } from "../src/oci/platform.ts";
import { mkTemp, putBlob, rmTemp, tarFiles } from "../fixtures/layout.ts";
import { cli, have, run } from "./oci-helpers.ts";

function need(t: TestContext, ...tools: string[]): boolean {
  for (const tool of tools) {
    if (!have(tool)) {
      if (process.env.CI) assert.fail(`${tool} is not installed (CI must have it: .ci/run installs it)`);
      t.skip(`${tool} not installed`);
      return false;
    }
  }
  return true;
}

async function ok(...a: string[]): Promise<string> {
  const r = await cli(...a);
  assert.equal(r.code, 0, `ocigen ${a.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

function tool(cmd: string, ...args: string[]): string {
  const r = run(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

const skopeo = (...a: string[]) => tool("skopeo", "--insecure-policy", ...a);
const rootless = () => (process.getuid?.() === 0 ? [] : ["--rootless"]);
const blobsOf = (dir: string) => fs.readdirSync(join(dir, "blobs", "sha256")).filter((n) => !n.startsWith(".")).sort();

/** A layout made by ocigen: init, a layer image (library), config, tag, new. */
async function ocigenLayout(D: string): Promise<void> {
  await ok("init", "--layout", D);
  const l = await Layout.open(D);
  const tar = tarFiles([
    { name: "etc/", dir: true },
    { name: "etc/hello", data: "hello world\n" },
    { name: "bin/", dir: true },
    { name: "bin/app", data: "#!/bin/sh\necho app\n", mode: 0o755 },
  ]);
  const host = hostPlatform();
  await l.withLock(async () => {
    const layer = await l.writeBlob(gzipSync(tar, { mtime: 0 }), MediaType.LayerGzip);
    const cfg = await l.writeJSON({
      created: "2024-01-01T00:00:00Z",
      architecture: host.architecture,
      os: host.os,
      config: { Env: ["PATH=/bin"] },
      rootfs: { type: "layers", diff_ids: [digestBytes(tar)] },
      history: [{ created: "2024-01-01T00:00:00Z", created_by: "ADD files /" }],
    }, MediaType.Config);
    await l.setTag("base", await l.writeJSON({ schemaVersion: 2, mediaType: MediaType.Manifest, config: cfg, layers: [layer] }, MediaType.Manifest));
  });
  await ok(
    "config", "--image", `${D}:base`, "--tag", "app",
    "--config.entrypoint", "/bin/app", "--config.cmd", "--flag", "--config.env", "A=1", "--config.workingdir", "/etc",
    "--config.label", "k=v", "--config.exposedports", "8080/tcp", "--author", "ocigen test",
    "--history.created", "2024-01-02T00:00:00Z", "--history.comment", "entrypoint",
  );
  await ok("tag", "--image", `${D}:app`, "v1");
  await ok("new", "--image", `${D}:empty`);
}

describe("interop with umoci and skopeo", () => {
  test("a layout made by ocigen is accepted by umoci ls/stat/unpack and skopeo inspect", async (t) => {
    if (!need(t, "umoci", "skopeo")) return;
    const tmp = mkTemp("ocigen-interop-");
    try {
      const D = join(tmp, "layout");
      await ocigenLayout(D);
      assert.equal(tool("umoci", "ls", "--layout", D).split("\n").filter(Boolean).sort().join(","), "app,base,empty,v1");
      for (const tag of ["app", "base", "empty"]) {
        assert.equal(await ok("stat", "--image", `${D}:${tag}`), tool("umoci", "stat", "--image", `${D}:${tag}`), `stat ${tag}`);
        const theirs = JSON.parse(tool("umoci", "stat", "--image", `${D}:${tag}`, "--json"));
        const ours = JSON.parse(await ok("stat", "--image", `${D}:${tag}`, "--json"));
        assert.deepEqual(ours.history, theirs.history ?? [], `stat --json ${tag}`); // umoci: null when empty
      }
      const bundle = join(tmp, "bundle");
      tool("umoci", "unpack", ...rootless(), "--image", `${D}:v1`, bundle);
      assert.equal(fs.readFileSync(join(bundle, "rootfs", "etc", "hello"), "utf8"), "hello world\n");
      const rt = JSON.parse(fs.readFileSync(join(bundle, "config.json"), "utf8"));
      assert.deepEqual(rt.process.args, ["/bin/app", "--flag"]);
      assert.equal(rt.process.cwd, "/etc");
      assert.ok(rt.process.env.includes("A=1"));
      const app = await (await Layout.open(D)).resolve("app");
      const info = JSON.parse(skopeo("inspect", `oci:${D}:app`));
      assert.equal(info.Digest, app.manifestDescriptor.digest);
      assert.equal(info.Architecture, hostPlatform().architecture);
      assert.deepEqual(info.Env, ["PATH=/bin", "A=1"]);
      assert.deepEqual(info.Labels, { k: "v" });
      assert.deepEqual(info.Layers, [app.manifest.layers[0].digest]);
      const empty = JSON.parse(skopeo("inspect", `oci:${D}:empty`));
      assert.deepEqual(empty.Layers ?? [], []);
    } finally {
      rmTemp(tmp);
    }
  });

  test("a layout made by umoci is read by ocigen ls/stat (same output)", async (t) => {
    if (!need(t, "umoci")) return;
    const tmp = mkTemp("ocigen-interop-");
    try {
      const U = join(tmp, "u");
      tool("umoci", "init", "--layout", U);
      tool("umoci", "new", "--image", `${U}:t`);
      tool("umoci", "config", "--image", `${U}:t`, "--config.cmd", "/bin/sh", "--author", "umoci test", "--history.comment", "hi");
      const bundle = join(tmp, "bundle");
      tool("umoci", "unpack", ...rootless(), "--image", `${U}:t`, bundle);
      fs.writeFileSync(join(bundle, "rootfs", "file"), "content\n");
      fs.mkdirSync(join(bundle, "rootfs", "dir"));
      tool("umoci", "repack", "--image", `${U}:t2`, bundle);
      tool("umoci", "tag", "--image", `${U}:t2`, "t3");
      assert.equal(await ok("ls", "--layout", U), "t\nt2\nt3\n");
      for (const tag of ["t", "t2"]) {
        assert.equal(await ok("stat", "--image", `${U}:${tag}`), tool("umoci", "stat", "--image", `${U}:${tag}`), `stat ${tag}`);
        const theirs = JSON.parse(tool("umoci", "stat", "--image", `${U}:${tag}`, "--json"));
        assert.deepEqual(JSON.parse(await ok("stat", "--image", `${U}:${tag}`, "--json")).history, theirs.history ?? []);
      }
      // ocigen can keep working on it, and umoci still reads the result.
      await ok("config", "--image", `${U}:t2`, "--tag", "t4", "--config.env", "X=1");
      assert.equal(await ok("stat", "--image", `${U}:t4`), tool("umoci", "stat", "--image", `${U}:t4`));
    } finally {
      rmTemp(tmp);
    }
  });

  test("a layout made by skopeo copy is read by ocigen ls/stat", async (t) => {
    if (!need(t, "skopeo", "umoci")) return;
    const tmp = mkTemp("ocigen-interop-");
    try {
      const A = join(tmp, "a");
      await ocigenLayout(A);
      const B = join(tmp, "b");
      skopeo("copy", `oci:${A}:app`, `oci:${B}:copied`);
      skopeo("copy", `oci:${A}:empty`, `oci:${B}:empty`);
      assert.equal(await ok("ls", "--layout", B), "copied\nempty\n");
      for (const tag of ["copied", "empty"]) {
        assert.equal(await ok("stat", "--image", `${B}:${tag}`), tool("umoci", "stat", "--image", `${B}:${tag}`));
      }
      const img = await (await Layout.open(B)).resolve("copied");
      assert.deepEqual(img.config.config?.Entrypoint, ["/bin/app"]);
      // ocigen writes into a skopeo-made layout; skopeo reads it back.
      await ok("tag", "--image", `${B}:copied`, "again");
      assert.equal(JSON.parse(skopeo("inspect", `oci:${B}:again`)).Digest, img.manifestDescriptor.digest);
    } finally {
      rmTemp(tmp);
    }
  });

  test("ocigen gc keeps exactly what umoci gc keeps (what is reachable)", async (t) => {
    if (!need(t, "umoci")) return;
    const tmp = mkTemp("ocigen-interop-");
    try {
      const D = join(tmp, "l");
      await ocigenLayout(D);
      await ok("rm", "--image", `${D}:base`); // base's manifest and config become garbage
      await ok("config", "--image", `${D}:app`, "--config.user", "1"); // the old app config/manifest stay reachable via v1
      await ok("config", "--image", `${D}:empty`, "--config.user", "2"); // the old empty config/manifest become garbage
      putBlob(D, new TextEncoder().encode("garbage"), "application/octet-stream");
      const U = join(tmp, "u");
      fs.cpSync(D, U, { recursive: true });
      const before = blobsOf(D);
      await ok("gc", "--layout", D);
      tool("umoci", "gc", "--layout", U);
      assert.deepEqual(blobsOf(D), blobsOf(U));
      assert.equal(before.length - blobsOf(D).length, 5);
      for (const tag of ["app", "v1", "empty"]) await (await Layout.open(D)).resolve(tag);
    } finally {
      rmTemp(tmp);
    }
  });
});
