// Writers: the lock (concurrent tag processes never lose a tag, stale locks
// are broken), gc keeps exactly what is reachable, config/new/tag/rm semantics.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { hostName } from "../src/fs/atomic.ts";
import { acquireLock } from "../src/fs/lock.ts";
import { Layout, LOCK_FILE } from "../src/oci/layout.ts";
import { reachableBlobs } from "../src/oci/gc.ts";
import { makeLayout, makeMultiPlatformLayout, mkTemp, putBlob, putJSON, rmTemp, tarFiles, toLegacyRefs, writeIndex } from "../fixtures/layout.ts";
import { cli, cliProc } from "./oci-helpers.ts";

const blobsOf = (dir: string) => fs.readdirSync(join(dir, "blobs", "sha256")).filter((n) => !n.startsWith(".")).map((h) => "sha256:" + h).sort();

describe("lock", () => {
  test("N concurrent `ocigen tag` processes never lose a tag", async () => {
    const tmp = mkTemp("ocigen-lock-");
    try {
      makeLayout(tmp, [{ tags: ["latest"], layers: [tarFiles([{ name: "a", data: "a" }])] }]);
      const N = 8;
      const rs = await Promise.all(Array.from({ length: N }, (_, i) => cliProc(["tag", "--image", `${tmp}:latest`, `t${i}`])));
      for (const r of rs) assert.equal(r.code, 0, r.stderr);
      const tags = (await cli("ls", "--layout", tmp)).stdout.trim().split("\n");
      assert.deepEqual(tags, ["latest", ...Array.from({ length: N }, (_, i) => `t${i}`)].sort());
      assert.ok(!fs.existsSync(join(tmp, LOCK_FILE)));
      assert.deepEqual(fs.readdirSync(tmp).filter((n) => n.startsWith(".")), []);
    } finally {
      rmTemp(tmp);
    }
  });

  test("concurrent writers in one process (separate and shared Layout objects)", async () => {
    const tmp = mkTemp("ocigen-lock-");
    try {
      const fx = makeLayout(tmp, [{ tags: ["latest"] }]);
      await Promise.all(Array.from({ length: 25 }, async (_, i) => (await Layout.open(tmp)).setTag(`x${i}`, fx.manifests[0])));
      assert.equal((await (await Layout.open(tmp)).listTags()).length, 26);
      const one = await Layout.open(tmp);
      await Promise.all(Array.from({ length: 25 }, (_, i) => one.setTag(`y${i}`, fx.manifests[0])));
      assert.equal((await one.listTags()).length, 51);
    } finally {
      rmTemp(tmp);
    }
  });

  test("a stale lock (dead process) is broken; a live one times out with ELOCK", async () => {
    const tmp = mkTemp("ocigen-lock-");
    try {
      const fx = makeLayout(tmp, [{ tags: ["latest"] }]);
      const dead = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim();
      fs.writeFileSync(join(tmp, LOCK_FILE), `${dead} ${hostName()}\n`);
      await (await Layout.open(tmp)).setTag("after-stale", fx.manifests[0]);
      assert.ok(!fs.existsSync(join(tmp, LOCK_FILE)));
      fs.writeFileSync(join(tmp, LOCK_FILE), `1 ${hostName()}\n`); // pid 1 is alive
      await assert.rejects(acquireLock(join(tmp, LOCK_FILE), `layout ${tmp}`, 150), (e: Error & { code?: string }) => {
        assert.equal(e.code, "ELOCK");
        assert.equal(e.message, `Cannot lock layout ${tmp}: held by process 1 on ${hostName()} (${join(tmp, LOCK_FILE)})`);
        return true;
      });
      assert.equal(fs.readFileSync(join(tmp, LOCK_FILE), "utf8"), `1 ${hostName()}\n`);
    } finally {
      rmTemp(tmp);
    }
  });
});

describe("gc", () => {
  test("keeps exactly what is reachable (nested index, legacy refs), removes garbage and stale temp files", async () => {
    const tmp = mkTemp("ocigen-gc-");
    try {
      const fx = makeLayout(tmp, [
        { tags: ["a"], layers: [tarFiles([{ name: "1", data: "1" }])] },
        { tags: ["b"], layers: [tarFiles([{ name: "2", data: "2" }]), tarFiles([{ name: "3", data: "3" }])] },
        { tags: [], layers: [tarFiles([{ name: "4", data: "4" }])] }, // untagged but listed in index.json: reachable
      ]);
      const idx = JSON.parse(fs.readFileSync(join(tmp, "index.json"), "utf8"));
      // An image only reachable through a nested index.
      const sub = join(tmp, "sub");
      const fx2 = makeMultiPlatformLayout(sub, "multi", [{ os: "linux", architecture: "amd64" }, { os: "linux", architecture: "arm64" }]);
      for (const b of blobsOf(sub)) fs.copyFileSync(join(sub, "blobs/sha256", b.slice(7)), join(tmp, "blobs/sha256", b.slice(7)));
      const subIdx = JSON.parse(fs.readFileSync(join(sub, "index.json"), "utf8"));
      fs.rmSync(sub, { recursive: true });
      idx.manifests.push(subIdx.manifests[0]);
      writeIndex(tmp, idx);
      // Legacy ref to another image.
      const legacy = makeLayout(join(tmp, "leg"), [{ tags: ["old"], layers: [tarFiles([{ name: "5", data: "5" }])] }]);
      for (const b of blobsOf(legacy.dir)) fs.copyFileSync(join(legacy.dir, "blobs/sha256", b.slice(7)), join(tmp, "blobs/sha256", b.slice(7)));
      toLegacyRefs(legacy.dir);
      fs.cpSync(join(legacy.dir, "refs"), join(tmp, "refs"), { recursive: true });
      fs.rmSync(legacy.dir, { recursive: true });
      const live = blobsOf(tmp);
      // Garbage: an unreferenced blob, a whole unreferenced image, stale temp files, a live one.
      const garbage = [putBlob(tmp, new TextEncoder().encode("junk"), "x/y").digest];
      const g2 = makeLayout(join(tmp, "g"), [{ layers: [tarFiles([{ name: "6", data: "6" }])] }]);
      for (const b of blobsOf(g2.dir)) {
        fs.copyFileSync(join(g2.dir, "blobs/sha256", b.slice(7)), join(tmp, "blobs/sha256", b.slice(7)));
        garbage.push(b);
      }
      fs.rmSync(g2.dir, { recursive: true });
      const dead = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim();
      fs.writeFileSync(join(tmp, `.ocigen-tmp.${dead}.abc`), "partial");
      fs.writeFileSync(join(tmp, "blobs/sha256", `.ocigen-tmp.${dead}.def`), "partial");
      fs.writeFileSync(join(tmp, `.ocigen-tmp.${process.pid}.live`), "being written");
      assert.equal(blobsOf(tmp).length, live.length + garbage.length);

      const l = await Layout.open(tmp);
      assert.deepEqual([...(await reachableBlobs(l)).keys()].sort(), live);
      const r = await cli("gc", "--layout", tmp);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "");
      assert.deepEqual(blobsOf(tmp), live);
      assert.deepEqual(fs.readdirSync(tmp).filter((n) => n.startsWith(".")), [`.ocigen-tmp.${process.pid}.live`]);
      assert.deepEqual(fs.readdirSync(join(tmp, "blobs/sha256")).filter((n) => n.startsWith(".")), []);
      // Everything still resolves.
      for (const t of ["a", "b", "multi", "old"]) await l.resolve(t, t === "multi" ? { os: "linux", architecture: "arm64" } : undefined);
      void fx;
      void fx2;
    } finally {
      rmTemp(tmp);
    }
  });
});

describe("image verbs", () => {
  test("new, config (all flags), tag, rm", async () => {
    const tmp = mkTemp("ocigen-verbs-");
    try {
      const D = join(tmp, "l");
      const ok = async (...a: string[]) => {
        const r = await cli(...a);
        assert.equal(r.code, 0, `${a.join(" ")}: ${r.stderr}`);
        return r.stdout;
      };
      await ok("init", "--layout", D);
      await ok("new", "--image", `${D}:base`);
      const l = await Layout.open(D);
      const base = await l.resolve("base");
      assert.deepEqual(base.manifest.layers, []);
      assert.deepEqual(base.config.rootfs, { type: "layers", diff_ids: [] });
      assert.equal(base.config.history, undefined);
      await ok(
        "config", "--image", `${D}:base`, "--tag", "app",
        "--config.user", "1000:1000", "--config.exposedports", "80/tcp", "--config.exposedports", "53/udp",
        "--config.env", "A=1", "--config.env", "B=2", "--config.entrypoint", "/bin/app", "--config.entrypoint", "--serve",
        "--config.cmd", "x", "--config.volume", "/data", "--config.label", "k=v=w", "--config.workingdir", "/srv",
        "--config.stopsignal", "SIGTERM", "--author", "Ann", "--created", "2024-05-06T07:08:09Z",
        "--architecture", "arm64", "--os", "linux", "--manifest.annotation", "org.example=1",
        "--history.comment", "c", "--history.created", "2024-05-06T07:08:10Z", "--history.created_by", "by",
      );
      const app = await l.resolve("app", { os: "linux", architecture: "arm64" });
      assert.deepEqual(app.config.config, {
        User: "1000:1000",
        ExposedPorts: { "80/tcp": {}, "53/udp": {} },
        Env: ["A=1", "B=2"],
        Entrypoint: ["/bin/app", "--serve"],
        Cmd: ["x"],
        Volumes: { "/data": {} },
        Labels: { k: "v=w" },
        WorkingDir: "/srv",
        StopSignal: "SIGTERM",
      });
      assert.equal(app.config.author, "Ann");
      assert.equal(app.config.created, "2024-05-06T07:08:09Z");
      assert.equal(app.config.architecture, "arm64");
      assert.deepEqual(app.manifest.annotations, { "org.example": "1" });
      assert.deepEqual(app.config.history, [{ created: "2024-05-06T07:08:10Z", created_by: "by", author: "Ann", comment: "c", empty_layer: true }]);
      // base untouched
      assert.equal((await l.resolve("base")).manifestDescriptor.digest, base.manifestDescriptor.digest);
      // env replace, clear, no-history, overwrite the same tag
      await ok("config", "--image", `${D}:app`, "--config.env", "A=9", "--clear", "config.labels", "--clear=config.cmd", "--clear", "manifest.annotations", "--no-history");
      const app2 = await l.resolve("app", { os: "linux", architecture: "arm64" });
      assert.deepEqual(app2.config.config?.Env, ["A=9", "B=2"]);
      assert.equal(app2.config.config?.Labels, undefined);
      assert.equal(app2.config.config?.Cmd, undefined);
      assert.equal(app2.manifest.annotations, undefined);
      assert.equal(app2.config.history?.length, 1);
      // stat
      const st = JSON.parse(await ok("stat", "--image", `${D}:app`, "--json"));
      assert.deepEqual(st.history, [{ layer: null, diff_id: "", created: "2024-05-06T07:08:10Z", created_by: "by", author: "Ann", comment: "c", empty_layer: true }]);
      assert.equal(st.manifest.digest, app2.manifestDescriptor.digest);
      // tag, rm
      await ok("tag", "--image", `${D}:base`, "v1");
      assert.equal(await ok("ls", "--layout", D), "app\nbase\nv1\n");
      await ok("rm", "--image", `${D}:base`);
      assert.equal(await ok("list", "--layout", D), "app\nv1\n");
      const r = await cli("gc", "--layout", D);
      assert.equal(r.code, 0);
      assert.equal(blobsOf(D).length, 4); // two images: config + manifest each
    } finally {
      rmTemp(tmp);
    }
  });

  test("tag copies a multi-platform index entry as it is", async () => {
    const tmp = mkTemp("ocigen-verbs-");
    try {
      makeMultiPlatformLayout(tmp, "multi", [{ os: "linux", architecture: "s390x" }, { os: "linux", architecture: "riscv64" }]);
      assert.equal((await cli("tag", "--image", `${tmp}:multi`, "copy")).code, 0);
      const idx = JSON.parse(fs.readFileSync(join(tmp, "index.json"), "utf8"));
      assert.equal(idx.manifests.length, 2);
      assert.equal(idx.manifests[0].digest, idx.manifests[1].digest);
      assert.equal(idx.manifests[1].mediaType, "application/vnd.oci.image.index.v1+json");
      void putJSON;
    } finally {
      rmTemp(tmp);
    }
  });
});
