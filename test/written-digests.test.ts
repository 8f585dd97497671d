// WrittenDigests, the record of what an unpack wrote: a digest comes back
// only for the inode, device and size it was recorded for; a record that
// cannot be proven (wrong length, bad hex) removes an older one; thousands of
// files stay exact across the compact store's growth.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import { WrittenDigests } from "../src/layer/written.ts";

const hex = (s: string) => createHash("sha256").update(s).digest("hex");

function withDir(fn: (dir: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-written-"));
  try {
    fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function writeRecorded(w: WrittenDigests, file: string, text: string, claimed = text.length): void {
  const fd = fs.openSync(file, "wx", 0o644);
  try {
    fs.writeSync(fd, text);
    w.finish(fd, hex(text), claimed);
  } finally {
    fs.closeSync(fd);
  }
}

test("5000 recorded files (past several growths) each give back their own digest", () => {
  withDir((dir) => {
    const w = new WrittenDigests();
    for (let i = 0; i < 5000; i++) writeRecorded(w, path.join(dir, `f${i}`), `content ${i}\n`);
    assert.equal(w.size, 5000);
    for (let i = 0; i < 5000; i += 7) {
      assert.equal(w.lookup(fs.lstatSync(path.join(dir, `f${i}`), { bigint: true })), "sha256:" + hex(`content ${i}\n`));
    }
  });
});

test("another device, another size, a directory, a wrong length: no digest", () => {
  withDir((dir) => {
    const w = new WrittenDigests();
    const f = path.join(dir, "a");
    writeRecorded(w, f, "hello\n");
    const st = fs.lstatSync(f, { bigint: true });
    assert.equal(w.lookup(st), "sha256:" + hex("hello\n"));
    // the same inode number seen on another device is not this file
    const elsewhere = Object.assign(Object.create(Object.getPrototypeOf(st)), st, { dev: st.dev + 1n });
    assert.equal(w.lookup(elsewhere), undefined);
    // grown since it was recorded
    fs.appendFileSync(f, "more");
    assert.equal(w.lookup(fs.lstatSync(f, { bigint: true })), undefined);
    assert.equal(w.lookup(fs.lstatSync(dir, { bigint: true })), undefined);
    // a record whose length is not the file's size is refused, and removes the older record of that inode
    const g = path.join(dir, "g");
    writeRecorded(w, g, "twelve bytes");
    const fd = fs.openSync(g, "r");
    try {
      w.finish(fd, hex("twelve bytes"), 11);
    } finally {
      fs.closeSync(fd);
    }
    assert.equal(w.lookup(fs.lstatSync(g, { bigint: true })), undefined);
  });
});
