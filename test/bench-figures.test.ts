// `ocigen bench --quick`: the one command that prints every speed figure
// runs end to end on tiny generated data, and its table and JSON have the
// documented shape (the README's schema, one row per figure in a fixed
// order, ratios consistent with the times). Speed is not asserted: at these
// sizes the figures mean nothing. Tools that are missing (umoci, zstd, the
// single binary) turn rows into "skipped", which is part of the shape.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const cli = isDeno ? [process.execPath, "run", "-A", path.join(root, "src/main.ts")] : [process.execPath, "--import", "tsx", path.join(root, "src/main.ts")];

function ocigen(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(cli[0], [...cli.slice(1), ...args], { cwd: root, encoding: "utf8", timeout: 900_000, env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const IDS = [
  "unpack.node.tar", "unpack.node.umoci", "unpack.deno.tar", "zstd", "small.node", "small.binary", "medium.node.tar",
  "rss.node", "rss.deno", "generate.node", "generate.binary", "insert.gzip", "repack.gzip", "insert.size",
];

interface Row {
  id: string;
  figure: string;
  unit: string;
  goal: string;
  value?: number;
  min?: number;
  max?: number;
  pass?: boolean;
  skipped?: string;
  ocigen?: { name: string; seconds?: number; rssMiB?: number };
  baseline?: { name: string; seconds?: number };
}

test("bench --quick --json: every figure, README schema, consistent rows", { timeout: 900_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-bench-figures-"));
  try {
    const r = ocigen(["bench", "--quick", "--json", "--dir", dir]);
    assert.equal(r.code, 0, r.err.slice(-2000));
    assert.ok(r.out.endsWith("}\n") && r.out.split("\n").length === 2, "one JSON object and a newline");
    const doc = JSON.parse(r.out) as { quick: boolean; runs: number; rows: Row[]; image?: { bytes: number; unpackedBytes: number } };
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    const m = /<!-- json-schema:bench -->\n```json\n([\s\S]*?)```/.exec(readme);
    assert.ok(m, "the README has the bench schema");
    const AjvCtor = ((Ajv as unknown as { default?: typeof Ajv }).default ?? Ajv) as typeof Ajv;
    const validate = new AjvCtor({ allErrors: true, strict: true }).compile(JSON.parse(m[1]));
    assert.ok(validate(doc), JSON.stringify(validate.errors));
    assert.equal(doc.quick, true);
    assert.equal(doc.runs, 1);
    assert.deepEqual(doc.rows.map((x) => x.id), IDS);
    assert.ok(doc.image && doc.image.unpackedBytes > doc.image.bytes, "the generated image: sizes in bytes, tar above gzip");
    let measured = 0;
    for (const row of doc.rows) {
      if (row.skipped !== undefined) {
        assert.ok(row.skipped.length > 0 && row.value === undefined && row.pass === undefined, `${row.id}: a skipped row says why and has no figure`);
        if (process.env.CI && /failed/.test(row.skipped)) assert.fail(`${row.id}: ${row.skipped}`);
        continue;
      }
      measured++;
      assert.equal(typeof row.value, "number", row.id);
      assert.ok(Number.isFinite(row.value!) && row.value! > 0, `${row.id}: ${row.value}`);
      const inRange = (row.min === undefined || row.value! >= row.min) && (row.max === undefined || row.value! <= row.max);
      assert.equal(row.pass, inRange, `${row.id}: pass agrees with the goal's bounds`);
      if (row.unit === "x" && row.ocigen?.seconds !== undefined && row.baseline?.seconds !== undefined) {
        assert.ok(Math.abs(row.value! - row.baseline.seconds / row.ocigen.seconds) < 1e-9 * row.value!, `${row.id}: ratio = baseline / ocigen`);
      }
      if (row.unit === "MiB") assert.equal(row.value, row.ocigen?.rssMiB, `${row.id}: the RSS figure is ocigen's`);
    }
    // the Node runner and tar are always there: the big-image unpack row is measured
    assert.ok(doc.rows.find((x) => x.id === "unpack.node.tar")!.value !== undefined, "unpack vs tar measured");
    assert.ok(measured >= 2, `${measured} rows measured`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("bench --quick --only: the table has a header and one verdict per chosen figure", { timeout: 600_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-bench-figures-"));
  try {
    const r = ocigen(["bench", "--quick", "--only", "medium,zstd", "--dir", dir]);
    assert.equal(r.code, 0, r.err.slice(-2000));
    const lines = r.out.trimEnd().split("\n");
    assert.match(lines[0], /^ocigen bench — .*QUICK/);
    const header = lines.findIndex((l) => /^figure\s+ocigen\s+baseline\s+ratio\s+goal\s+result$/.test(l));
    assert.ok(header > 0, r.out);
    const rows = lines.slice(header + 1).filter((l) => /\s(PASS|FAIL|skip)$/.test(l));
    assert.equal(rows.length, 2, r.out);
    assert.match(rows[0], /^zstd decode/);
    assert.match(rows[1], /^unpack, ~50 MB image, Node, vs tar -xzf\s+\d+\.\d+ s tar -xzf \(per layer\) \d+\.\d+ s\s+\d+\.\d+x >= 1\.5x faster/);
    assert.match(lines.at(-1)!, /^\d+ of \d+ measured goals met, \d+ skipped;/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("bench: a flag of the other mode is a usage error naming it", () => {
  const r = ocigen(["bench", "--quick", "--scale", "5"]);
  assert.equal(r.code, 1);
  assert.equal(r.out, "");
  assert.match(r.err.trim(), /^[^\n]*--scale belongs to --kernels[^\n]*$/);
});
