// Every verb's --json output validates against the JSON Schema the README
// gives for it (the schemas are read from the README, so the documentation
// cannot drift from the output), and the shared field names mean one thing.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";
import { makeLayout, tarFiles } from "../fixtures/layout.ts";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const cli = isDeno ? [process.execPath, "run", "-A", path.join(root, "src/main.ts")] : [process.execPath, "--import", "tsx", path.join(root, "src/main.ts")];

function ocigen(args: string[], cwd = root): { code: number | null; out: string; err: string } {
  const r = spawnSync(cli[0], [...cli.slice(1), ...args], { cwd, encoding: "utf8", timeout: 180_000, env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** `<!-- json-schema:NAME -->` followed by a json code block in the README. */
function readmeSchemas(): Map<string, object> {
  const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
  const out = new Map<string, object>();
  for (const m of readme.matchAll(/<!-- json-schema:([a-z-]+) -->\n```json\n([\s\S]*?)```/g)) out.set(m[1], JSON.parse(m[2]));
  return out;
}

describe("--json outputs match the README's schemas", () => {
  let work = "";
  const schemas = readmeSchemas();
  const AjvCtor = ((Ajv as unknown as { default?: typeof Ajv }).default ?? Ajv) as typeof Ajv;
  const ajv = new AjvCtor({ allErrors: true, strict: true });
  const check = (name: string, out: string): Record<string, unknown> => {
    assert.ok(schemas.has(name), `README has a schema for ${name}`);
    assert.ok(out.endsWith("}\n") && out.split("\n").length === 2, `one JSON object and a newline: ${out.slice(0, 200)}`);
    const doc = JSON.parse(out) as Record<string, unknown>;
    const validate = ajv.compile(schemas.get(name)!);
    assert.ok(validate(doc), `${name}: ${ajv.errorsText(validate.errors)}\n${out.slice(0, 600)}`);
    return doc;
  };

  before(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-json-"));
    fs.mkdirSync(path.join(work, "layouts"));
    makeLayout(path.join(work, "layouts", "app"), [{
      tags: ["latest", "v1"],
      layers: [tarFiles([{ name: "etc/", dir: true }, { name: "etc/hostname", data: "app\n" }])],
      config: { config: { Cmd: ["/bin/true"] } },
    }]);
    fs.writeFileSync(path.join(work, "conf"), `[system]\nimagelayoutdir = ${work}/layouts\nextractsdir = ${work}/extracts\n`);
  });
  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test("the README has one schema per reporting verb", () => {
    assert.deepEqual([...schemas.keys()].sort(), ["bench", "bench-kernels", "build", "extract-all", "gc", "gc-extracts", "ls", "status", "update"]);
  });

  test("ls --json", () => {
    const layout = path.join(work, "layouts", "app");
    const r = ocigen(["ls", "--layout", layout, "--json"]);
    assert.equal(r.code, 0, r.err);
    const doc = check("ls", r.out) as { layout: string; images: Array<{ image: string; tag: string; manifest: string; layers: number }> };
    assert.equal(doc.layout, layout);
    assert.deepEqual(doc.images.map((i) => i.tag), ["latest", "v1"]);
    assert.equal(doc.images[0].image, `${layout}:latest`);
    assert.equal(doc.images[0].manifest, doc.images[1].manifest);
    assert.equal(doc.images[0].layers, 1);
    // without --json: one tag per line, as umoci
    assert.equal(ocigen(["ls", "--layout", layout]).out, "latest\nv1\n");
  });

  test("build --json, then unchanged", () => {
    const spec = path.join(work, "spec.yaml");
    fs.writeFileSync(path.join(work, "f"), "x\n");
    fs.writeFileSync(spec, "one:\n  base: empty\n  copy: f /f\n");
    const layout = path.join(work, "built");
    const a = ocigen(["build", spec, "--layout", layout, "--json"]);
    assert.equal(a.code, 0, a.err);
    const first = check("build", a.out) as { images: Array<{ status: string; tags: string[]; manifest: string; image: string }> };
    assert.equal(first.images[0].status, "built");
    assert.equal(first.images[0].image, `${layout}:one`);
    const b = ocigen(["build", spec, "--layout", layout, "--json"]);
    const second = check("build", b.out) as { images: Array<{ status: string; tags: string[]; manifest: string }> };
    assert.deepEqual([second.images[0].status, second.images[0].tags], ["unchanged", []]);
    assert.equal(second.images[0].manifest, first.images[0].manifest);
    // ls names the same manifest under the same field
    const ls = JSON.parse(ocigen(["ls", "--layout", layout, "--json"]).out) as { images: Array<{ tag: string; manifest: string }> };
    assert.equal(ls.images.find((i) => i.tag === "one")?.manifest, first.images[0].manifest);
  });

  test("gc --json", () => {
    const layout = path.join(work, "layouts", "app");
    fs.writeFileSync(path.join(layout, "blobs/sha256", "0".repeat(64)), "junk");
    const r = ocigen(["gc", "--layout", layout, "--json"]);
    assert.equal(r.code, 0, r.err);
    const doc = check("gc", r.out) as { removed: string[]; kept: number };
    assert.deepEqual(doc.removed, [`sha256:${"0".repeat(64)}`]);
    assert.equal(doc.kept, 3);
  });

  test("extract --all --json and gc-extracts --json", () => {
    const conf = path.join(work, "conf");
    const r = ocigen(["extract", "--all", "--config", conf, "--json"]);
    assert.equal(r.code, 0, r.err);
    const doc = check("extract-all", r.out) as { images: Array<{ image: string; status: string; bytes: number; manifest: string }> };
    assert.equal(doc.images.length, 1);
    assert.equal(doc.images[0].image, "app:latest,v1");
    assert.equal(doc.images[0].status, "extracted");
    const ls = JSON.parse(ocigen(["ls", "--layout", path.join(work, "layouts", "app"), "--json"]).out) as { images: Array<{ manifest: string; bytes: number }> };
    assert.equal(doc.images[0].manifest, ls.images[0].manifest, "the same manifest digest under the same name");
    assert.equal(doc.images[0].bytes, ls.images[0].bytes, "bytes: the layers' compressed size in both");
    fs.rmSync(path.join(work, "layouts", "app"), { recursive: true });
    const g = ocigen(["gc-extracts", "--config", conf, "--json", "--dry-run"]);
    assert.equal(g.code, 0, g.err);
    const gc = check("gc-extracts", g.out) as { dryRun: boolean; paths: string[] };
    assert.equal(gc.dryRun, true);
    assert.ok(gc.paths.length >= 1, g.out);
  });

  test("bench --kernels --json (a tiny image, one run)", () => {
    const r = ocigen(["bench", "--kernels", "--json", "--scale", "1", "--runs", "1", "--no-unpack", "--dir", path.join(work, "bench")]);
    assert.equal(r.code, 0, r.err);
    const doc = check("bench-kernels", r.out) as { image: { bytes: number; unpackedBytes: number } };
    assert.ok(doc.image.unpackedBytes > doc.image.bytes, "sizes in bytes: uncompressed above compressed");
  });
});
