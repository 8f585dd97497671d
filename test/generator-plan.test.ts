// Planning units is pure: planUnits turns what was read about layouts (held in
// memory here, under paths that do not exist) and the settings into the unit
// files and their contents, reports broken layouts, tags and name collisions,
// and touches no file.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { defaultGeneratorConfig, layoutSettings, type GeneratorConfig } from "../src/generator/config.ts";
import { type LayoutInput, planUnits, type PlanInput } from "../src/generator/plan.ts";
import { extractUnitName, unitBaseName } from "../src/generator/naming.ts";
import { formatUnits } from "../src/generator/write.ts";
import type { ImageInfo } from "../src/generator/unit.ts";
import { hostPlatform } from "../src/oci/platform.ts";
import { MediaType } from "../src/oci/types.ts";

const ROOT = `/nonexistent-ocigen-plan-${process.pid}`;
const OUT = join(ROOT, "out");

function image(seed: string, runtime: Record<string, unknown>): ImageInfo {
  const hex = (c: string) => c.repeat(64);
  const configDescriptor = { mediaType: MediaType.Config, digest: `sha256:${hex(seed === "a" ? "c" : "d")}`, size: 200 };
  return {
    manifestDescriptor: { mediaType: MediaType.Manifest, digest: `sha256:${hex(seed)}`, size: 300 },
    manifest: { schemaVersion: 2, mediaType: MediaType.Manifest, config: configDescriptor, layers: [] },
    config: { ...hostPlatform(), config: runtime, rootfs: { type: "layers", diff_ids: [] } },
    configDescriptor,
  } as ImageInfo;
}

function config(): GeneratorConfig {
  return { ...defaultGeneratorConfig(), imageLayoutDir: join(ROOT, "layouts"), extractsDir: join(ROOT, "extracts") };
}

function input(cfg: GeneratorConfig, layouts: LayoutInput[]): PlanInput {
  return { config: cfg, outDir: OUT, ocigen: ["/usr/local/bin/ocigen"], hostIds: { uid: 0, gid: 0 }, layouts };
}

const tagOf = (cfg: GeneratorConfig, name: string, tag: string, img: ImageInfo) => ({
  tag, base: unitBaseName(name, tag), settings: layoutSettings(cfg, name), image: img, tagManifest: img.manifestDescriptor.digest, extractedRootfs: null,
});

test("planUnits plans a unit and its extract companion from in-memory layouts, reports the broken ones, and writes nothing", () => {
  const cfg = config();
  cfg.layouts.set("web", { enable: true });
  const app = image("a", { Cmd: ["/bin/app", "--port", "80"], User: "1000:1000", ExposedPorts: { "80/tcp": {} } });
  const base = image("b", { Env: ["PATH=/bin"] }); // no command: a base image
  const plan = planUnits(input(cfg, [
    { name: "web", dir: join(ROOT, "layouts", "web"), tags: [tagOf(cfg, "web", "v1", app), { tag: "v2", base: unitBaseName("web", "v2"), error: "manifest sha256:ee.. is missing" }] },
    { name: "base", dir: join(ROOT, "layouts", "base"), tags: [tagOf(cfg, "base", "12", base)] },
    { name: "gone", dir: join(ROOT, "layouts", "gone"), error: "oci-layout: not found", tags: [] },
  ]));

  assert.equal(plan.units.length, 1);
  const u = plan.units[0];
  const name = unitBaseName("web", "v1");
  assert.equal(u.unit, `${name}.service`);
  assert.equal(u.path, join(OUT, `${name}.service`));
  assert.equal(u.wantsLink, join(OUT, "multi-user.target.wants", `${name}.service`), "enabled by the layout's settings");
  assert.equal(u.manifest, app.manifestDescriptor.digest);
  assert.deepEqual(u.ports, ["80/tcp"]);
  assert.equal(u.atomic, false);
  assert.match(u.text, /^ExecStart=.*\/bin\/app.*--port.*80/m);
  assert.match(u.text, /^User=1000$/m);
  assert.match(u.text, new RegExp(`^BindsTo=${extractUnitName(name).replace(/[.@\\]/g, "\\$&")}$`, "m"));
  assert.equal(u.extractUnit.unit, extractUnitName(name));
  assert.match(u.extractUnit.text, /^ExecStart=\/usr\/local\/bin\/ocigen extract --name web --ref v1 --manifest sha256:a{64} --service --user 1000:1000=1000:1000$/m);

  assert.deepEqual(plan.errors, [
    "layout web tag v2: manifest sha256:ee.. is missing",
    "layout base: no command: no tag's image config has Entrypoint or Cmd (12)",
    "layout gone: oci-layout: not found",
  ]);
  assert.ok(plan.messages.some((m) => m.level === "info" && m.text === "layout base tag 12: no Entrypoint or Cmd, no unit"));
  // the dry-run text is made of the plan alone
  assert.equal(formatUnits(plan.units).join(""), `---${u.path}---\n${u.text}---${u.extractUnit.path}---\n${u.extractUnit.text}---${u.wantsLink} -> ../${u.unit}---\n`);
  // pure: the same input gives the same plan, and no file was made
  assert.deepEqual(planUnits(input(cfg, [{ name: "web", dir: join(ROOT, "layouts", "web"), tags: [tagOf(cfg, "web", "v1", app)] }])).units, [u]);
  assert.equal(fs.existsSync(ROOT), false);
});

test("planUnits plans neither unit of two tags that map to one unit name, nor one whose name a broken tag claims", () => {
  const cfg = config();
  const app = image("a", { Entrypoint: ["/bin/app"] });
  const t = tagOf(cfg, "one", "v1", app);
  const plan = planUnits(input(cfg, [
    { name: "one", dir: join(ROOT, "layouts", "one"), tags: [t] },
    { name: "two", dir: join(ROOT, "layouts", "two"), tags: [{ ...t }] },
    { name: "three", dir: join(ROOT, "layouts", "three"), tags: [tagOf(cfg, "three", "v1", app), { tag: "v1-old", base: unitBaseName("three", "v1"), error: "bad" }] },
  ]));
  assert.deepEqual(plan.units, []);
  assert.equal(plan.errors.filter((e) => / collides with /.test(e)).length, 3);
  assert.ok(plan.errors.includes(`layout one tag v1: unit name ${t.base}.service collides with two:v1; neither is generated`), plan.errors.join("\n"));
  assert.ok(plan.errors.some((e) => e.startsWith("layout three tag v1: unit name") && e.includes("a broken tag")), plan.errors.join("\n"));
  assert.equal(fs.existsSync(ROOT), false);
});

test("planUnits warns about an enable label that is neither true nor false and leaves the unit disabled", () => {
  const cfg = config();
  const img = image("a", { Cmd: ["/bin/app"], Labels: { "org.ocigen.enable": "maybe" } });
  const plan = planUnits(input(cfg, [{ name: "app", dir: join(ROOT, "layouts", "app"), tags: [tagOf(cfg, "app", "v1", img)] }]));
  assert.equal(plan.units.length, 1);
  assert.equal(plan.units[0].wantsLink, undefined);
  assert.deepEqual(plan.messages.filter((m) => m.level === "warn").map((m) => m.text), ["layout app tag v1: label org.ocigen.enable=\"maybe\" is neither true nor false; ignored"]);
});
