// Command-line errors and flags (SPEC section 2 and 4):
// - global options (--log, --verbose, -q) are accepted after the verb, also for `raw` verbs;
// - an error naming a hostile entry stays ONE line on stderr (control characters escaped);
// - `generate --config RELATIVE` writes an absolute config path into the units (they run
//   with another working directory; before the fix the relative path was copied verbatim).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { oneLine } from "../src/log.ts";
import { configImage, Layout, loadGeneratorConfig, newImage, type tarBytes } from "../src/mod.ts";
import { imageWith as imageWithTag, ocigen, type Run } from "./cli-in-process.ts";
import { withTemp } from "../fixtures/layout.ts";

const withTmp = (fn: (dir: string) => Promise<void>) => withTemp("ocigen-cli-errors-", fn);
const imageWith = (dir: string, entries: Parameters<typeof tarBytes>[0]) => imageWithTag(dir, entries, "t");

test("--log/--verbose/-q are accepted after the verb, also for raw verbs", async () => {
  await withTmp(async (dir) => {
    const l = await imageWith(dir, [{ name: "f", data: "x" }]);
    let r = await ocigen("raw", "unpack", "--log", "debug", "--image", `${l}:t`, path.join(dir, "r1"));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^ocigen: debug: /m);
    r = await ocigen("unpack", "--image", `${l}:t`, "--log=info", path.join(dir, "b1"));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^ocigen: info: /m);
    assert.doesNotMatch(r.stderr, /debug:/);
    r = await ocigen("ls", "--layout", l, "--verbose");
    assert.deepEqual([r.code, r.stdout], [0, "t\n"]);
    r = await ocigen("ls", "--layout", l, "-q", "--log", "warn");
    assert.deepEqual([r.code, r.stdout], [0, "t\n"]);
    r = await ocigen("ls", "--layout", l, "--log", "loud");
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  });
});

test("an error naming a hostile entry is one line, control characters escaped", async () => {
  assert.equal(oneLine("a\nb\rc\x1b[2Kd\te\u009b"), "a\\nb\\rc\\x1b[2Kd\te\\x9b");
  await withTmp(async (dir) => {
    const evil = "x\nocigen: all good\x1b[2K";
    const l = await imageWith(dir, [{ name: evil, type: "link", linkname: "nonexistent" }]);
    const target = path.join(dir, "bundle");
    const r = await ocigen("unpack", "--image", `${l}:t`, target);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.split("\n").length, 2, JSON.stringify(r.stderr)); // one line + final newline
    assert.ok(r.stderr.endsWith("\n"));
    assert.ok(r.stderr.includes("entry x\\nocigen: all good\\x1b[2K"), r.stderr);
    assert.ok(!r.stderr.includes("\x1b"));
    assert.equal(fs.existsSync(target), false);
  });
});

test("generate --config RELATIVE puts the absolute config path into the extract units", async () => {
  await withTmp(async (dir) => {
    const layouts = path.join(dir, "layouts");
    const layout = await Layout.init(path.join(layouts, "busybox"));
    await newImage(layout, "latest");
    await configImage(layout, "latest", { cmd: ["/bin/true"] });
    fs.writeFileSync(path.join(dir, "gen.conf"), `[system]\nimagelayoutdir = ${layouts}\nextractsdir = ${path.join(dir, "extracts")}\n`);
    const cwd = process.cwd();
    process.chdir(dir);
    let r: Run;
    try {
      assert.equal(loadGeneratorConfig("gen.conf").path, path.join(dir, "gen.conf"));
      r = await ocigen("generate", "--dry-run", "--config", "gen.conf", path.join(dir, "out"));
    } finally {
      process.chdir(cwd);
    }
    assert.equal(r.code, 0, r.stderr);
    const exec = r.stdout.split("\n").filter((s) => s.startsWith("ExecStart=") && s.includes(" extract "));
    assert.equal(exec.length, 1, r.stdout);
    assert.ok(exec[0].includes(` --config ${path.join(dir, "gen.conf")} `), exec[0]);
  });
});

test("a missing descriptor field or schemaVersion is reported as missing, never as `undefined`", async () => {
  const { validateDescriptor, validateIndex, validateManifest } = await import("../src/mod.ts");
  const msg = (f: () => void) => {
    try {
      f();
    } catch (e) {
      return (e as Error).message;
    }
    return "";
  };
  const cfg = { mediaType: "application/vnd.oci.image.config.v1+json", digest: "sha256:" + "a".repeat(64), size: 2 };
  const cases: Array<[() => void, string]> = [
    [() => validateDescriptor({ ...cfg, mediaType: undefined }, "m: config"), "m: config.mediaType: missing"],
    [() => validateDescriptor({ ...cfg, digest: undefined }, "m: config"), "m: config.digest: missing"],
    [() => validateDescriptor({ ...cfg, size: undefined }, "m: config"), "m: config.size: missing"],
    [() => validateManifest({ config: cfg, layers: [] }, "m"), "m: schemaVersion: missing (must be 2)"],
    [() => validateIndex({ manifests: [] }, "i"), "i: schemaVersion: missing (must be 2)"],
    [() => validateDescriptor({ ...cfg, size: -1 }, "m: config"), "m: config.size: -1 is not a non-negative integer"],
  ];
  for (const [f, want] of cases) assert.equal(msg(f), want);
});

test("stat shows image history text without terminal escape sequences or line breaks", async () => {
  const { formatStatTable } = await import("../src/mod.ts");
  const out = formatStatTable({
    manifest: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: "sha256:" + "a".repeat(64), size: 1 },
    history: [{ layer: null, diff_id: "", created: "2024-01-01T00:00:00Z\x1b[2J", created_by: "a\tb", comment: "x\nFAKE \x1b[31mred\x1b[0m\x07", empty_layer: true }],
  });
  assert.ok(!/[\x00-\x08\x0b-\x1f\x7f]/.test(out), JSON.stringify(out));
  const lines = out.split("\n");
  assert.equal(lines.length, 3); // header, one row, final ""
  assert.ok(lines[1].endsWith("x FAKE \\x1b[31mred\\x1b[0m\\x07"), lines[1]);
  assert.ok(lines[1].includes("2024-01-01T00:00:00Z\\x1b[2J"));
  assert.ok(lines[1].includes(" a b "));
});
