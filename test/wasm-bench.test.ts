// The benchmark image generator (bench/image.ts) is deterministic and
// produces a valid layout whose layers the WASM decoder inflates to tars
// matching the config's diff_ids. (No timings are measured here.)
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import crypto from "node:crypto";
import { generateBenchImage } from "../bench/image.ts";
import { WasmGunzip } from "../src/compress/inflate-wasm.ts";

test("bench image generator: deterministic, valid layout, layers inflate to their diff_ids", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-wasm-bench-"));
  try {
    const a = await generateBenchImage({ dir: path.join(tmp, "a"), scaleMB: 2, seed: 7 });
    const b = await generateBenchImage({ dir: path.join(tmp, "b"), scaleMB: 2, seed: 7 });
    assert.deepEqual(a.layers.map((l) => [l.name, l.digest, l.diffId]), b.layers.map((l) => [l.name, l.digest, l.diffId]));
    assert.equal(a.layers.length, 5);
    const again = await generateBenchImage({ dir: path.join(tmp, "a"), scaleMB: 2, seed: 7 }); // cached
    assert.deepEqual(again, a);
    const index = JSON.parse(fs.readFileSync(path.join(a.layout, "index.json"), "utf8"));
    assert.equal(index.manifests[0].annotations["org.opencontainers.image.ref.name"], "bench");
    const manHex = index.manifests[0].digest.slice(7);
    const manifest = JSON.parse(fs.readFileSync(path.join(a.layout, "blobs/sha256", manHex), "utf8"));
    const config = JSON.parse(fs.readFileSync(path.join(a.layout, "blobs/sha256", manifest.config.digest.slice(7)), "utf8"));
    assert.deepEqual(config.rootfs.diff_ids, a.layers.map((l) => l.diffId));
    for (const l of a.layers) {
      const h = crypto.createHash("sha256");
      const g = new WasmGunzip({ write: (c) => void h.update(c), end() {} });
      g.write(fs.readFileSync(l.blob));
      g.end();
      assert.equal(`sha256:${h.digest("hex")}`, l.diffId, l.name);
    }
    const single = await generateBenchImage({ dir: path.join(tmp, "s"), scaleMB: 2, shape: "single", level: 1 });
    assert.equal(single.layers.length, 1);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
