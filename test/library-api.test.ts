// Library API: SPEC section 2 "Library" — everything a library user does, through src/mod.ts only:
// walk a directory of layouts, open a layout and resolve a tag, verify and read blobs,
// apply layers to a directory, unpack a bundle, render a unit.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  addTarLayer,
  applyLayers,
  configImage,
  defaultGeneratorConfig,
  type Descriptor,
  discoverLayouts,
  type ImageInfo,
  Layout,
  layoutSettings,
  MediaType,
  newImage,
  OcigenError,
  renderUnit,
  type ResolvedImage,
  tarBytes,
  unitBaseName,
  unpackBundle,
} from "../src/mod.ts";

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-library-api-"));
}

async function readAll(s: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  const r = s.getReader();
  for (;;) {
    const { done, value } = await r.read();
    if (done) return n;
    n += value.length;
  }
}

/** Makes `<root>/example.com/app` with tag `v1`: two layers (the second deletes a file) and a command. */
async function makeLayouts(root: string): Promise<string> {
  const dir = path.join(root, "example.com", "app");
  const layout = await Layout.init(dir);
  await newImage(layout, "v1", { created: "2024-01-01T00:00:00Z" });
  const t1 = path.join(root, "l1.tar");
  fs.writeFileSync(t1, tarBytes([
    { name: "etc/", type: "dir", mtime: 1000 },
    { name: "etc/passwd", data: "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n", mtime: 1000 },
    { name: "etc/group", data: "root:x:0:\napp:x:1000:\n", mtime: 1000 },
    { name: "bin/", type: "dir", mtime: 1000 },
    { name: "bin/tool", data: "#!/bin/sh\necho hi\n", mode: 0o755, mtime: 1000 },
    { name: "bin/old", data: "old", mtime: 1000 },
  ]));
  const t2 = path.join(root, "l2.tar");
  fs.writeFileSync(t2, tarBytes([
    { name: "bin/.wh.old", data: "", mtime: 2000 },
    { name: "srv/data", data: "hello", mtime: 2000 },
  ]));
  await addTarLayer(layout, t1, { tag: "v1", sourceDateEpoch: 1000 });
  await addTarLayer(layout, t2, { tag: "v1", compression: "zstd", sourceDateEpoch: 2000 });
  await configImage(layout, "v1", { entrypoint: ["/bin/tool"], cmd: ["a b", "$HOME"], env: ["K=v"], user: "app" });
  fs.rmSync(t1);
  fs.rmSync(t2);
  return dir;
}

test("library: walk, open, resolve, verify, apply, unpack, render (via src/mod.ts)", async () => {
  const root = tmp();
  try {
    const layoutsRoot = path.join(root, "layouts");
    const dir = await makeLayouts(layoutsRoot);

    // walk a directory of layouts
    const found = await discoverLayouts(layoutsRoot);
    assert.deepEqual(found.errors, []);
    assert.deepEqual(found.layouts.map((l) => l.name), ["example.com/app"]);
    assert.equal(found.layouts[0].dir, dir);

    // open a layout and resolve a tag
    const layout = await Layout.open(dir);
    assert.deepEqual(await layout.listTags(), ["v1"]);
    const img: ResolvedImage = await layout.resolve("v1");
    assert.equal(img.manifest.layers.length, 2);
    assert.equal(img.manifest.layers[1].mediaType, MediaType.LayerZstd);
    assert.deepEqual(img.config.config?.Entrypoint, ["/bin/tool"]);
    await assert.rejects(layout.resolve("nope"), (e: unknown) => e instanceof OcigenError && e.code === "ENOTAG");

    // verify and read blobs (digest and size)
    const all: Descriptor[] = [img.manifestDescriptor, img.configDescriptor, ...img.manifest.layers];
    for (const d of all) await layout.verifyBlob(d);
    for (const d of img.manifest.layers) assert.equal(await readAll(layout.openBlob(d)), d.size);
    const cfgBytes = await layout.readBlob(img.configDescriptor);
    assert.equal(cfgBytes.length, img.configDescriptor.size);
    const wrongSize = { ...img.configDescriptor, size: img.configDescriptor.size + 1 };
    await assert.rejects(layout.readBlob(wrongSize), (e: unknown) => e instanceof OcigenError && e.code === "ESIZE");

    // apply layers to a directory
    const rootfs = path.join(root, "rootfs");
    fs.mkdirSync(rootfs);
    await applyLayers(layout, img.manifest.layers, img.config.rootfs.diff_ids, rootfs, { rootless: true });
    assert.equal(fs.readFileSync(path.join(rootfs, "srv/data"), "utf8"), "hello");
    assert.equal(fs.existsSync(path.join(rootfs, "bin/old")), false, "whiteout of the upper layer applied");
    assert.equal(fs.statSync(path.join(rootfs, "bin/tool")).mode & 0o777, 0o755);

    // unpack a bundle
    const bundle = path.join(root, "bundle");
    await unpackBundle(layout, img, bundle, { rootless: true });
    for (const f of ["config.json", "umoci.json", "rootfs/srv/data"]) assert.ok(fs.existsSync(path.join(bundle, f)), f);
    const spec = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8"));
    assert.deepEqual(spec.process.args, ["/bin/tool", "a b", "$HOME"]);
    assert.ok(spec.process.env.includes("K=v"));
    assert.deepEqual([spec.process.user.uid, spec.process.user.gid], [1000, 1000]);

    // render a unit
    const base = unitBaseName("example.com/app", "v1");
    assert.equal(base, "com.example.app.ref.v1");
    const cfg = defaultGeneratorConfig();
    const info: ImageInfo = img;
    const text = renderUnit({
      name: "example.com/app",
      tag: "v1",
      base,
      layoutDir: dir,
      extractsDir: path.join(root, "extracts"),
      image: info,
      settings: layoutSettings(cfg, "example.com/app"),
      ocigen: ["/usr/bin/ocigen"],
      extractedRootfs: rootfs,
    });
    assert.match(text, /^ExecStart=\/bin\/tool "a b" \$\$HOME$/m);
    assert.match(text, /^Environment=K=v$/m);
    assert.match(text, /^User=1000$/m, "user resolved in the image's own /etc/passwd");
    assert.match(text, /^Slice=oci\.slice$/m);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
