// How the generator puts unit files in place (src/generator/write.ts):
// - into a fresh directory each file is created under its own name, with
//   exactly its text, mode 0644 (less the umask), and nothing else appears;
// - a name that exists (a second run into the same directory; a symlink
//   planted there) is replaced whole, the symlink itself and never its target;
// - a text longer than one page goes through a temporary name and arrives whole;
// - on a full file system the unit that cannot be written is reported,
//   naming it, and no file of it remains (no empty or partial unit, no
//   temporary file); the units written before it stay.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import os from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { GeneratedUnit } from "../src/generator/plan.ts";
import { writeUnits } from "../src/generator/write.ts";

const ROOT = typeof process.getuid === "function" && process.getuid() === 0;

function unit(dir: string, base: string, text: string, extractText = `[Unit]\nDescription=extract ${base}\n`, wants = false): GeneratedUnit {
  const name = `${base}.service`;
  return {
    name: base, tag: "t", unit: name, path: join(dir, name), text,
    ...(wants ? { wantsLink: join(dir, "multi-user.target.wants", name) } : {}),
    extractUnit: { unit: `ocigen-extract@${name}`, path: join(dir, `ocigen-extract@${name}`), text: extractText },
    atomic: false, ports: [], manifest: "sha256:" + "a".repeat(64), tagManifest: "sha256:" + "a".repeat(64),
  };
}

function service(n: number, extra = ""): string {
  return `[Unit]\nDescription=unit ${n}\n\n[Service]\nExecStart=/bin/app ${n}\n${extra}`;
}

test("fresh directory: each unit under its name, exact text, 0644, nothing else", () => {
  const dir = fs.mkdtempSync(join(os.tmpdir(), "ocigen-write-"));
  try {
    const out = join(dir, "out");
    const units = [unit(out, "a", service(1)), unit(out, "b", service(2), undefined, true)];
    const r = writeUnits(units, out);
    assert.deepEqual(r.errors, []);
    assert.equal(r.written.length, 2);
    const umask = process.umask();
    for (const u of units) {
      assert.equal(fs.readFileSync(u.path, "utf8"), u.text);
      assert.equal(fs.readFileSync(u.extractUnit.path, "utf8"), u.extractUnit.text);
      assert.equal(fs.statSync(u.path).mode & 0o777, 0o644 & ~umask);
    }
    assert.equal(fs.readlinkSync(join(out, "multi-user.target.wants", "b.service")), "../b.service");
    assert.deepEqual(fs.readdirSync(out).sort(), ["a.service", "b.service", "multi-user.target.wants", "ocigen-extract@a.service", "ocigen-extract@b.service"]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("existing names are replaced whole: a second run, a planted symlink (never followed), a long text", () => {
  const dir = fs.mkdtempSync(join(os.tmpdir(), "ocigen-write-"));
  try {
    const out = join(dir, "out");
    assert.deepEqual(writeUnits([unit(out, "a", service(1)), unit(out, "b", service(2), undefined, true)], out).errors, []);
    const victim = join(dir, "victim");
    fs.writeFileSync(victim, "keep\n");
    fs.symlinkSync(victim, join(out, "c.service"));
    const long = service(3, "Environment=X=" + "y".repeat(6000) + "\n");
    const again = [unit(out, "a", service(10)), unit(out, "b", service(20), "[Unit]\nDescription=new\n", true), unit(out, "c", long)];
    const r = writeUnits(again, out);
    assert.deepEqual(r.errors, []);
    for (const u of again) {
      assert.equal(fs.readFileSync(u.path, "utf8"), u.text);
      assert.equal(fs.readFileSync(u.extractUnit.path, "utf8"), u.extractUnit.text);
    }
    assert.ok(fs.lstatSync(join(out, "c.service")).isFile(), "the symlink itself was replaced");
    assert.equal(fs.readFileSync(victim, "utf8"), "keep\n", "its target untouched");
    assert.equal(fs.readlinkSync(join(out, "multi-user.target.wants", "b.service")), "../b.service");
    assert.deepEqual(fs.readdirSync(out).filter((n) => n.startsWith(".")), [], "no temporary file left");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("full file system: the unit that does not fit is reported and absent, no empty or partial file", {
  skip: ROOT || process.env.CI ? false : "needs root to mount a small tmpfs",
}, (t) => {
  const dir = fs.mkdtempSync(join(os.tmpdir(), "ocigen-write-full-"));
  const mnt = join(dir, "small");
  fs.mkdirSync(mnt);
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt], { encoding: "utf8" });
  if (m.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    if (process.env.CI) assert.fail(`cannot mount a tmpfs: ${m.stderr.trim()}`);
    t.skip(`cannot mount a tmpfs here: ${m.stderr.trim()}`);
    return;
  }
  try {
    const first = unit(mnt, "first", service(1));
    assert.deepEqual(writeUnits([first], mnt).errors, []);
    // fill every page that is left
    const fd = fs.openSync(join(mnt, "fill"), "w");
    try {
      const page = new Uint8Array(4096);
      for (;;) fs.writeSync(fd, page);
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, "ENOSPC");
    } finally {
      fs.closeSync(fd);
    }
    const r = writeUnits([unit(mnt, "second", service(2)), unit(mnt, "third", service(3, "Environment=X=" + "y".repeat(6000) + "\n"))], mnt);
    assert.equal(r.written.length, 0);
    assert.equal(r.errors.length, 2, r.errors.join("\n"));
    assert.match(r.errors[0], /^unit second\.service: .*ENOSPC/);
    assert.match(r.errors[1], /^unit third\.service: .*ENOSPC/);
    for (const e of r.errors) assert.ok(!e.includes("\n"), "one line each");
    assert.deepEqual(fs.readdirSync(mnt).sort(), ["fill", "first.service", "ocigen-extract@first.service"], "nothing of the failed units, no temporary file");
    assert.equal(fs.readFileSync(first.path, "utf8"), first.text);
  } finally {
    spawnSync("umount", [mnt]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
