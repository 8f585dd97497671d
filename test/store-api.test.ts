// The extracts store's API: extract-if-missing builds a manifest's rootfs once
// however many callers race for it, links units under the same lock, waits
// for an entry's lock no longer than the store's lock timeout, and gc removes
// exactly the entries nobody uses, keeping one that is locked.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { makeLayout, mkTemp, rmTemp, tarFiles } from "../fixtures/layout.ts";
import { Layout } from "../src/oci/layout.ts";
import { openStore } from "../src/store/index.ts";

async function fixture() {
  const tmp = mkTemp("ocigen-store-api-");
  const dir = join(tmp, "layout");
  makeLayout(dir, [
    { tags: ["a"], layers: [tarFiles([{ name: "etc/", dir: true }, { name: "etc/marker", data: "a" }])], config: { config: { Cmd: ["/bin/true"] } } as never },
    { tags: ["b"], layers: [tarFiles([{ name: "marker", data: "b" }])], config: { config: { Cmd: ["/bin/true"] } } as never },
  ]);
  const layout = await Layout.open(dir);
  return { tmp, extracts: join(tmp, "extracts"), layout, a: await layout.resolve("a"), b: await layout.resolve("b") };
}

test("extractIfMissing builds a rootfs once for racing callers and links a unit under the same lock", async () => {
  const f = await fixture();
  try {
    const store = openStore(f.extracts);
    const m = f.a.manifestDescriptor.digest;
    assert.equal(store.has(m), false);
    const rs = await Promise.all([
      store.extractIfMissing(f.layout, f.a, { where: "layout:a", link: "app.ref.a" }),
      store.extractIfMissing(f.layout, f.a, { where: "layout:a" }),
      store.extractIfMissing(f.layout, f.a, { where: "layout:a", link: "app.ref.a2" }),
    ]);
    assert.equal(rs.filter((r) => r.extracted).length, 1, "extracted exactly once");
    assert.deepEqual(rs.map((r) => r.rootfs), [store.rootfsOf(m), store.rootfsOf(m), store.rootfsOf(m)]);
    assert.equal(fs.readFileSync(join(store.rootfsOf(m), "etc/marker"), "utf8"), "a");
    assert.equal(store.has(m), true);
    assert.equal(store.isCurrent(m, "app.ref.a"), true);
    assert.equal(fs.readFileSync(join(store.unitRootfsOf("app.ref.a2"), "etc/marker"), "utf8"), "a", "the link resolves to the rootfs");
    assert.equal(fs.statSync(join(f.extracts, ".store")).mode & 0o777, store.mode);
    assert.equal(fs.statSync(store.unitDirOf("app.ref.a")).mode & 0o777, store.mode);
    assert.deepEqual(store.digests(), [m]);
    assert.equal(store.digestOf(store.rootfsOf(m)), m);
    assert.equal(store.digestOf(join(f.tmp, "elsewhere")), null);
  } finally {
    rmTemp(f.tmp);
  }
});

test("a store waits for an entry's lock no longer than its lock timeout, naming the holder", async () => {
  const f = await fixture();
  try {
    const held = await openStore(f.extracts).lock(f.a.manifestDescriptor.digest, "extract");
    try {
      const t0 = Date.now();
      await assert.rejects(
        openStore(f.extracts, { lockTimeoutMs: 100 }).extractIfMissing(f.layout, f.a, { where: "layout:a" }),
        (e: Error & { code?: string }) => e.code === "ELOCK" && /extract of .*held by process \d+/.test(e.message),
      );
      assert.ok(Date.now() - t0 < 5000, `gave up after ${Date.now() - t0} ms`);
      assert.equal(openStore(f.extracts).has(f.a.manifestDescriptor.digest), false, "nothing half-made");
    } finally {
      held.release();
    }
  } finally {
    rmTemp(f.tmp);
  }
});

test("gc removes the entries not in use, keeps a locked one, and a dry run removes nothing", async () => {
  const f = await fixture();
  try {
    const store = openStore(f.extracts);
    const a = f.a.manifestDescriptor.digest, b = f.b.manifestDescriptor.digest;
    await store.extractIfMissing(f.layout, f.a, { where: "layout:a" });
    await store.extractIfMissing(f.layout, f.b, { where: "layout:b" });
    const dry = await store.gc(new Set([a]), { dryRun: true });
    assert.deepEqual(dry, { removed: [store.entryOf(b)], errors: [] });
    assert.equal(store.has(b), true);

    const lock = await store.lock(b, "extract");
    const kept = await store.gc(new Set([a]));
    lock.release();
    assert.deepEqual(kept, { removed: [], errors: [] }, "a locked entry is in use");
    assert.equal(store.has(b), true);

    const gone = await store.gc(new Set([a]));
    assert.deepEqual(gone, { removed: [store.entryOf(b)], errors: [] });
    assert.equal(store.has(b), false);
    assert.equal(fs.existsSync(store.entryOf(b)), false);
    assert.equal(store.has(a), true);
  } finally {
    rmTemp(f.tmp);
  }
});
