// `extract --all` starts an image from an already-extracted tree of its bottom
// layers; that reuse is an optimisation, never a trust shortcut. A shared layer
// blob corrupted after the first run must make the next run fail that image
// clearly (exit 1 through the CLI), exactly as a full unpack would; before,
// the blob was never read again and the run exited 0.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { type FixtureImage, makeLayout, rmTemp, tarFiles } from "../fixtures/layout.ts";
import { generatorEnv } from "../fixtures/generator.ts";
import { extractAll } from "../src/bulk/extract-all.ts";
import { ROOT } from "./oci-helpers.ts";

const BASE = tarFiles([
  { name: "etc/", dir: true },
  { name: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\n" },
  { name: "bin/", dir: true, mode: 0o755 },
  { name: "bin/sh", data: "#!fake shell\n".repeat(500), mode: 0o755 },
]);
const APP = tarFiles([{ name: "app/", dir: true }, { name: "app/run", data: "app\n", mode: 0o755 }]);
const EXTRA = tarFiles([{ name: "extra", data: "more\n" }]);
const cmd: Pick<FixtureImage, "config"> = { config: { config: { Cmd: ["/bin/sh"] } } as FixtureImage["config"] };

function corrupt(file: string): void {
  const b = fs.readFileSync(file);
  b[Math.floor(b.length / 2)] ^= 0xff;
  fs.writeFileSync(file, b);
}

const isDeno = Boolean((globalThis as { Deno?: unknown }).Deno);

type Where = "the new image's own layout" | "the layout the reused tree came from";

/** First run extracts base; then an image on top of the same base layer appears. Returns that image and its shared blob file. */
async function twoRuns(e: ReturnType<typeof generatorEnv>, where: Where): Promise<{ image: string; blob: string }> {
  const base = makeLayout(join(e.layouts, "base"), [{ tags: ["latest"], layers: [BASE], ...cmd }]);
  const r1 = await extractAll({ config: e.cfg, jobs: 1, progress: false });
  assert.deepEqual(r1.failed, []);
  assert.equal(r1.images[0].status, "extracted");
  if (where === "the new image's own layout") {
    const app = makeLayout(join(e.layouts, "app"), [{ tags: ["1"], layers: [BASE, APP], ...cmd }]);
    return { image: "app:1", blob: join(app.dir, "blobs/sha256", app.layers[0][0].digest.slice(7)) };
  }
  makeLayout(join(e.layouts, "base"), [{ tags: ["latest"], layers: [BASE], ...cmd }, { tags: ["plus"], layers: [BASE, EXTRA], ...cmd }]);
  return { image: "base:plus", blob: join(base.dir, "blobs/sha256", base.layers[0][0].digest.slice(7)) };
}

for (const where of ["the new image's own layout", "the layout the reused tree came from"] as const) {
  test(`extract --all: a shared layer blob corrupted after the first run fails the image reusing it (${where})`, { timeout: 120000 }, async () => {
    // Control: without the corruption the image is started from base's tree.
    const ctl = generatorEnv("ocigen-reuse-ctl-");
    try {
      const { image } = await twoRuns(ctl, where);
      const rc = await extractAll({ config: ctl.cfg, jobs: 1, progress: false });
      assert.equal(rc.images.find((i) => i.image === image)?.status, "reused", JSON.stringify(rc.images));
    } finally {
      rmTemp(ctl.tmp);
    }
    const e = generatorEnv("ocigen-reuse-");
    try {
      const { image, blob } = await twoRuns(e, where);
      corrupt(blob);
      const t0 = Date.now();
      if (isDeno) {
        const r2 = await extractAll({ config: e.cfg, jobs: 1, progress: false });
        const img = r2.images.find((i) => i.image === image)!;
        assert.equal(img.status, "failed");
        assert.match(img.error ?? "", /layer sha256:[0-9a-f]{12}\.\.: digest mismatch/);
        assert.deepEqual(r2.failed, [image]);
      } else {
        const r2 = spawnSync(process.execPath, ["--import", "tsx", "src/main.ts", "extract", "--all", "--config", e.conf, "--jobs", "1"], { cwd: ROOT, encoding: "utf8", timeout: 100000 });
        assert.equal(r2.status, 1, r2.stderr);
        assert.match(r2.stderr, new RegExp(`1 of \\d+ images failed: ${image.replace(".", "\\.")}`));
        assert.match(r2.stdout + r2.stderr, /layer sha256:[0-9a-f]{12}\.\.: digest mismatch/);
      }
      assert.ok(Date.now() - t0 < 100000);
    } finally {
      rmTemp(e.tmp);
    }
  });
}
