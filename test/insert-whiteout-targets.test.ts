// Insert targets named like whiteouts: `insert SRC TARGET` with a TARGET component named
// `.wh.*` would write a layer entry that unpack reads back as a whiteout (`insert f /.wh.etc`
// would delete /etc from the image, `insert f /d/.wh..wh..opq` empty /d). Such targets are
// refused, as `.wh.` names inside SRC are; the layout is left unchanged.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { addTarLayer, insertPath, insertWhiteout, Layout, newImage, OcigenError, tarBytes } from "../src/mod.ts";

test("TARGET components named .wh.* are refused, the layout is unchanged", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-insert-edge-"));
  try {
    const layout = await Layout.init(path.join(dir, "l"));
    await newImage(layout, "t");
    fs.writeFileSync(path.join(dir, "l.tar"), tarBytes([{ name: "etc/", type: "dir" }, { name: "etc/passwd", data: "root:x:0:0::/:/bin/sh\n" }]));
    await addTarLayer(layout, path.join(dir, "l.tar"), { tag: "t" });
    const src = path.join(dir, "f");
    fs.writeFileSync(src, "x");
    const index = fs.readFileSync(path.join(layout.dir, "index.json"), "utf8");
    const blobs = fs.readdirSync(path.join(layout.dir, "blobs", "sha256")).sort();
    const reserved = (e: unknown) => e instanceof OcigenError && e.code === "EREPACK" && /\.wh\. are reserved/.test(e.message);
    for (const target of ["/.wh.etc", "/etc/.wh..wh..opq", "/.wh.x/y", "etc/.wh.passwd"]) {
      await assert.rejects(insertPath(layout, src, target, { tag: "t" }), reserved, target);
    }
    await assert.rejects(insertWhiteout(layout, "/.wh.d/x", { tag: "t" }), reserved);
    assert.equal(fs.readFileSync(path.join(layout.dir, "index.json"), "utf8"), index);
    assert.deepEqual(fs.readdirSync(path.join(layout.dir, "blobs", "sha256")).sort(), blobs);
    // ordinary targets still work
    await insertPath(layout, src, "/etc/x.wh.y", { tag: "t" });
    assert.equal((await layout.resolve("t")).manifest.layers.length, 2);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
