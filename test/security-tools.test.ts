// Security review of everything around the unpack engine that touches an
// untrusted tree: repack (a bundle's rootfs may change under us), build
// (copy/expand into a rootfs shaped by earlier steps, run-step sandbox), bulk
// copies, and the systemd generator (unit injection from image config and
// layout names). Each test plants a canary outside and asserts it is untouched.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { OcigenError } from "../src/errors.ts";
import { scanTree } from "../src/bundle/scan.ts";
import { readTreeXattrs } from "../src/bundle/xattr.ts";
import { fileDigest } from "../src/bundle/manifest.ts";
import { type LayerItem, tarStream } from "../src/repack/layer-writer.ts";
import { createDigester } from "../src/digest/index.ts";
import { TarParser } from "../src/tar/parser.ts";
import type { TarEntryHeader } from "../src/tar/header.ts";
import { tarBytes } from "../src/tar/writer.ts";
import { copyIntoRoot } from "../src/recipe/copy.ts";
import { mkdirInRoot, resolveInRoot } from "../src/recipe/rootpath.ts";
import { expandTarball } from "../src/recipe/extract.ts";
import { BUILD_CAPS, sandboxArgv } from "../src/recipe/sandbox.ts";
import { cloneTree, copyTree as bulkCopyTree } from "../src/store/copy.ts";
import { renderExtractUnit, renderUnit, type UnitInput, unitExtractArgv } from "../src/generator/unit.ts";
import { defaultGeneratorConfig, layoutSettings } from "../src/generator/config.ts";
import { have, plantCanary, tmpdir } from "./layer-fixtures.ts";

const ROOT = typeof process.getuid === "function" && process.getuid() === 0;

interface Env {
  dir: string;
  root: string;
  canary: ReturnType<typeof plantCanary>;
}

function withEnv(name: string, fn: (e: Env) => void | Promise<void>, opts: { skip?: string | false } = {}): void {
  test(name, { skip: opts.skip || false }, async () => {
    const dir = tmpdir("ocigen-sec-");
    const root = path.join(dir, "root");
    fs.mkdirSync(root);
    const canary = plantCanary(dir);
    try {
      await fn({ dir, root, canary });
      canary.check();
    } finally {
      spawnSync("rm", ["-rf", "--", dir]);
    }
  });
}

/** Tar entries (header + content) of a layer produced by tarStream. */
async function layerEntries(items: LayerItem[]): Promise<Array<{ h: TarEntryHeader; data: string }>> {
  const out: Array<{ h: TarEntryHeader; data: string }> = [];
  let cur: { h: TarEntryHeader; data: string } | null = null;
  const p = new TarParser({
    entry(h) {
      cur = { h, data: "" };
      out.push(cur);
    },
    data(c) {
      cur!.data += Buffer.from(c).toString("latin1");
    },
    entryEnd() {},
    end() {},
  });
  for await (const c of tarStream(items, {}, createDigester())) p.write(c);
  p.end();
  return out;
}

function itemsOf(root: string): LayerItem[] {
  return scanTree(root).map((e) => ({ kind: "entry", name: e.path, abs: e.path === "." ? root : path.join(root, e.path), entry: e }));
}

describe("repack: the rootfs is untrusted and may change under us", () => {
  withEnv("symlinks to outside are stored as links; the target's content is never read", async (e) => {
    fs.symlinkSync(e.canary.path, path.join(e.root, "abs"));
    fs.symlinkSync("../outside/canary", path.join(e.root, "rel"));
    fs.symlinkSync(e.canary.dir, path.join(e.root, "dir"));
    const got = await layerEntries(itemsOf(e.root));
    const byName = new Map(got.map((x) => [x.h.name.replace(/\/$/, ""), x]));
    assert.equal(byName.get("abs")?.h.type, "symlink");
    assert.equal(byName.get("abs")?.h.linkname, e.canary.path);
    assert.equal(byName.get("rel")?.h.linkname, "../outside/canary");
    assert.ok(!byName.has("dir/canary"));
    assert.ok(got.every((x) => !x.data.includes("canary\n")));
  });

  withEnv("TOCTOU: a file swapped for a symlink to outside between scan and read is refused", async (e) => {
    fs.writeFileSync(path.join(e.root, "f"), "same-7\n"); // as long as the canary
    const items = itemsOf(e.root);
    fs.rmSync(path.join(e.root, "f"));
    fs.symlinkSync(e.canary.path, path.join(e.root, "f"));
    await assert.rejects(layerEntries(items), (err: Error) => err instanceof OcigenError && !err.message.includes("\n"));
    assert.throws(() => fileDigest(path.join(e.root, "f")), OcigenError);
    // a parent directory swapped for a symlink to the canary's directory (O_NOFOLLOW alone does not see it)
    fs.rmSync(path.join(e.root, "f"));
    fs.mkdirSync(path.join(e.root, "d"));
    fs.writeFileSync(path.join(e.root, "d/canary"), "same-7\n");
    const items2 = itemsOf(e.root);
    fs.renameSync(path.join(e.root, "d"), path.join(e.root, "d.old"));
    fs.symlinkSync(e.canary.dir, path.join(e.root, "d"));
    await assert.rejects(layerEntries(items2), (err: Error) => err instanceof OcigenError && /replaced while being read/.test(err.message));
  });

  withEnv("TOCTOU: a file swapped for a FIFO between scan and read does not hang", async (e) => {
    fs.writeFileSync(path.join(e.root, "f"), "content");
    const items = itemsOf(e.root);
    fs.rmSync(path.join(e.root, "f"));
    assert.equal(spawnSync("mkfifo", [path.join(e.root, "f")]).status, 0);
    const t0 = Date.now();
    await assert.rejects(layerEntries(items), (err: Error) => err instanceof OcigenError);
    assert.throws(() => fileDigest(path.join(e.root, "f")), OcigenError);
    assert.ok(Date.now() - t0 < 5000);
  }, { skip: have("mkfifo") ? false : "mkfifo not installed" });

  withEnv("getfattr dump: file names with newlines and '# file:' lines map to the right paths", (e) => {
    const evil = "a\n# file: victim\nuser.x=0sAQ==";
    fs.writeFileSync(path.join(e.root, evil), "");
    fs.writeFileSync(path.join(e.root, "victim"), "");
    assert.equal(spawnSync("setfattr", ["-h", "-n", "user.k", "-v", "1", "--", path.join(e.root, evil)]).status, 0);
    const x = readTreeXattrs(e.root);
    assert.deepEqual(Object.keys(x.get(evil) ?? {}), ["user.k"]);
    assert.equal(x.has("victim"), false);
  }, { skip: have("getfattr") && have("setfattr") ? false : "getfattr/setfattr (attr) not installed" });
});

describe("build: copy and expand into a rootfs shaped by earlier steps", () => {
  withEnv("copy DEST through a symlink reached after a missing component ('missing/../link/x') stays inside", (e) => {
    const src = path.join(e.dir, "src.txt");
    fs.writeFileSync(src, "pwned");
    fs.symlinkSync(e.canary.dir, path.join(e.root, "link")); // e.g. left by an earlier `expand` tarball
    fs.mkdirSync(path.join(e.root, e.canary.dir), { recursive: true });
    copyIntoRoot(e.root, src, "/missing/../link/canary", e.dir);
    copyIntoRoot(e.root, src, "/nope/../link/", e.dir);
    copyIntoRoot(e.root, src, "/nope/../../link/sub/", e.dir);
    assert.equal(fs.readFileSync(path.join(e.root, e.canary.dir, "canary"), "utf8"), "pwned");
    assert.ok(resolveInRoot(e.root, "/x/../link/y").startsWith(e.root + "/"));
    assert.equal(resolveInRoot(e.root, "/x/../link/y"), path.join(e.root, e.canary.dir, "y"));
    assert.equal(mkdirInRoot(e.root, "q/../link/made"), path.join(e.root, e.canary.dir, "made"));
    fs.rmSync(src);
  });

  withEnv("copy DEST that is an escaping symlink, a dangling one, or a symlinked parent stays inside", (e) => {
    const src = path.join(e.dir, "srcdir");
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, "canary"), "pwned");
    fs.symlinkSync(e.canary.path, path.join(e.root, "file-link"));
    fs.mkdirSync(path.join(e.root, e.canary.dir), { recursive: true });
    fs.symlinkSync(e.canary.dir, path.join(e.root, "dir-link"));
    fs.symlinkSync(path.join(e.canary.dir, "nonexistent"), path.join(e.root, "dangling"));
    copyIntoRoot(e.root, path.join(src, "canary"), "/file-link", e.dir);
    copyIntoRoot(e.root, path.join(src, "canary"), "/dangling", e.dir);
    copyIntoRoot(e.root, src, "/dir-link/", e.dir);
    copyIntoRoot(e.root, path.join(src, "canary"), "/dir-link/canary", e.dir);
    assert.ok(!fs.existsSync(path.join(e.canary.dir, "nonexistent")));
    fs.rmSync(src, { recursive: true });
  });

  withEnv("expand: a hostile tarball (symlink to outside, then files through it) stays inside", async (e) => {
    const tb = path.join(e.dir, "evil.tar");
    fs.writeFileSync(tb, tarBytes([
      { name: "x", type: "symlink", linkname: e.canary.dir },
      { name: "x/canary", data: "pwned" },
      { name: "../outside/canary", data: "pwned" },
      { name: "h", type: "link", linkname: "../outside/canary" },
    ]));
    await expandTarball(tb, e.root);
    assert.equal(fs.readFileSync(path.join(e.root, e.canary.dir, "canary"), "utf8"), "pwned");
    assert.equal(fs.lstatSync(path.join(e.root, "h")).ino, fs.lstatSync(path.join(e.root, "outside/canary")).ino);
    fs.writeFileSync(tb, tarBytes([{ name: "h2", type: "link", linkname: e.canary.path }]));
    const r2 = path.join(e.dir, "r2");
    fs.mkdirSync(r2);
    await assert.rejects(expandTarball(tb, r2), (err: Error) => err instanceof OcigenError && /does not exist/.test(err.message));
    fs.rmSync(tb);
  });

  test("run step: bwrap as root drops the capabilities that leave a sandbox (mount, mknod, modules)", { skip: have("bwrap") ? false : "bwrap not installed" }, () => {
    const argv = sandboxArgv("bwrap", "/", ["sh", "-c", "grep CapEff /proc/self/status"]);
    assert.ok(!argv.includes("--bind") || argv[argv.indexOf("--bind") + 1] === "/", "binds only the rootfs");
    assert.ok(!BUILD_CAPS.includes("CAP_SYS_ADMIN") && !BUILD_CAPS.includes("CAP_MKNOD") && !BUILD_CAPS.includes("CAP_SYS_MODULE"));
    if (!ROOT) return;
    // rootfs "/" only to have a shell: read-only probe of the effective capabilities
    const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const eff = BigInt("0x" + /CapEff:\s*([0-9a-f]+)/.exec(r.stdout)![1]);
    const bit = (n: number) => (eff >> BigInt(n)) & 1n;
    assert.equal(bit(21), 0n, "CAP_SYS_ADMIN");
    assert.equal(bit(27), 0n, "CAP_MKNOD");
    assert.equal(bit(16), 0n, "CAP_SYS_MODULE");
    assert.equal(bit(2), 0n, "CAP_DAC_READ_SEARCH");
    assert.equal(bit(0), 1n, "CAP_CHOWN kept");
  });
});

describe("bulk copy", () => {
  for (const mode of ["cp", "js"] as const) {
    withEnv(`cloneTree (${mode}) copies symlinks to outside as links and never writes through them`, (e) => {
      const src = path.join(e.dir, "src");
      fs.mkdirSync(src);
      fs.symlinkSync(e.canary.dir, path.join(src, "d"));
      fs.symlinkSync(e.canary.path, path.join(src, "f"));
      fs.writeFileSync(path.join(src, "plain"), "x");
      const dst = path.join(e.dir, "dst");
      fs.mkdirSync(dst);
      const used = cloneTree(src, dst, mode === "js" ? "js" : "auto");
      if (mode === "js") assert.equal(used, "js");
      assert.equal(fs.readlinkSync(path.join(dst, "d")), e.canary.dir);
      assert.equal(fs.readlinkSync(path.join(dst, "f")), e.canary.path);
      const dst2 = path.join(e.dir, "dst2");
      fs.mkdirSync(dst2);
      bulkCopyTree(src, dst2, { xattrs: false });
      assert.equal(fs.readlinkSync(path.join(dst2, "f")), e.canary.path);
    });
  }
});

describe("generator: unit injection from image config and layout names", () => {
  const baseInput = (over: Partial<UnitInput> & { config?: Record<string, unknown> }): UnitInput => ({
    name: "myorg.com/app",
    tag: "latest",
    base: "com.myorg.app.ref.latest",
    layoutDir: "/var/lib/oci/layouts/myorg.com/app",
    extractsDir: "/var/lib/oci/extracts",
    image: {
      manifestDescriptor: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: "sha256:" + "a".repeat(64), size: 1 },
      manifest: { schemaVersion: 2, config: { mediaType: "x", digest: "sha256:" + "b".repeat(64), size: 1 }, layers: [] } as never,
      config: { architecture: "amd64", os: "linux", config: over.config ?? { Cmd: ["/bin/true"] }, rootfs: { type: "layers", diff_ids: [] } } as never,
      configDescriptor: { mediaType: "x", digest: "sha256:" + "b".repeat(64), size: 1 },
    },
    settings: layoutSettings(defaultGeneratorConfig(), "x"),
    ocigen: ["/usr/bin/ocigen"],
    warn: () => {},
    ...over,
  });

  /** Keys of the directives in a rendered unit (comments and sections aside); throws on stray lines. */
  function directives(text: string): string[] {
    const keys: string[] = [];
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i];
      if (l === "" || l.startsWith("#") || l === "[Unit]" || l === "[Service]") continue;
      const m = /^([A-Za-z]+)=/.exec(l);
      assert.ok(m, `stray line ${JSON.stringify(l)}`);
      keys.push(m![1]);
      // a line ending in a backslash would continue into the next directive
      assert.ok(!l.endsWith("\\"), `continuation in ${JSON.stringify(l)}`);
    }
    assert.ok(!lines.some((l) => l.trim() === "[Install]"));
    return keys;
  }

  const INJECT = "x\n[Install]\nWantedBy=multi-user.target\nExecStartPre=/bin/sh -c 'touch /pwned'\n";
  const hostile = [
    INJECT, "x\rExecStartPre=/evil", "a\\", "100%n%%", "$HOME ${PATH} $$", "\"quoted\" 'single'", "-o", "--", "a;b", "\\\n",
  ];

  test("Env, WorkingDir, User, StopSignal, Cmd and labels cannot add directives or sections", () => {
    let rendered = 0;
    for (const v of hostile) {
      const config = {
        Entrypoint: ["/bin/echo", v],
        Cmd: [v, "; /bin/evil"],
        Env: [`A=${v}`, `${v}=1`, "B=ok"],
        WorkingDir: v,
        User: v,
        StopSignal: v,
        Labels: { "org.ocigen.enable": v, [v]: v },
      };
      for (const c of [config, { ...config, User: undefined, StopSignal: undefined, WorkingDir: undefined }]) {
        let text: string;
        try {
          text = renderUnit(baseInput({ config: c }));
        } catch (err) {
          assert.ok(err instanceof OcigenError, String(err));
          continue;
        }
        rendered++;
        const keys = directives(text);
        assert.equal(keys.filter((k) => k === "ExecStart").length, 1, text);
        assert.ok(!keys.includes("ExecStartPre") && !keys.includes("WantedBy"), text);
        const ext = renderExtractUnit(baseInput({ config: c }), unitExtractArgv(baseInput({ config: c })));
        assert.ok(!directives(ext).includes("ExecStartPre"));
      }
    }
    assert.ok(rendered > 0, "some hostile configs render (escaped)");
  });

  test("layout names, tags and directories with newlines or backslashes are refused or escaped", () => {
    for (const v of hostile) {
      for (const over of [{ name: v }, { tag: v }, { layoutDir: "/var/lib/oci/layouts/" + v }, { extractsDir: "/x/" + v }]) {
        const input = baseInput(over);
        let text: string;
        try {
          text = renderUnit(input) + renderExtractUnit(input, unitExtractArgv(input));
        } catch (err) {
          assert.ok(err instanceof OcigenError, String(err));
          continue;
        }
        const keys = directives(text);
        assert.ok(!keys.includes("ExecStartPre") && !keys.includes("WantedBy"), text);
      }
    }
  });

  test("systemd-analyze verify accepts a unit rendered from hostile but renderable values", { skip: have("systemd-analyze") ? false : "systemd-analyze not installed" }, (t) => {
    const dir = tmpdir("ocigen-sec-unit-");
    try {
      const text = renderUnit(baseInput({ config: { Entrypoint: ["/bin/echo", "$HOME %n \"q\" \\ x\ny"], Env: ["A=%h $X \"q\" \\"], WorkingDir: "/w%d" } }));
      fs.writeFileSync(path.join(dir, "sec.service"), text.replace(/^(Requires|After)=.*$/gm, ""));
      const r = spawnSync("systemd-analyze", ["verify", "--man=no", path.join(dir, "sec.service")], { encoding: "utf8" });
      if (/Failed to (initialize|setup|open)|Cannot access|Operation not permitted/i.test(r.stderr) && r.status !== 0 && !/sec\.service:/.test(r.stderr)) {
        t.skip(`systemd-analyze cannot run here: ${r.stderr.trim().split("\n")[0]}`);
        return;
      }
      assert.doesNotMatch(r.stderr, /sec\.service:\d+:/, r.stderr);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
