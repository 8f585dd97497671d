// Files finished by the layer's worker (src/compress/worker/finish.ts): the
// applying thread opens and writes, the worker makes the last calls (fchown,
// fchmod, futimes, fstat, close). The tree must be the one the in-thread path
// makes (owners, setuid/setgid/sticky modes, umask-masked modes, times,
// file capabilities set after the owner), the digests recorded the same, a
// failed call must fail its own entry, and no descriptor may stay open.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { Layout } from "../src/oci/layout.ts";
import { unpackRootfs } from "../src/layer/unpack.ts";
import { ApplyState, LayerApplier, type FinishingJob } from "../src/layer/apply.ts";
import { TarKernelParser } from "../src/tar/kernel.ts";
import { tarBytes, type TarWriterEntry } from "../src/tar/writer.ts";
import { closeIdleWorkers } from "../src/compress/inflate-worker.ts";
import { FINISH_OPS, FinishFlag, type FinishQueue, type FinishResult, FinishSlots } from "../src/compress/worker/finish.ts";
import { describeTree, type LayerSpec, makeImage, tmpdir } from "./layer-fixtures.ts";

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const O_PATH = 0o10000000; // Linux

function openFds(): number {
  return fs.readdirSync("/proc/self/fd").length;
}

/** Descriptors open on files under `dir` (not the runtime's own, nor a TypeScript loader's cache). */
function fdsUnder(dir: string): number {
  let n = 0;
  for (const f of fs.readdirSync("/proc/self/fd")) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${f}`).startsWith(dir + "/")) n++;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

/** A layer of `n` files with every kind of metadata the finish calls set. */
function manyFiles(n: number): TarWriterEntry[] {
  const modes = [0o644, 0o4755, 0o2711, 0o1777, 0o777, 0o600, 0o000, 0o6555];
  const owners = [[0, 0], [1000, 1000], [65534, 65534], [0, 50], [7, 0]];
  const out: TarWriterEntry[] = [{ name: "d/", type: "dir", mode: 0o2775, gid: 50 }, { name: "e/", type: "dir", mode: 0o755 }];
  for (let i = 0; i < n; i++) {
    const [uid, gid] = owners[i % owners.length];
    out.push({
      name: `${i % 3 ? "d" : "e"}/f${i}`, data: "x".repeat(i % 97), mode: modes[i % modes.length], uid, gid,
      mtime: 1_600_000_000 + i * 37,
    });
  }
  // a hard link to a finished file, a file written twice, a sparse one, a capability (kept after chown)
  out.push({ name: "e/link", type: "link", linkname: "d/f1" });
  out.push({ name: "e/f0", data: "second", mode: 0o640, uid: 1000, gid: 1000, mtime: 1_700_000_000 });
  out.push({ name: "e/sparse", data: new Uint8Array(70000).fill(1, 65536), sparse: [{ offset: 65536, size: 4464 }, { offset: 70000, size: 0 }], uid: 1000, gid: 1000, mode: 0o644, mtime: 1_650_000_000 });
  out.push({ name: "e/cap", data: "cap", mode: 0o755, uid: 1000, gid: 1000, xattrs: { "security.capability": new Uint8Array([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) } });
  return out;
}

describe("files finished by the layer's worker", () => {
  after(() => closeIdleWorkers());

  test("the same tree, times and manifests as the in-thread path, over more files than the in-flight bound", { skip: isRoot ? false : "owners other than the caller's need root" }, async () => {
    const dir = tmpdir();
    try {
      makeImage(path.join(dir, "l"), [{ entries: manyFiles(700) }, { entries: [{ name: "e/f3", data: "upper", uid: 5, gid: 5, mode: 0o4711, mtime: 1_111_111_111 }, { name: "d/.wh.f1" }] }]);
      const layout = await Layout.open(path.join(dir, "l"));
      const img = await layout.resolve("latest");
      const trees: Map<string, string>[] = [];
      const caps: string[] = [];
      // worker threads hold descriptors of their own: count once the pool's workers exist
      await unpackRootfs(layout, img, path.join(dir, "warm"), { durable: false, inflate: "worker" });
      const before = openFds();
      for (const inflate of ["wasm", "worker"] as const) {
        const target = path.join(dir, `r-${inflate}`);
        await unpackRootfs(layout, img, target, { durable: false, inflate });
        const tree = describeTree(target, { mtime: true });
        tree.delete("."); // the root has no entry in the image: it keeps the time of the run
        trees.push(tree);
        const g = spawnSync("getfattr", ["-n", "security.capability", "-e", "hex", path.join(target, "e/cap")], { encoding: "utf8" });
        caps.push(g.error ? "(no getfattr)" : g.stdout.split("\n").find((l) => l.startsWith("security")) ?? "(none)");
      }
      assert.equal(trees[1].size, trees[0].size);
      assert.deepEqual(trees[1], trees[0]);
      assert.ok(trees[0].size > 700, `expected the files in the tree, found ${trees[0].size}`);
      assert.match(trees[1].get("e/link") ?? "", /^file 4755 1000:1000 /, "setuid kept after the owner changed (d/f1, whited out, lives on as e/link)");
      assert.equal(trees[1].get("d/f1"), undefined);
      assert.match(trees[1].get("e/f3") ?? "", /^file 4711 5:5 5 .* @1111111111$/);
      assert.match(trees[1].get("e/f0") ?? "", /^file 640 1000:1000 6 .* @1700000000$/);
      assert.equal(caps[1], caps[0], "the capability survives the worker's chown as it does the in-thread one");
      if (!caps[0].startsWith("(")) assert.match(caps[0], /^security\.capability=0x/);
      assert.equal(openFds(), before, "every descriptor handed to the worker is closed");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  /** Unpacks the one-layer image `layer` `rounds` times, each failing as `failed` says; then no descriptor under `dir` is open. */
  async function failuresLeaveNoDescriptor(dir: string, layer: LayerSpec, rounds: number, failed: (e: Error & { code?: string }) => boolean, why: string): Promise<void> {
    makeImage(path.join(dir, "l"), [layer]);
    const layout = await Layout.open(path.join(dir, "l"));
    const img = await layout.resolve("latest");
    for (let round = 0; round < rounds; round++) {
      await assert.rejects(unpackRootfs(layout, img, path.join(dir, `r${round}`), { durable: false, inflate: "worker" }), failed);
    }
    // a terminated worker keeps its blob's descriptor until its thread has ended: let it end
    await closeIdleWorkers();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fdsUnder(dir), 0, why);
  }

  test("a layer whose tar breaks after hundreds of files leaves no descriptor open (requests posted after the worker failed)", async () => {
    const dir = tmpdir();
    try {
      // 600 small files (their requests are still in flight when the worker meets the bad header), then a
      // header whose checksum is wrong: the worker fails the job after flushing the events before it
      const files: TarWriterEntry[] = [{ name: "d/", type: "dir", mode: 0o755 }];
      for (let i = 0; i < 600; i++) files.push({ name: `d/f${i}`, data: "y".repeat(i % 61), mode: 0o644, mtime: 1_600_000_000 + i });
      const good = tarBytes(files);
      const bad = new Uint8Array(good.length - 1024 + 512 * 3);
      bad.set(good.subarray(0, good.length - 1024)); // drop the end-of-archive blocks
      const hdr = tarBytes([{ name: "d/broken", data: "z" }]).slice(0, 512);
      hdr[148] ^= 0x01; // checksum field no longer matches
      bad.set(hdr, good.length - 1024);
      await failuresLeaveNoDescriptor(dir, { tar: bad }, 3, (e) => e.code === "ETAR", "every descriptor handed to the failed worker was closed");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an entry the applier rejects mid-layer, with the worker still running, leaves no descriptor open", async () => {
    const dir = tmpdir();
    try {
      // the hard link to a name the layer never had fails on the applying thread while the
      // worker still has thousands of entries to go: the job is given up with requests in flight
      const files: TarWriterEntry[] = [{ name: "d/", type: "dir", mode: 0o755 }];
      for (let i = 0; i < 3000; i++) files.push({ name: `d/f${i}`, data: "y".repeat(i % 61), mode: 0o644, mtime: 1_600_000_000 + i });
      files.push({ name: "d/link", type: "link", linkname: "d/nowhere" });
      for (let i = 0; i < 6000; i++) files.push({ name: `d/g${i}`, data: "z".repeat(i % 43), mode: 0o644 });
      await failuresLeaveNoDescriptor(dir, { entries: files }, 2, (e) => /d\/link/.test(e.message), "every descriptor handed to the abandoned worker was closed");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("FinishSlots runs the calls in order and reports the one that failed, closing the descriptor", () => {
    const dir = tmpdir();
    try {
      const f = path.join(dir, "f");
      fs.writeFileSync(f, "12345");
      const bytes = new Uint8Array(new SharedArrayBuffer(256));
      const slots = new FinishSlots(bytes);
      const fd = fs.openSync(f, "r+");
      slots.request(128, fd, FinishFlag.CHMOD | FinishFlag.STAT, 0, 0, 0o4640, 1_000_000_000.5, 1_234_567_890);
      slots.run(128);
      const ok = slots.result(128);
      assert.equal(ok.status, 0);
      const st = fs.statSync(f);
      assert.equal(ok.ino, st.ino);
      assert.equal(ok.dev, st.dev);
      assert.equal(ok.size, 5);
      assert.equal(st.mode & 0o7777, 0o4640);
      assert.equal(st.mtimeMs, 1_234_567_890_000);
      assert.throws(() => fs.fstatSync(fd), /EBADF/, "closed after the calls");
      // an O_PATH descriptor cannot take futimes: the third call fails, the descriptor is still closed
      const pfd = fs.openSync(f, O_PATH);
      slots.request(0, pfd, 0, 0, 0, 0, 1, 2);
      slots.run(0);
      const bad = slots.result(0);
      assert.equal(FINISH_OPS[bad.status - 1], "set times");
      assert.equal(bad.code, "EBADF");
      assert.match(bad.message, /bad file descriptor|os error 9/i);
      assert.throws(() => fs.fstatSync(pfd), /EBADF/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a failed finish call fails its own entry by name and leaves no descriptor open", () => {
    const dir = tmpdir();
    try {
      const root = path.join(dir, "r");
      fs.mkdirSync(root);
      const state = new ApplyState(root, { rootless: true });
      const closed: number[] = [];
      // a stand-in for the worker: finishes at once, failing the chown of etc/b
      const job: FinishingJob = {
        finisher<T>(onResult: (t: T, r: FinishResult) => void): FinishQueue<T> {
          return {
            post(token, fd) {
              const rel = (token as { rel: string }).rel;
              fs.closeSync(fd);
              closed.push(fd);
              const failed = rel === "etc/b";
              onResult(token, { status: failed ? 1 : 0, dev: 0, ino: 0, size: 0, code: failed ? "EPERM" : "", message: failed ? "operation not permitted" : "" });
            },
            collect() {},
          };
        },
      };
      const before = openFds();
      const p = new TarKernelParser(new LayerApplier(state, "layer 7", false, job), { context: "layer 7" });
      assert.throws(() => {
        p.write(tarBytes([{ name: "etc/", type: "dir" }, { name: "etc/a", data: "a" }, { name: "etc/b", data: "b" }, { name: "etc/c", data: "c" }]));
        p.end();
      }, (e: Error & { code?: string }) => {
        assert.equal(e.code, "EIO");
        assert.equal(e.message, "Cannot unpack layer 7: entry etc/b: chown: EPERM (operation not permitted)");
        return true;
      });
      assert.equal(closed.length, 2, "etc/a and etc/b were handed over, etc/c never opened");
      assert.equal(openFds(), before);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
