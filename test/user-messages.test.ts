// User-facing messages: one-line messages that read well and name what the
// user knows (field paths, images, DEST in the rootfs, lock holders), id-map
// syntax as umoci's, no empty store entries after a failed extract, gc-extracts
// collecting around a broken layout, and --help texts in one style.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { makeLayout, mkTemp, putImage, rmTemp, tarFiles, withTemp } from "../fixtures/layout.ts";
import { OcigenError } from "../src/errors.ts";
import { fieldOf, validateDescriptor } from "../src/oci/digest.ts";
import { checkLayerCount, validateConfig, validateIndex, validateManifest } from "../src/oci/validate.ts";
import { Layout } from "../src/oci/layout.ts";
import { parseIdMap } from "../src/layer/idmap.ts";
import { acquireLock } from "../src/fs/lock.ts";
import { copyTree } from "../src/recipe/copy.ts";
import { buildFile } from "../src/recipe/build.ts";
import { parseGeneratorConfig } from "../src/generator/config.ts";
import { extract } from "../src/generator/extract.ts";
import { gcExtracts } from "../src/generator/gc.ts";
import { main, makeProgram } from "../src/cli/main.ts";
import type { Command } from "commander";

const A64 = "a".repeat(64);
const CFG = { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${A64}`, size: 2 };

function msg(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return "";
}

/** Runs the CLI in this process; stderr captured. */
async function cli(...args: string[]): Promise<{ code: number; err: string }> {
  const orig = process.stderr.write.bind(process.stderr);
  let err = "";
  (process.stderr as unknown as { write: (s: string | Uint8Array) => boolean }).write = (s) => {
    err += typeof s === "string" ? s : new TextDecoder().decode(s);
    return true;
  };
  let code: number;
  const saved = process.exitCode;
  process.exitCode = undefined; // main reports a set exitCode (the test runner sets one after a failure)
  try {
    code = await main(["node", "ocigen", ...args]);
  } finally {
    (process.stderr as unknown as { write: typeof orig }).write = orig;
    process.exitCode = saved;
  }
  return { code, err };
}

describe("validation messages name the document, then the field path", () => {
  test("fieldOf joins a document name with ': ' and a field path with '.'/[i]", () => {
    assert.equal(fieldOf("/l/index.json", "manifests"), "/l/index.json: manifests");
    assert.equal(fieldOf("/l/index.json: manifests", 0), "/l/index.json: manifests[0]");
    assert.equal(fieldOf("/l/index.json: manifests[0]", "digest"), "/l/index.json: manifests[0].digest");
    assert.equal(fieldOf("/l: manifest sha256:abcdef012345..", "config"), "/l: manifest sha256:abcdef012345..: config");
    assert.equal(fieldOf("descriptor for tag x", "size"), "descriptor for tag x: size");
    assert.equal(fieldOf("layer", "mediaType"), "layer: mediaType");
  });

  test("config, manifest and index fields read `DOC: path: problem`", () => {
    const doc = "/l: config sha256:abcdef012345..";
    const base = { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } };
    assert.equal(msg(() => validateConfig({ ...base, config: { Cmd: "x" } }, doc)), `${doc}: config.Cmd: must be an array of strings`);
    assert.equal(msg(() => validateConfig({ ...base, config: { Labels: { a: 1 } } }, doc)), `${doc}: config.Labels.a: must be a string`);
    assert.equal(msg(() => validateConfig({ ...base, rootfs: { type: "x", diff_ids: [] } }, doc)), `${doc}: rootfs.type: must be "layers"`);
    assert.match(msg(() => validateConfig({ ...base, rootfs: { type: "layers", diff_ids: ["nope"] } }, doc)), /^\/l: config sha256:abcdef012345\.\.: rootfs\.diff_ids\[0\]: "nope": /);
    assert.equal(msg(() => validateConfig({ ...base, history: [{ empty_layer: 1 }] }, doc)), `${doc}: history[0].empty_layer: must be a boolean`);
    assert.equal(msg(() => validateConfig({ ...base, os: 1 }, doc)), `${doc}: os: must be a string`);

    const idx = "X/index.json";
    assert.equal(msg(() => validateIndex({ schemaVersion: 2, manifests: {} }, idx)), "X/index.json: manifests: must be an array");
    assert.equal(msg(() => validateIndex({ schemaVersion: 2, manifests: [{ ...CFG, mediaType: undefined }] }, idx)), "X/index.json: manifests[0].mediaType: missing");
    assert.equal(msg(() => validateIndex({ schemaVersion: 2, manifests: [{ ...CFG, platform: { os: "linux" } }] }, idx)), "X/index.json: manifests[0].platform.architecture: must be a string");
    assert.equal(msg(() => validateIndex({ schemaVersion: 2, manifests: [], annotations: { k: 1 } }, idx)), "X/index.json: annotations.k: must be a string");
    assert.equal(msg(() => validateIndex({ manifests: [] }, idx)), "X/index.json: schemaVersion: missing (must be 2)");

    const man = "/l: manifest sha256:abcdef012345..";
    assert.equal(msg(() => validateManifest({ schemaVersion: 2, config: CFG, layers: [CFG, { ...CFG, size: -1 }] }, man)), `${man}: layers[1].size: -1 is not a non-negative integer`);
    assert.equal(msg(() => validateManifest({ schemaVersion: 2, config: { ...CFG, data: "!" }, layers: [] }, man)), `${man}: config.data: not valid base64`);
    assert.equal(msg(() => validateManifest({ schemaVersion: 2, config: CFG }, man)), `${man}: layers: must be an array`);
    // a `where` that already holds a field path is extended (the public validateDescriptor contract)
    assert.equal(msg(() => validateDescriptor({ ...CFG, digest: "x" }, "m: config")), 'm: config.digest: "x": digest does not match the grammar algorithm:encoded');
    for (const m of [msg(() => validateConfig({ ...base, config: { Cmd: "x" } }, doc))]) assert.ok(!m.includes("...config"), m);
  });

  test("through a layout: a config with a bad Cmd names the config blob, then config.Cmd", async () => {
    await withTemp("ocigen-messages-", async (dir) => {
      makeLayout(dir, [{ tags: ["t"], layers: [], config: { config: { Cmd: "x" } } as never }]);
      const l = await Layout.open(dir);
      const m = await l.resolve("t").then(() => "", (e: Error) => e.message);
      assert.match(m, /: config sha256:[0-9a-f]{12}\.\.: config\.Cmd: must be an array of strings$/);
      assert.ok(m.startsWith(dir), m);
    });
  });
});

describe("unpack names the image when layers and diff_ids disagree", () => {
  test("checkLayerCount names LAYOUT:TAG and the manifest", () => {
    const image = { manifest: { schemaVersion: 2 as const, config: CFG, layers: [CFG] }, config: { architecture: "amd64", os: "linux", rootfs: { type: "layers" as const, diff_ids: [] } }, manifestDescriptor: CFG };
    assert.equal(
      msg(() => checkLayerCount(image, "/l:t")),
      `Cannot unpack image /l:t (manifest sha256:${"a".repeat(12)}..): the manifest has 1 layer but the config has 0 diff_ids`,
    );
  });

  test("CLI unpack and raw unpack: one line naming the image, exit 1, nothing created", async () => {
    await withTemp("ocigen-messages-", async (dir) => {
      const l = join(dir, "l");
      makeLayout(l, [{ tags: ["t"], layers: [tarFiles([{ name: "a", data: "x" }])], config: { rootfs: { type: "layers", diff_ids: [] } } as never }]);
      for (const verb of [["unpack"], ["raw", "unpack"]]) {
        const r = await cli(...verb, "--image", `${l}:t`, join(dir, "out"));
        assert.equal(r.code, 1);
        assert.match(r.err, new RegExp(`^ocigen: Cannot unpack image ${l}:t \\(manifest sha256:[0-9a-f]{12}\\.\\.\\): the manifest has 1 layer but the config has 0 diff_ids\\n$`));
        assert.deepEqual(fs.readdirSync(dir), ["l"]);
      }
    });
  });
});

describe("build messages name what the user wrote, once", () => {
  test("copyTree errors name SRC and DEST as given, not working paths", () => {
    const dir = mkTemp("ocigen-messages-");
    try {
      fs.writeFileSync(join(dir, "a.txt"), "x");
      const m = msg(() => copyTree(join(dir, "a.txt"), join(dir, "rootfs/missing/a.txt"), { src: "a.txt", dest: "/missing/a.txt" }));
      assert.match(m, /^Cannot copy a\.txt to \/missing\/a\.txt: ENOENT \(no such file or directory\)$/);
    } finally {
      rmTemp(dir);
    }
  });

  test("copy into a non-directory, hooks and run scripts: `Cannot build target T: ...` with no working path and no second T", async () => {
    await withTemp("ocigen-messages-", async (dir) => {
      fs.writeFileSync(join(dir, "a.txt"), "x");
      const cases: Array<[string, RegExp]> = [
        ["t1:\n  base: empty\n  copy:\n    - a.txt /etc\n    - a.txt /etc/x\n", /^Cannot build target t1: Cannot resolve \/etc\/x in the rootfs: \/etc is not a directory$/],
        ["t2:\n  base: empty\n  pre: exit 3\n", /^Cannot build target t2: the pre hook failed \(exit 3\)$/],
        ["t3:\n  base: empty\n  post:\n    - \"true\"\n    - exit 4\n", /^Cannot build target t3: the post hook 2 of 2 failed \(exit 4\)$/],
        ["t4:\n  base: empty\n  run: \"true\"\n", /^Cannot build target t4: Cannot run the run script: the rootfs has no \/bin\/sh$/],
      ];
      for (const [i, [spec, want]] of cases.entries()) {
        fs.writeFileSync(join(dir, `s${i}.yaml`), spec);
        // isolation chroot: no probe, the /bin/sh check comes first
        const m = await buildFile(join(dir, `s${i}.yaml`), { layout: join(dir, "oci"), tmpDir: dir, isolation: "chroot" }).then(() => "", (e: Error) => e.message);
        assert.match(m, want);
        assert.ok(!m.includes("ocigen-build-"), m);
      }
    });
  });

  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  test("copy on a full disk names SRC and DEST in the rootfs", { skip: isRoot ? false : "needs root to mount a small tmpfs" }, async (t) => {
    await withTemp("ocigen-messages-", async (dir) => {
      const mnt = join(dir, "small");
      fs.mkdirSync(mnt);
      const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt], { encoding: "utf8" });
      if (m.status !== 0) {
        if (process.env.CI) assert.fail(`cannot mount tmpfs: ${m.stderr}`);
        t.skip(`cannot mount tmpfs here: ${m.stderr.trim()}`);
        return;
      }
      try {
        fs.mkdirSync(join(dir, "tree/sub"), { recursive: true });
        fs.writeFileSync(join(dir, "tree/sub/big.bin"), new Uint8Array(1 << 20));
        fs.writeFileSync(join(dir, "s.yaml"), "t:\n  base: empty\n  copy: tree /opt/\n");
        const e = await buildFile(join(dir, "s.yaml"), { layout: join(dir, "oci"), tmpDir: mnt }).then(() => null, (x: Error) => x);
        assert.ok(e instanceof OcigenError);
        assert.equal(e.message, "Cannot build target t: Cannot copy tree/sub/big.bin to /opt/tree/sub/big.bin: ENOSPC (no space left on device)");
        assert.deepEqual(fs.readdirSync(mnt), [], "the working tree is gone");
      } finally {
        spawnSync("umount", [mnt]);
      }
    });
  });
});

describe("id maps as umoci (container:host[:size], size 1 by default)", () => {
  test("parseIdMap", () => {
    assert.deepEqual(parseIdMap("0:1000"), { containerID: 0, hostID: 1000, size: 1 });
    assert.deepEqual(parseIdMap("0:100000:65536"), { containerID: 0, hostID: 100000, size: 65536 });
    assert.equal(msg(() => parseIdMap("0:1000:0")), 'Cannot parse id map "0:1000:0": size must be at least 1');
    assert.equal(msg(() => parseIdMap("0")), 'Cannot parse id map "0": expected container:host[:size] (decimal ids; size defaults to 1)');
    assert.equal(msg(() => parseIdMap("0:1000:5:3")), 'Cannot parse id map "0:1000:5:3": expected container:host[:size] (decimal ids; size defaults to 1)');
    assert.equal(msg(() => parseIdMap("0:4294967295:2")), 'Cannot parse id map "0:4294967295:2": ids beyond 4294967295');
  });

  test("raw runtime-config --uid-map 0:1000 maps one id; a bad map is one line and exit 1", async () => {
    await withTemp("ocigen-messages-", async (dir) => {
      const l = join(dir, "l");
      makeLayout(l, [{ tags: ["t"], layers: [] }]);
      const out = join(dir, "config.json");
      const r = await cli("raw", "runtime-config", "--image", `${l}:t`, "--rootless", "--uid-map", "0:1000", "--gid-map", "0:1000:1", out);
      assert.equal(r.code, 0, r.err);
      const spec = JSON.parse(fs.readFileSync(out, "utf8"));
      assert.deepEqual(spec.linux.uidMappings, [{ containerID: 0, hostID: 1000, size: 1 }]);
      assert.deepEqual(spec.linux.gidMappings, [{ containerID: 0, hostID: 1000, size: 1 }]);
      const bad = await cli("raw", "runtime-config", "--image", `${l}:t`, "--uid-map", "0:1000:0", join(dir, "c2.json"));
      assert.equal(bad.code, 1);
      assert.equal(bad.err, 'ocigen: Cannot parse id map "0:1000:0": size must be at least 1\n');
      assert.equal(fs.existsSync(join(dir, "c2.json")), false);
    });
  });
});

describe("extract and gc-extracts", () => {
  function env(dir: string) {
    const layouts = join(dir, "layouts");
    const extracts = join(dir, "extracts");
    fs.mkdirSync(layouts);
    const text = `[system]\nimagelayoutdir = ${layouts}\nextractsdir = ${extracts}\nocigen = /bin/true\n`;
    return { layouts, extracts, cfg: { ...parseGeneratorConfig(text, join(dir, "c.conf")), explicit: true } };
  }
  const img = (m: string) => ({ layers: [tarFiles([{ name: "marker", data: m }])], config: { config: { Cmd: ["/bin/true"] } } as never });

  test("a failed first extract leaves no empty store entry and no unit directory", async () => {
    await withTemp("ocigen-messages-", async (dir) => {
      const e = env(dir);
      const fx = makeLayout(join(e.layouts, "app"), [{ tags: ["t"], ...img("x") }]);
      // a corrupt layer: the unpack engine fails after the store entry was made
      const blob = join(fx.dir, "blobs/sha256", fx.layers[0][0].digest.slice(7));
      const b = fs.readFileSync(blob);
      b[b.length - 5] ^= 0xff;
      fs.writeFileSync(blob, b);
      await assert.rejects(extract({ config: e.cfg, name: "app", tag: "t" }), OcigenError);
      const sha = join(e.extracts, ".store/sha256");
      assert.deepEqual(fs.readdirSync(sha).filter((n) => !n.endsWith(".lock")), []);
      assert.deepEqual(fs.readdirSync(e.extracts).filter((n) => n !== ".store"), []);
      // layers without diff_ids: refused before anything is made, naming the image
      putImage(fx.dir, img("y"));
      const bad = putImage(fx.dir, { ...img("z"), config: { config: { Cmd: ["/bin/true"] }, rootfs: { type: "layers", diff_ids: [] } } as never });
      await (await Layout.open(fx.dir)).setTag("u", bad.manifest);
      await assert.rejects(extract({ config: e.cfg, name: "app", tag: "u" }), (x: Error) =>
        new RegExp(`^Cannot unpack image ${fx.dir}:u \\(manifest sha256:[0-9a-f]{12}\\.\\.\\): the manifest has 1 layer but the config has 0 diff_ids$`).test(x.message));
      assert.deepEqual(fs.readdirSync(sha).filter((n) => !n.endsWith(".lock")), []);
    });
  });

  test("gc-extracts with a broken layout: keeps that layout's extracts, collects the rest, reports it", async () => {
    await withTemp("ocigen-messages-", async (dir) => {
      const e = env(dir);
      makeLayout(join(e.layouts, "a"), [{ tags: ["t"], ...img("a1") }]);
      makeLayout(join(e.layouts, "b"), [{ tags: ["t", "old"], ...img("b1") }]);
      const a1 = await extract({ config: e.cfg, name: "a", tag: "t" });
      const b1 = await extract({ config: e.cfg, name: "b", tag: "t" });
      const a2 = putImage(join(e.layouts, "a"), img("a2"));
      await (await Layout.open(join(e.layouts, "a"))).setTag("t", a2.manifest);
      const a2r = await extract({ config: e.cfg, name: "a", tag: "t" });
      // b's second unit lost its current.json: still b's by its name
      const bOld = await extract({ config: e.cfg, name: "b", tag: "old" });
      fs.rmSync(join(e.extracts, "b.ref.old/current.json"));
      // a unit of a layout that is gone (c), and one with no current.json of no broken layout
      makeLayout(join(e.layouts, "c"), [{ tags: ["t"], ...img("c1") }]);
      const c1 = await extract({ config: e.cfg, name: "c", tag: "t" });
      fs.rmSync(join(e.layouts, "c"), { recursive: true });
      fs.mkdirSync(join(e.extracts, "a.ref.gone"));
      fs.writeFileSync(join(e.layouts, "b", "index.json"), "{nope");

      const r = await gcExtracts({ config: e.cfg });
      assert.equal(r.errors.length, 1);
      assert.match(r.errors[0], /^layout b: .*index\.json: broken JSON: .* \(its extracts are kept\)$/);
      assert.deepEqual(r.removed.sort(), [
        join(e.extracts, ".store/sha256", a1.manifest.slice(7)),
        join(e.extracts, ".store/sha256", c1.manifest.slice(7)),
        join(e.extracts, "a.ref.gone"),
        join(e.extracts, "c.ref.t"),
      ].sort());
      for (const keep of [a2r.store, b1.store, bOld.store, join(e.extracts, "b.ref.t"), join(e.extracts, "b.ref.old")]) assert.ok(fs.existsSync(keep), keep);
      // through the CLI: exit 1, the broken layout named
      const conf = join(dir, "c.conf");
      fs.writeFileSync(conf, `[system]\nimagelayoutdir = ${e.layouts}\nextractsdir = ${e.extracts}\nocigen = /bin/true\n`);
      const c = await cli("gc-extracts", "--config", conf);
      assert.equal(c.code, 1);
      assert.match(c.err, /^ocigen: layout b: .* \(its extracts are kept\)\n$/);
      assert.ok(fs.existsSync(b1.store));
    });
  });
});

describe("lock holder", () => {
  test("an empty lock file (full disk) is held by an unknown holder, not `process 0 on ?`", async () => {
    await withTemp("ocigen-messages-", async (dir) => {
      const p = join(dir, "x.lock");
      fs.writeFileSync(p, "");
      const m = await acquireLock(p, "layout /l", 150).then((h) => (h.release(), ""), (e: Error) => e.message);
      assert.equal(m, `Cannot lock layout /l: held by an unknown holder (the lock file has no owner line) (${p})`);
      assert.ok(fs.existsSync(p), "the holder's lock file is left alone");
    });
  });
});

describe("--help texts", () => {
  test("every verb's description and option texts: lowercase start, no trailing period, id maps as container:host[:size]", () => {
    const bad: string[] = [];
    const visit = (cmd: Command, path: string) => {
      for (const sub of cmd.commands) {
        const p = `${path} ${sub.name()}`.trim();
        if (sub.name() === "bench") continue; // owned elsewhere
        const texts = [["description", sub.description()], ...sub.options.map((o) => [o.flags, o.description])];
        for (const a of sub.registeredArguments) texts.push([a.name(), a.description]);
        for (const [what, text] of texts) {
          if (!text) continue;
          if (/^[A-Z][a-z]/.test(text) || /\.$/.test(text)) bad.push(`${p} ${what}: ${text}`);
        }
        for (const o of sub.options) {
          if (/--[ug]id-map/.test(o.flags) && !o.flags.includes("<container:host[:size]>")) bad.push(`${p} ${o.flags}`);
          if (o.long === "--tag" && o.flags !== "--tag <new-tag>") bad.push(`${p} ${o.flags}`);
        }
        visit(sub, p);
      }
    };
    visit(makeProgram(), "");
    assert.deepEqual(bad, []);
  });
});
