// Real rootless unpack: the built CLI run as an unprivileged user (nobody)
// when the tests run as root and `runuser` exists; otherwise the test
// process itself is unprivileged and unpacks rootless automatically.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Layout } from "../src/oci/layout.ts";
import { unpackBundle } from "../src/layer/unpack.ts";
import { have, makeImage, plantCanary, tmpdir } from "./layer-fixtures.ts";

const ROOT = typeof process.getuid === "function" && process.getuid() === 0;
const repo = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const cli = path.join(repo, "dist", "ocigen.mjs");
// the CLI runs on Node (`node dist/ocigen.mjs`), also when the tests run under Deno
const nodeBin = (process.versions as Record<string, string | undefined>).deno ? "node" : process.execPath;

const layers = [
  {
    entries: [
      { name: "etc/", type: "dir" as const },
      { name: "etc/passwd", data: "root:x:0:0::/root:/bin/sh\n" },
      { name: "ro/", type: "dir" as const, mode: 0o555 },
      { name: "ro/f", data: "x", mode: 0o400, uid: 5, gid: 6 },
      { name: "locked/", type: "dir" as const, mode: 0o000 },
      { name: "locked/inner/", type: "dir" as const, mode: 0o700 },
      { name: "locked/inner/g", data: "g", uid: 1000 },
      { name: "dev/null", type: "char" as const, devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "fifo", type: "fifo" as const },
      { name: "x", data: "x", xattrs: { "user.a": "1", "trusted.b": "2" } },
    ],
  },
  { entries: [{ name: "ro/g", data: "y", uid: 7 }, { name: "locked/inner/.wh.g" }, { name: "locked/h", data: "h" }] },
];

function checkTree(bundle: string): void {
  const r = path.join(bundle, "rootfs");
  assert.ok(fs.lstatSync(path.join(r, "dev/null")).isFile(), "device placeholder");
  assert.equal(fs.lstatSync(path.join(r, "dev/null")).size, 0);
  assert.ok(fs.lstatSync(path.join(r, "fifo")).isFIFO());
  assert.equal(fs.readFileSync(path.join(r, "ro/g"), "utf8"), "y");
  assert.equal(fs.readFileSync(path.join(r, "locked/h"), "utf8"), "h");
  assert.equal(fs.existsSync(path.join(r, "locked/inner/g")), false);
  for (const d of ["ro", "locked", "locked/inner"]) assert.equal(fs.lstatSync(path.join(r, d)).mode & 0o700, 0o700, d);
  const owners = JSON.parse(fs.readFileSync(path.join(bundle, "ocigen.owners.json"), "utf8"));
  assert.deepEqual(owners["ro/f"], [5, 6]);
  assert.deepEqual(owners["ro/g"], [7, 0]);
  assert.equal(JSON.parse(fs.readFileSync(path.join(bundle, "umoci.json"), "utf8")).map_options.rootless, true);
  const spec = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8"));
  assert.ok(spec.linux.namespaces.some((n: { type: string }) => n.type === "user"));
}

const asNobody = ROOT && have("runuser");

test("rootless unpack as an unprivileged user", { skip: ROOT && !asNobody ? "runuser not installed" : false }, async () => {
  const dir = tmpdir("ocigen-rootless-");
  const canary = plantCanary(dir);
  try {
    fs.chmodSync(dir, 0o777);
    makeImage(path.join(dir, "l"), layers);
    const bundle = path.join(dir, "b");
    if (asNobody) {
      if (!fs.existsSync(cli)) {
        const b = spawnSync(nodeBin, [path.join(repo, ".ci", "build.mjs")], { cwd: repo, stdio: "inherit" });
        assert.equal(b.status, 0);
      }
      spawnSync("chmod", ["-R", "a+rX", path.join(dir, "l")]);
      const r = spawnSync("runuser", ["-u", "nobody", "--", nodeBin, cli, "unpack", "--image", path.join(dir, "l"), bundle], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
    } else {
      const layout = await Layout.open(path.join(dir, "l"));
      await unpackBundle(layout, await layout.resolve("latest"), bundle);
    }
    checkTree(bundle);
    canary.check();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
