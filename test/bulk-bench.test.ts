// `ocigen bench --image` / `--layout-dir` on small generated layouts: every
// stage is measured, tags naming one manifest are measured once, the tools
// run when installed, and the text and JSON forms carry the figures.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { makeLayout, mkTemp, rmTemp, tarFiles } from "../fixtures/layout.ts";
import { benchImages, formatImageBench } from "../src/bench/image.ts";

const layers = [
  tarFiles([{ name: "etc/", dir: true }, { name: "etc/hostname", data: "box\n" }, { name: "big", data: "y".repeat(200000) }]),
  tarFiles([{ name: "etc/.wh.hostname" }, { name: "app", data: "app\n" }]),
];

test("bench --image measures every stage and the tools", async () => {
  const tmp = mkTemp("ocigen-bench-img-");
  try {
    makeLayout(join(tmp, "l"), [{ tags: ["a", "b"], layers }]);
    const r = await benchImages({ images: [`${join(tmp, "l")}:a`], targetDir: tmp, runs: 1 });
    assert.equal(r.images.length, 1);
    const i = r.images[0];
    assert.equal(i.layers, 2);
    assert.equal(i.entries, 5);
    assert.deepEqual(i.stages.map((s) => s.name.split(" ")[0] + " " + (s.name.split(" ")[1] ?? "")), [
      "read +", "+ inflate", "+ diff_id", "+ tar", "+ fs", "end to", // cumulative stages, then end to end
    ]);
    for (const s of i.stages) assert.ok(s.seconds! > 0, s.name);
    assert.equal(i.tools.length, 2);
    const text = formatImageBench(r);
    assert.match(text, /read \+ verify \(sha256, size\)/);
    assert.match(text, /umoci raw unpack +(skipped|[0-9.]+ )/);
    assert.deepEqual(fs.readdirSync(tmp), ["l"], "the work directory is removed");
  } finally {
    rmTemp(tmp);
  }
});

test("bench --layout-dir measures each distinct manifest once and sums them", async () => {
  const tmp = mkTemp("ocigen-bench-dir-");
  try {
    makeLayout(join(tmp, "layouts/x"), [{ tags: ["a", "b"], layers }]);
    makeLayout(join(tmp, "layouts/y"), [{ tags: ["c"], layers: layers.slice(0, 1) }]);
    const r = await benchImages({ layoutDir: join(tmp, "layouts"), targetDir: tmp, runs: 1, noTools: true });
    assert.deepEqual(r.images.map((i) => i.image), ["x:a", "y:c"]);
    assert.ok(r.total);
    assert.equal(r.total!.layers, 3);
    assert.match(formatImageBench(r), /all 2 images: 3 layers/);
    JSON.parse(JSON.stringify(r));
  } finally {
    rmTemp(tmp);
  }
});
