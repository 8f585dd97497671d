// src/fs/names.ts: absent files known from one listing per directory.
// - a listed name may exist, an unlisted one does not, a missing directory
//   (and everything below it) holds nothing, a file used as a directory neither;
// - the answer is the listing taken at the first question (one pass, one snapshot);
// - a later question below a directory known to be missing needs no listing:
//   it holds even after that directory appears (the snapshot again).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { DirNames } from "../src/fs/names.ts";

test("DirNames: listed, unlisted, missing directories, a file as a directory, snapshot", () => {
  const dir = fs.mkdtempSync(join(os.tmpdir(), "ocigen-names-"));
  try {
    fs.mkdirSync(join(dir, "a"));
    fs.writeFileSync(join(dir, "a", "x.image"), "");
    fs.writeFileSync(join(dir, "file"), "");
    const n = new DirNames();
    assert.equal(n.mayExist(join(dir, "a", "x.image")), true);
    assert.equal(n.mayExist(join(dir, "a", "y.image")), false);
    assert.equal(n.mayExist(join(dir, "missing", "z.image")), false);
    assert.equal(n.mayExist(join(dir, "missing", "deeper", "z.image")), false);
    assert.equal(n.mayExist(join(dir, "file", "z.image")), false);
    assert.equal(n.mayExist("/"), true);
    // a snapshot: what appears later is not seen by this object, and is by a new one
    fs.writeFileSync(join(dir, "a", "y.image"), "");
    fs.mkdirSync(join(dir, "missing", "deeper"), { recursive: true });
    fs.writeFileSync(join(dir, "missing", "deeper", "z.image"), "");
    assert.equal(n.mayExist(join(dir, "a", "y.image")), false);
    assert.equal(n.mayExist(join(dir, "missing", "deeper", "z.image")), false);
    const fresh = new DirNames();
    assert.equal(fresh.mayExist(join(dir, "a", "y.image")), true);
    assert.equal(fresh.mayExist(join(dir, "missing", "deeper", "z.image")), true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
