// Unpacking images: verification (digest, size, diff_id, streams), atomic
// publish, bundles, config conversion and the CLI verbs.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { OcigenError } from "../src/errors.ts";
import { Layout } from "../src/oci/layout.ts";
import { unpackBundle, unpackRootfs } from "../src/layer/unpack.ts";
import { convertConfig, resolveUser } from "../src/layer/convert.ts";
import { parseIdMap } from "../src/layer/idmap.ts";
import { main } from "../src/cli/main.ts";
import { type LayerSpec, describeTree, have, makeImage, plantCanary, tmpdir } from "./layer-fixtures.ts";

const base: LayerSpec = {
  entries: [
    { name: "etc/", type: "dir" },
    { name: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\nweb:x:33:33:www:/var/www:/bin/false\nbob:x:1000:1000::/home/bob:/bin/sh\n" },
    { name: "etc/group", data: "root:x:0:\nweb:x:33:\nbob:x:1000:\nwheel:x:10:bob,web\n" },
    { name: "bin/sh", data: "#!", mode: 0o755 },
  ],
};

async function image(dir: string, layers: LayerSpec[], config?: Record<string, unknown>) {
  makeImage(path.join(dir, "l"), layers, { config });
  const layout = await Layout.open(path.join(dir, "l"));
  return { layout, img: await layout.resolve("latest") };
}

function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.includes(".tmp-"));
}

async function rejects(p: Promise<unknown>, code: string, re?: RegExp): Promise<OcigenError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OcigenError, String((e as Error)?.stack ?? e));
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    assert.ok(!e.message.includes("\n"));
    return e;
  }
  assert.fail(`expected ${code}`);
}

describe("unpackRootfs verification and atomicity", () => {
  const cases: Array<[string, LayerSpec, string, RegExp]> = [
    ["wrong digest", { entries: [{ name: "x", data: "1" }], mutateBlob: (b) => b.map((x, i) => (i === b.length - 9 ? x ^ 1 : x)) }, "EDIGEST", /digest mismatch/],
    ["wrong size (short)", { entries: [{ name: "x", data: "1" }], size: 1 }, "ESIZE", /padded|truncated/],
    ["wrong size (long)", { entries: [{ name: "x", data: "1" }], size: 100000 }, "ESIZE", /truncated/],
    ["wrong diff_id", { entries: [{ name: "x", data: "1" }], diffId: "sha256:" + "0".repeat(64) }, "EDIFFID", /diff_id mismatch/],
    ["truncated gzip (consistent digest)", { entries: [{ name: "x", data: "1".repeat(5000) }], mutateBlob: (b) => b.subarray(0, b.length - 20), digestAfter: true }, "EDECOMPRESS", /truncated/],
    ["corrupt gzip (consistent digest)", { entries: [{ name: "x", data: "hello ".repeat(3000) }], mutateBlob: (b) => b.map((x, i) => (i === 30 ? x ^ 0x55 : x)), digestAfter: true }, "EDECOMPRESS", /layer sha256:/],
    ["trailing junk after gzip", { entries: [{ name: "x", data: "1" }], mutateBlob: (b) => new Uint8Array([...b, 1, 2, 3]), digestAfter: true }, "EDECOMPRESS", /trailing (data|garbage)/],
    ["unknown media type", { entries: [{ name: "x", data: "1" }], mediaType: "application/vnd.oci.image.layer.v1.tar+lz4" }, "EMEDIATYPE", /unsupported layer media type/],
    ["corrupt tar header", { tar: new Uint8Array(1024).fill(65), compression: "none" }, "ETAR", /layer sha256:.*offset 0/],
    ["path escape by hard link", { entries: [{ name: "h", type: "link", linkname: "../../../etc/shadow" }] }, "EUNPACK", /entry h: hard link target/],
  ];
  for (const [name, layer, code, re] of cases) {
    test(`${name}: ${code}, target absent, no temp left`, async () => {
      const dir = tmpdir();
      const canary = plantCanary(dir);
      try {
        const { layout, img } = await image(dir, [base, layer]);
        const target = path.join(dir, "rootfs");
        await rejects(unpackRootfs(layout, img, target), code, re);
        assert.equal(fs.existsSync(target), false);
        assert.deepEqual(leftovers(dir), []);
        canary.check();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test("missing blob: ENOBLOB", async () => {
    const dir = tmpdir();
    try {
      const { layout, img } = await image(dir, [base]);
      fs.unlinkSync(layout.blobPath(img.manifest.layers[0].digest));
      await rejects(unpackRootfs(layout, img, path.join(dir, "r")), "ENOBLOB");
      assert.deepEqual(leftovers(dir), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("gzip, zstd and uncompressed layers; replace keeps the old tree until success", async () => {
    const dir = tmpdir();
    try {
      const layers: LayerSpec[] = [base, { entries: [{ name: "z", data: "zstd" }], compression: have("zstd") ? "zstd" : "gzip" }, { entries: [{ name: "n", data: "none" }], compression: "none" }];
      const { layout, img } = await image(dir, layers);
      const target = path.join(dir, "rootfs");
      await unpackRootfs(layout, img, target);
      assert.equal(fs.readFileSync(path.join(target, "z"), "utf8"), "zstd");
      assert.equal(fs.readFileSync(path.join(target, "n"), "utf8"), "none");
      await rejects(unpackRootfs(layout, img, target), "EUNPACK", /already exists/);
      // a failing replace leaves the old tree
      const bad = tmpdir();
      const { layout: l2, img: i2 } = await image(bad, [base, { entries: [{ name: "x", data: "1" }], diffId: "sha256:" + "1".repeat(64) }]);
      await rejects(unpackRootfs(l2, i2, target, { replace: true }), "EDIFFID");
      assert.equal(fs.readFileSync(path.join(target, "z"), "utf8"), "zstd");
      fs.rmSync(bad, { recursive: true, force: true });
      // a good replace swaps it
      const { layout: l3, img: i3 } = await image(tmpdir(), [{ entries: [{ name: "only", data: "new" }] }]);
      await unpackRootfs(l3, i3, target, { replace: true });
      assert.deepEqual(fs.readdirSync(target), ["only"]);
      assert.deepEqual(leftovers(dir), []);
      fs.rmSync(l3.dir, { recursive: true, force: true });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("stale temp trees of dead processes are removed", async () => {
    const dir = tmpdir();
    try {
      const { layout, img } = await image(dir, [base]);
      const stale = path.join(dir, ".rootfs.tmp-999999999-abcdef01");
      fs.mkdirSync(path.join(stale, "x"), { recursive: true });
      await unpackRootfs(layout, img, path.join(dir, "rootfs"));
      assert.deepEqual(leftovers(dir), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("bundles", () => {
  test("unpack writes rootfs, config.json, umoci.json and the bundle manifest", async () => {
    const dir = tmpdir();
    try {
      const { layout, img } = await image(dir, [base, { entries: [{ name: "srv/", type: "dir" }] }], {
        User: "web",
        Entrypoint: ["/bin/sh", "-c"],
        Cmd: ["echo hi"],
        Env: ["A=b", "PATH=/custom"],
        WorkingDir: "/srv",
        Volumes: { "/data": {}, "/cache": {} },
        Labels: { "com.example": "yes" },
        ExposedPorts: { "80/tcp": {}, "53/udp": {} },
        StopSignal: "SIGINT",
      });
      const bundle = path.join(dir, "bundle");
      fs.mkdirSync(bundle); // an empty directory is acceptable
      await unpackBundle(layout, img, bundle);
      const names = fs.readdirSync(bundle).sort().map((n) => n.replace(/^sha256_[0-9a-f]{64}\.mtree$/, "sha256_<manifest>.mtree"));
      assert.deepEqual(names, ["config.json", "ocigen.mtree.jsonl", "rootfs", "sha256_<manifest>.mtree", "umoci.json"]);
      const spec = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8"));
      assert.deepEqual(spec.process.args, ["/bin/sh", "-c", "echo hi"]);
      assert.deepEqual(spec.process.user, { uid: 33, gid: 33, additionalGids: [10] });
      assert.equal(spec.process.cwd, "/srv");
      assert.ok(spec.process.env.includes("A=b"));
      assert.ok(spec.process.env.includes("PATH=/custom"));
      assert.ok(spec.process.env.includes("HOME=/var/www"));
      assert.equal(spec.root.path, "rootfs");
      assert.deepEqual(spec.mounts.filter((m: { source: string }) => m.source === "none").map((m: { destination: string }) => m.destination), ["/cache", "/data"]);
      assert.equal(spec.annotations["com.example"], "yes");
      assert.equal(spec.annotations["org.opencontainers.image.exposedPorts"], "53/udp,80/tcp");
      assert.equal(spec.annotations["org.opencontainers.image.stopSignal"], "SIGINT");
      assert.equal(spec.annotations["org.opencontainers.image.os"], "linux");
      const meta = JSON.parse(fs.readFileSync(path.join(bundle, "umoci.json"), "utf8"));
      assert.equal(meta.umoci_version, "2");
      assert.equal(meta.from_descriptor_path.descriptor_walk[0].digest, img.manifestDescriptor.digest);
      assert.equal(meta.from_descriptor_path.descriptor_walk[0].annotations["org.opencontainers.image.ref.name"], "latest");
      assert.equal(typeof meta.map_options.rootless, "boolean");
      await rejects(unpackBundle(layout, img, bundle), "EUNPACK", /not an empty directory/);
      assert.deepEqual(leftovers(dir), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("user resolution reads /etc/passwd inside the root, never through escaping symlinks", async () => {
    const dir = tmpdir();
    const canary = plantCanary(dir);
    try {
      const hostEtc = path.join(dir, "hostetc");
      fs.mkdirSync(hostEtc);
      fs.writeFileSync(path.join(hostEtc, "passwd"), "evil:x:4242:4242::/:/bin/sh\n");
      const root = path.join(dir, "r");
      fs.mkdirSync(path.join(root, "real"), { recursive: true });
      fs.symlinkSync(hostEtc, path.join(root, "etc")); // absolute: resolved inside root
      assert.throws(() => resolveUser(root, "evil"), /no such user/);
      fs.unlinkSync(path.join(root, "etc"));
      fs.mkdirSync(path.join(root, "etc"));
      fs.symlinkSync("../../../../../../" + hostEtc + "/passwd", path.join(root, "etc/passwd"));
      assert.throws(() => resolveUser(root, "evil"), /no such user/);
      fs.unlinkSync(path.join(root, "etc/passwd"));
      fs.writeFileSync(path.join(root, "real/pw"), "alice:x:7:8::/home/a:/bin/sh\n");
      fs.symlinkSync("/real/pw", path.join(root, "etc/passwd"));
      assert.deepEqual(resolveUser(root, "alice"), { uid: 7, gid: 8, home: "/home/a" });
      assert.deepEqual(resolveUser(root, "7:9"), { uid: 7, gid: 9, home: "/home/a" });
      assert.deepEqual(resolveUser(root, "123"), { uid: 123, gid: 0 });
      assert.throws(() => resolveUser(root, "alice:nogroup"), /no such group/);
      fs.symlinkSync("loop", path.join(root, "etc/group"));
      fs.symlinkSync("group", path.join(root, "etc/loop"));
      assert.equal(resolveUser(root, "alice").gid, 8);
      canary.check();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("convertConfig: defaults and rootless", () => {
    const spec = convertConfig({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, config: { Cmd: ["x"] } }, {
      rootless: true,
      uidMappings: [parseIdMap("0:1000:1")],
    });
    assert.deepEqual(spec.process.args, ["x"]);
    assert.equal(spec.process.cwd, "/");
    assert.deepEqual(spec.process.user, { uid: 0, gid: 0 });
    assert.ok((spec.linux!.namespaces as Array<{ type: string }>).some((n) => n.type === "user"));
    assert.deepEqual(spec.linux!.uidMappings, [{ containerID: 0, hostID: 1000, size: 1 }]);
  });
});

describe("CLI", () => {
  test("unpack, raw unpack and raw runtime-config", async () => {
    const dir = tmpdir();
    const errs: string[] = [];
    const origErr = process.stderr.write.bind(process.stderr);
    try {
      makeImage(path.join(dir, "l"), [base], { config: { User: "bob", Cmd: ["/bin/sh"] }, tag: "v1" });
      const run = async (...args: string[]) => {
        (process.stderr as unknown as { write: (s: string) => boolean }).write = (s: string) => (errs.push(String(s)), true);
        try {
          return await main(["node", "ocigen", ...args]);
        } finally {
          (process.stderr as unknown as { write: typeof origErr }).write = origErr;
        }
      };
      { const rc = await run("unpack", "--image", path.join(dir, "l") + ":v1", path.join(dir, "b")); assert.equal(rc, 0, errs.join("")); }
      assert.ok(fs.existsSync(path.join(dir, "b/rootfs/bin/sh")));
      assert.equal(await run("raw", "unpack", "--image", path.join(dir, "l:v1"), path.join(dir, "r")), 0, errs.join(""));
      assert.deepEqual(describeTree(path.join(dir, "r")), describeTree(path.join(dir, "b/rootfs")));
      assert.equal(await run("raw", "runtime-config", "--image", path.join(dir, "l:v1"), "--rootfs", path.join(dir, "r"), path.join(dir, "c.json")), 0, errs.join(""));
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, "c.json"), "utf8")).process.user, { uid: 1000, gid: 1000, additionalGids: [10] });
      errs.length = 0;
      assert.equal(await run("unpack", "--image", path.join(dir, "l:nope"), path.join(dir, "b2")), 1);
      assert.equal(errs.length, 1, errs.join(""));
      assert.match(errs[0], /^ocigen: /);
      errs.length = 0;
      assert.equal(await run("unpack", "--image", path.join(dir, "l:v1"), "--uid-map", "bad", path.join(dir, "b3")), 1);
      assert.match(errs.join(""), /id map/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("full disk", () => {
  const ROOT = typeof process.getuid === "function" && process.getuid() === 0;
  test("ENOSPC fails cleanly: EIO naming the entry, target absent, temp removed", { skip: ROOT ? false : "needs root to mount a small tmpfs" }, async (t) => {
    const dir = tmpdir();
    const mnt = path.join(dir, "small");
    fs.mkdirSync(mnt);
    const m = (await import("node:child_process")).spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], { encoding: "utf8" });
    if (m.status !== 0) {
      fs.rmSync(dir, { recursive: true, force: true });
      t.skip(`cannot mount tmpfs here: ${m.stderr.trim()}`);
      return;
    }
    try {
      const { layout, img } = await image(dir, [base, { entries: [{ name: "big", data: new Uint8Array(3 << 20).fill(1) }] }]);
      const e = await rejects(unpackRootfs(layout, img, path.join(mnt, "rootfs")), "EIO", /entry big: .*ENOSPC/);
      assert.ok(e.message.startsWith("Cannot unpack layer sha256:"));
      assert.deepEqual(fs.readdirSync(mnt), []);
    } finally {
      (await import("node:child_process")).spawnSync("umount", [mnt]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
