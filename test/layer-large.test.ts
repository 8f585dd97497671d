// Layers large enough that the applier hands small files to its second
// file-creating thread: the tree must be exactly what one thread gives
// (replacements of lower files, directories and symlinks, a name written
// twice, hard links to handed files, modes with special bits, times).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import type { TarWriterEntry } from "../src/tar/writer.ts";
import { applyTo, tmpdir } from "./layer-fixtures.ts";

const N = 120;
const MTIME = 1_600_000_000;

function layers(): TarWriterEntry[][] {
  const lower: TarWriterEntry[] = [{ name: "d0/", type: "dir", mode: 0o755 }];
  for (let i = 0; i < N; i++) {
    lower.push({ name: `d0/x${i}`, data: `lower ${i}` });
    lower.push({ name: `d0/s${i}/`, type: "dir", mode: 0o755 });
    lower.push({ name: `d0/s${i}/inner`, data: "inner" });
    lower.push({ name: `d0/l${i}`, type: "symlink", linkname: "/nowhere" });
  }
  const upper: TarWriterEntry[] = [{ name: "fill/", type: "dir", mode: 0o755 }];
  for (let i = 0; i < 300; i++) upper.push({ name: `fill/a${i}`, data: `fill ${i}`, mtime: MTIME });
  for (let i = 0; i < N; i++) {
    for (const k of ["x", "s", "l", "n"]) upper.push({ name: `d0/${k}${i}`, data: `c-${k}${i}`.repeat(i + 1), mtime: MTIME + i, mode: i % 3 === 0 ? 0o600 : 0o644 });
  }
  upper.push({ name: "d0/dup", data: "first", mtime: MTIME });
  upper.push({ name: "d0/suid", data: "s", mode: 0o4755, mtime: MTIME });
  upper.push({ name: "d0/dup", data: "second", mtime: MTIME });
  upper.push({ name: "d0/hl", type: "link", linkname: "d0/n3" });
  upper.push({ name: "fill/late", data: "late", mtime: MTIME });
  return [lower, upper];
}

test("a large layer: files handed to the second thread land exactly as written by one", () => {
  const root = tmpdir();
  try {
    const err = applyTo(root, layers(), { rootless: true });
    assert.equal(err, undefined, String(err));
    for (let i = 0; i < N; i++) {
      for (const k of ["x", "s", "l", "n"]) {
        const p = path.join(root, "d0", `${k}${i}`);
        const st = fs.lstatSync(p);
        assert.ok(st.isFile(), `${k}${i} is a file`);
        assert.equal(fs.readFileSync(p, "utf8"), `c-${k}${i}`.repeat(i + 1), `${k}${i} content`);
        assert.equal(st.mode & 0o7777, i % 3 === 0 ? 0o600 : 0o644, `${k}${i} mode`);
        assert.equal(Math.floor(st.mtimeMs / 1000), MTIME + i, `${k}${i} mtime`);
      }
    }
    for (let i = 0; i < 300; i++) assert.equal(fs.readFileSync(path.join(root, "fill", `a${i}`), "utf8"), `fill ${i}`);
    assert.equal(fs.readFileSync(path.join(root, "d0/dup"), "utf8"), "second");
    assert.equal(fs.readFileSync(path.join(root, "fill/late"), "utf8"), "late");
    assert.equal(fs.statSync(path.join(root, "d0/suid")).mode & 0o7777, 0o4755);
    assert.equal(fs.statSync(path.join(root, "d0/hl")).ino, fs.statSync(path.join(root, "d0/n3")).ino);
    assert.equal(fs.readdirSync(path.join(root, "d0")).length, 4 * N + 3);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("a large layer whose handed file cannot be created fails naming that entry", () => {
  const root = tmpdir();
  try {
    const upper: TarWriterEntry[] = [{ name: "fill/", type: "dir", mode: 0o755 }];
    for (let i = 0; i < 300; i++) upper.push({ name: `fill/a${i}`, data: `fill ${i}` });
    // a name longer than NAME_MAX fails in the kernel, wherever it is created
    for (let i = 0; i < 4; i++) upper.push({ name: `fill/${"z".repeat(300)}${i}`, data: "x" });
    const err = applyTo(root, [upper], { rootless: true });
    assert.ok(err instanceof Error, "fails");
    assert.match(err.message, /zzzz/);
    assert.match(err.message, /ENAMETOOLONG/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
