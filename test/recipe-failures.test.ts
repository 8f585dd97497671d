// Recipe build failures (SPEC 5: "A failed target leaves the layout exactly as it was"): a
// build whose first target fails leaves no new, empty OCI layout behind where there was none
// (or in a directory that was empty). Targets built before a failure stay.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { buildFile, Layout, OcigenError } from "../src/mod.ts";
import { withTemp } from "../fixtures/layout.ts";

const withTmp = (fn: (dir: string) => Promise<void>) => withTemp("ocigen-build-failures-", fn);

const failing = 'a:\n  base: empty\n  copy: "missing.txt /x"\n';

test("a failed first target leaves no layout where there was none", async () => {
  await withTmp(async (dir) => {
    fs.writeFileSync(path.join(dir, "spec.yaml"), failing);
    const l = path.join(dir, "new-layout");
    await assert.rejects(buildFile(path.join(dir, "spec.yaml"), { layout: l, tmpDir: dir }), (e: unknown) =>
      e instanceof OcigenError && /^Cannot build target a: /.test(e.message));
    assert.equal(fs.existsSync(l), false);

    const empty = path.join(dir, "empty");
    fs.mkdirSync(empty);
    await assert.rejects(buildFile(path.join(dir, "spec.yaml"), { layout: empty, tmpDir: dir }), OcigenError);
    assert.deepEqual(fs.readdirSync(empty), [], "the empty directory is empty again");
  });
});

test("targets built before a failure are kept; an existing layout is left as it was", async () => {
  await withTmp(async (dir) => {
    fs.writeFileSync(path.join(dir, "hello.txt"), "hi\n");
    fs.writeFileSync(path.join(dir, "spec.yaml"), 'ok:\n  base: empty\n  copy: "hello.txt /h"\nbad:\n  base: ok\n  copy: "missing.txt /x"\n');
    const l = path.join(dir, "layout");
    await assert.rejects(buildFile(path.join(dir, "spec.yaml"), { layout: l, tmpDir: dir }), OcigenError);
    const tags = await (await Layout.open(l)).listTags();
    assert.deepEqual(tags.filter((t) => !/-\d{4}-\d\d-\d\d_\d+$/.test(t)), ["ok"]);
    const before = fs.readFileSync(path.join(l, "index.json"), "utf8");
    const blobs = fs.readdirSync(path.join(l, "blobs", "sha256")).sort();
    fs.writeFileSync(path.join(dir, "spec2.yaml"), failing);
    await assert.rejects(buildFile(path.join(dir, "spec2.yaml"), { layout: l, tmpDir: dir }), OcigenError);
    assert.equal(fs.readFileSync(path.join(l, "index.json"), "utf8"), before);
    assert.deepEqual(fs.readdirSync(path.join(l, "blobs", "sha256")).sort(), blobs);
  });
});

test("target names must be OCI ref.names (the tags other verbs, skopeo and umoci can address)", async () => {
  const { parseBuildSpec } = await import("../src/mod.ts");
  for (const bad of ["_a", "a__b", "A-", "a..b", "-a"]) {
    assert.throws(() => parseBuildSpec(`${bad}:\n  base: empty\n`, "s.yaml"), (e: unknown) =>
      e instanceof OcigenError && e.message === `s.yaml: target ${bad}: name is not a valid tag`, bad);
  }
  for (const good of ["a", "v1.0", "my-app", "a_b", "A.B_c", "x--y"]) {
    assert.equal(parseBuildSpec(`${good}:\n  base: empty\n`, "s.yaml").targets[0].name, good);
  }
});
