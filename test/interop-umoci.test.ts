// Interoperability with umoci and Go tools: Go tools write an empty index as `"manifests":null` (`umoci init`, and
// `umoci rm` of the last tag). ocigen refused such a layout ("index.json.manifests: must
// be an array") for every verb, so an operator could not even `ocigen new` into it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { gcLayout, Layout, newImage } from "../src/mod.ts";
import { have } from "../src/util/which.ts";
import { withTemp } from "../fixtures/layout.ts";

const withTmp = (fn: (dir: string) => Promise<void>) => withTemp("ocigen-interop-umoci-", fn);

test("an index with \"manifests\": null is an empty layout", async () => {
  await withTmp(async (dir) => {
    const l = path.join(dir, "l");
    fs.mkdirSync(path.join(l, "blobs", "sha256"), { recursive: true });
    fs.writeFileSync(path.join(l, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    fs.writeFileSync(path.join(l, "index.json"), '{"schemaVersion":2,"manifests":null}');
    const layout = await Layout.open(l);
    assert.deepEqual(await layout.listTags(), []);
    await gcLayout(layout);
    await newImage(layout, "t");
    assert.deepEqual(await layout.listTags(), ["t"]);
    assert.ok(Array.isArray(JSON.parse(fs.readFileSync(path.join(l, "index.json"), "utf8")).manifests));
  });
});

test("layouts left by `umoci init` and `umoci rm` are read", async (t) => {
  if (!have("umoci")) {
    if (process.env.CI) assert.fail("umoci not installed");
    t.skip("umoci not installed");
    return;
  }
  await withTmp(async (dir) => {
    const l = path.join(dir, "u");
    execFileSync("umoci", ["init", "--layout", l]);
    assert.deepEqual(await (await Layout.open(l)).listTags(), []);
    execFileSync("umoci", ["new", "--image", `${l}:x`]);
    execFileSync("umoci", ["rm", "--image", `${l}:x`]);
    const layout = await Layout.open(l);
    assert.deepEqual(await layout.listTags(), []);
    await newImage(layout, "mine");
    assert.deepEqual(await layout.listTags(), ["mine"]);
    assert.match(execFileSync("umoci", ["ls", "--layout", l], { encoding: "utf8" }), /^mine$/m);
  });
});

function tree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const n of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(path.join(root, r));
      const kind = st.isDirectory() ? "d" : st.isSymbolicLink() ? "l" : st.isFile() ? "f" : "?";
      const link = kind === "l" ? fs.readlinkSync(path.join(root, r)) : "";
      const data = kind === "f" ? fs.readFileSync(path.join(root, r), "utf8") : "";
      out.set(r, `${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.size} ${link} ${data} mtime=${Math.floor(st.mtimeMs / 1000)}`);
      if (kind === "d") walk(r);
    }
  };
  walk("");
  return out;
}

test("`umoci raw unpack` of a multi-layer `ocigen build` image equals `ocigen raw unpack`", async (t) => {
  if (!have("umoci")) {
    if (process.env.CI) assert.fail("umoci not installed");
    t.skip("umoci not installed");
    return;
  }
  const { buildFile, unpackRootfs } = await import("../src/mod.ts");
  const { gzipSync } = await import("node:zlib");
  const { tarBytes } = await import("../src/mod.ts");
  await withTmp(async (dir) => {
    fs.writeFileSync(path.join(dir, "base.tgz"), gzipSync(tarBytes([
      { name: "etc/", type: "dir", mtime: 1000 },
      { name: "etc/os-release", data: "ID=qa\n", mtime: 1001 },
      { name: "srv/", type: "dir", mtime: 1002, mode: 0o750 },
      { name: "srv/www/", type: "dir", mtime: 1003 },
      { name: "srv/www/index.html", data: "<p>hi</p>", mtime: 1004 },
      { name: "bin/", type: "dir", mtime: 1005 },
      { name: "bin/sh", data: "#!", mode: 0o755, mtime: 1006 },
      { name: "bin/ash", type: "symlink", linkname: "sh", mtime: 1007 },
    ])));
    fs.writeFileSync(path.join(dir, "a.txt"), "a\n");
    fs.writeFileSync(path.join(dir, "b.txt"), "b\n");
    fs.writeFileSync(path.join(dir, "spec.yaml"), [
      "base:", "  base: empty", "  expand: base.tgz", "  cmd: [/bin/sh]",
      "mid:", "  base: base", "  copy:", '    - "a.txt /srv/www/a.txt"', '    - "b.txt /etc/b.txt"',
      "top:", "  base: mid", '  copy: "b.txt /srv/www/sub/b.txt"', "",
    ].join("\n"));
    const l = path.join(dir, "layout");
    await buildFile(path.join(dir, "spec.yaml"), { layout: l, compression: "gzip", tmpDir: dir });
    const layout = await Layout.open(l);
    const img = await layout.resolve("top");
    assert.equal(img.manifest.layers.length, 3);
    const mine = path.join(dir, "mine");
    await unpackRootfs(layout, img, mine, { rootless: !(process.getuid?.() === 0) });
    const theirs = path.join(dir, "theirs");
    const args = ["raw", "unpack", ...(process.getuid?.() === 0 ? [] : ["--rootless"]), "--image", `${l}:top`, theirs];
    execFileSync("umoci", args, { stdio: "ignore" });
    const a = tree(mine);
    const b = tree(theirs);
    // srv/www/sub is created by the top layer's copy with the build's own time: same entry, any mtime
    for (const m of [a, b]) m.set("srv/www/sub", m.get("srv/www/sub")!.replace(/mtime=\d+$/, ""));
    assert.deepEqual(a, b);
  });
});

test("a Docker-built config (`\"Labels\": null`, `\"Volumes\": null`, ...) is read and edited", async () => {
  const { addTarLayer, configImage, imageStat, MediaType, tarBytes, unpackBundle } = await import("../src/mod.ts");
  await withTmp(async (dir) => {
    const layout = await Layout.init(path.join(dir, "l"));
    await newImage(layout, "t");
    fs.writeFileSync(path.join(dir, "l.tar"), tarBytes([{ name: "etc/", type: "dir" }, { name: "etc/passwd", data: "root:x:0:0::/root:/bin/sh\n" }]));
    await addTarLayer(layout, path.join(dir, "l.tar"), { tag: "t" });
    const img0 = await layout.resolve("t");
    // what `skopeo copy docker://busybox oci:...` stores: Docker's config JSON, byte for byte
    const docker = {
      architecture: img0.config.architecture,
      os: "linux",
      config: {
        Hostname: "", User: "", Env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["sh"], Image: "sha256:abc",
        Volumes: null, WorkingDir: "", Entrypoint: null, OnBuild: null, Labels: null,
      },
      container_config: { Cmd: ["/bin/sh", "-c", "#(nop) CMD [\"sh\"]"], Labels: {}, Volumes: null },
      created: "2023-07-18T23:19:33.655005962Z",
      docker_version: "20.10.23",
      history: [{ created: "2023-07-18T23:19:33.538571854Z", created_by: "/bin/sh -c #(nop) ADD file:x in / " }],
      rootfs: img0.config.rootfs,
    };
    const cfg = await layout.writeJSON(docker, MediaType.Config);
    const man = await layout.writeJSON({ ...img0.manifest, config: cfg }, MediaType.Manifest);
    await layout.setTag("t", man);

    const img = await layout.resolve("t");
    assert.deepEqual(img.config.config?.Cmd, ["sh"]);
    assert.equal(imageStat(img).history.length, 1);
    await unpackBundle(layout, img, path.join(dir, "b"), { rootless: true });
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, "b", "config.json"), "utf8")).process.args, ["sh"]);
    await configImage(layout, "t", { labels: ["a=b"], volumes: ["/v"], exposedPorts: ["80/tcp"], entrypoint: ["/bin/sh"] }, { newTag: "edited" });
    const e = await layout.resolve("edited");
    assert.deepEqual(e.config.config?.Labels, { a: "b" });
    assert.deepEqual(e.config.config?.Volumes, { "/v": {} });
    assert.deepEqual(e.config.config?.Entrypoint, ["/bin/sh"]);
  });
});
