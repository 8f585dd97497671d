// install-generator / uninstall-generator: layout of installed files,
// idempotency, conflicts, and that uninstall leaves nothing of ours behind.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { installGenerator, uninstallGenerator } from "../src/install/install.ts";
import { defaultConfig, INSTALL_PATHS, sliceUnit } from "../src/install/files.ts";
import { readManifest, safeRelative } from "../src/install/manifest.ts";
import { DENO_PERMISSIONS, DENO_V8_FLAGS, invocationArgv, invokedAsGenerator, pinnedSelf, selfCommand } from "../src/install/self.ts";
import { OcigenError } from "../src/errors.ts";
import { VERSION } from "../src/version.ts";
import { have } from "../src/util/which.ts";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const nodeBin = isDeno ? "node" : process.execPath;

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-install-"));
}

/** Every path under dir (relative), with type, mode and content/target: a comparable snapshot. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(dir, r);
      const st = fs.lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[r] = `link ${fs.readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[r] = `dir ${mode}`;
        walk(r);
      } else out[r] = `file ${mode} ${fs.readFileSync(p, "base64")}`;
    }
  };
  walk("");
  return out;
}

function fakeBin(dir: string, text = "#!/bin/sh\necho fake-ocigen \"$@\"\n"): string {
  const p = path.join(dir, "fake-ocigen");
  fs.writeFileSync(p, text, { mode: 0o755 });
  return p;
}

describe("install-generator", () => {
  test("installs exactly the documented layout", () => {
    const work = tmp();
    const prefix = path.join(work, "root");
    try {
      const bin = fakeBin(work);
      const r = installGenerator({ prefix, bin });
      assert.equal(r.prefix, prefix);
      const snap = snapshot(prefix);
      assert.deepEqual(Object.keys(snap).filter((k) => !snap[k].startsWith("dir")).sort(), [
        "etc/oci-generator.conf",
        "usr/local/bin/ocigen",
        "usr/local/lib/ocigen/install-manifest.json",
        "usr/local/lib/systemd/system-generators/ocigen-generator",
        "usr/local/lib/systemd/system/oci.slice",
        "usr/local/lib/systemd/system/ocigen-update.service",
        "usr/local/lib/systemd/system/ocigen-update.timer",
      ]);
      // program: a copy of --bin, executable
      assert.equal(fs.readFileSync(path.join(prefix, INSTALL_PATHS.binary), "utf8"), fs.readFileSync(bin, "utf8"));
      assert.equal(fs.statSync(path.join(prefix, INSTALL_PATHS.binary)).mode & 0o777, 0o755);
      // generator: relative link that resolves to the program inside the prefix
      const gen = path.join(prefix, INSTALL_PATHS.generator);
      assert.equal(fs.readlinkSync(gen), "../../../bin/ocigen");
      assert.equal(fs.realpathSync(gen), fs.realpathSync(path.join(prefix, INSTALL_PATHS.binary)));
      // running the link runs the program
      const run = spawnSync(gen, ["x"], { encoding: "utf8" });
      assert.equal(run.stdout, "fake-ocigen x\n");
      // config and slice
      assert.equal(fs.readFileSync(path.join(prefix, INSTALL_PATHS.config), "utf8"), defaultConfig());
      assert.match(defaultConfig(), /^\[system\]$/m);
      assert.match(defaultConfig(), /^imagelayoutdir = \/var\/lib\/oci\/layouts$/m);
      assert.match(defaultConfig(), /^extractsdir = \/var\/lib\/oci\/extracts$/m);
      assert.equal(fs.readFileSync(path.join(prefix, INSTALL_PATHS.slice), "utf8"), sliceUnit());
      assert.equal(fs.statSync(path.join(prefix, INSTALL_PATHS.slice)).mode & 0o777, 0o644);
      // manifest
      const m = readManifest(path.join(prefix, INSTALL_PATHS.manifest))!;
      assert.equal(m.version, VERSION);
      assert.deepEqual(m.entries.map((e) => `${e.type} ${e.path}`).sort(), [
        "config etc/oci-generator.conf",
        "file usr/local/bin/ocigen",
        "file usr/local/lib/systemd/system/oci.slice",
        "file usr/local/lib/systemd/system/ocigen-update.service",
        "file usr/local/lib/systemd/system/ocigen-update.timer",
        "symlink usr/local/lib/systemd/system-generators/ocigen-generator",
      ]);
      assert.ok(m.dirs.includes("usr") && m.dirs.includes("etc") && m.dirs.includes("usr/local/lib/ocigen"));
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  test("is idempotent: a second install changes nothing", () => {
    const work = tmp();
    const prefix = path.join(work, "root");
    try {
      const bin = fakeBin(work);
      installGenerator({ prefix, bin });
      const before = snapshot(prefix);
      const r = installGenerator({ prefix, bin });
      assert.deepEqual(snapshot(prefix), before);
      assert.ok(r.actions.every((a) => a.startsWith("up to date") || a.startsWith("kept")), r.actions.join("\n"));
      // and uninstall after two installs still removes everything
      uninstallGenerator({ prefix });
      assert.deepEqual(fs.readdirSync(prefix), []);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  test("upgrade: a new --bin replaces the program it installed", () => {
    const work = tmp();
    const prefix = path.join(work, "root");
    try {
      installGenerator({ prefix, bin: fakeBin(work, "#!/bin/sh\necho v1\n") });
      const r = installGenerator({ prefix, bin: fakeBin(work, "#!/bin/sh\necho v2\n") });
      assert.ok(r.actions.some((a) => a.startsWith("updated") && a.includes("usr/local/bin/ocigen")));
      assert.equal(spawnSync(path.join(prefix, INSTALL_PATHS.generator), [], { encoding: "utf8" }).stdout, "v2\n");
      uninstallGenerator({ prefix });
      assert.deepEqual(fs.readdirSync(prefix), []);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  test("uninstall leaves nothing of ours behind, and keeps what is not ours", () => {
    const work = tmp();
    const prefix = path.join(work, "root");
    try {
      // the admin's things, before install
      fs.mkdirSync(path.join(prefix, "usr/local/bin"), { recursive: true });
      fs.writeFileSync(path.join(prefix, "usr/local/bin/other-tool"), "x");
      fs.mkdirSync(path.join(prefix, "etc"), { recursive: true });
      fs.writeFileSync(path.join(prefix, "etc/hostname"), "box\n");
      const before = snapshot(prefix);
      installGenerator({ prefix, bin: fakeBin(work) });
      // someone else's file inside a directory we created
      fs.writeFileSync(path.join(prefix, "usr/local/lib/systemd/system/other.service"), "[Service]\n");
      const r = uninstallGenerator({ prefix });
      assert.deepEqual(r.kept, []);
      const after = snapshot(prefix);
      // exactly the admin's files, plus the foreign unit and the directories holding it
      assert.deepEqual(after, {
        ...before,
        "usr/local/lib": after["usr/local/lib"],
        "usr/local/lib/systemd": after["usr/local/lib/systemd"],
        "usr/local/lib/systemd/system": after["usr/local/lib/systemd/system"],
        "usr/local/lib/systemd/system/other.service": after["usr/local/lib/systemd/system/other.service"],
      });
      // uninstall again: nothing to do
      assert.match(uninstallGenerator({ prefix }).actions[0], /^nothing to uninstall/);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  test("never replaces an existing config, never removes a changed one", () => {
    const work = tmp();
    try {
      // 1. config existed before install: kept, not recorded, not removed
      const p1 = path.join(work, "r1");
      fs.mkdirSync(path.join(p1, "etc"), { recursive: true });
      fs.writeFileSync(path.join(p1, INSTALL_PATHS.config), "[system]\nimagelayoutdir = /srv/oci\n");
      installGenerator({ prefix: p1, bin: fakeBin(work) });
      assert.equal(fs.readFileSync(path.join(p1, INSTALL_PATHS.config), "utf8"), "[system]\nimagelayoutdir = /srv/oci\n");
      assert.ok(!readManifest(path.join(p1, INSTALL_PATHS.manifest))!.entries.some((e) => e.type === "config"));
      uninstallGenerator({ prefix: p1 });
      assert.deepEqual(snapshot(p1), { etc: snapshot(p1).etc, "etc/oci-generator.conf": snapshot(p1)["etc/oci-generator.conf"] });
      assert.equal(fs.readFileSync(path.join(p1, INSTALL_PATHS.config), "utf8"), "[system]\nimagelayoutdir = /srv/oci\n");

      // 2. config written by install, then changed by the admin: a reinstall keeps it, uninstall keeps it
      const p2 = path.join(work, "r2");
      installGenerator({ prefix: p2, bin: fakeBin(work) });
      fs.appendFileSync(path.join(p2, INSTALL_PATHS.config), "extractsdir = /srv/extracts\n");
      const changed = fs.readFileSync(path.join(p2, INSTALL_PATHS.config), "utf8");
      installGenerator({ prefix: p2, bin: fakeBin(work) });
      assert.equal(fs.readFileSync(path.join(p2, INSTALL_PATHS.config), "utf8"), changed);
      const r = uninstallGenerator({ prefix: p2 });
      assert.equal(r.kept.length, 1);
      assert.match(r.kept[0], /oci-generator\.conf/);
      assert.equal(fs.readFileSync(path.join(p2, INSTALL_PATHS.config), "utf8"), changed);
      assert.deepEqual(Object.keys(snapshot(p2)).sort(), ["etc", "etc/oci-generator.conf"]);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  test("refuses to replace a file it did not install, changing nothing; --force replaces", () => {
    const work = tmp();
    const prefix = path.join(work, "root");
    try {
      fs.mkdirSync(path.join(prefix, "usr/local/bin"), { recursive: true });
      fs.writeFileSync(path.join(prefix, INSTALL_PATHS.binary), "someone else's ocigen\n", { mode: 0o755 });
      const before = snapshot(prefix);
      assert.throws(() => installGenerator({ prefix, bin: fakeBin(work) }), (e: unknown) => {
        assert.ok(e instanceof OcigenError);
        assert.equal(e.code, "EINSTALL");
        assert.match(e.message, /usr\/local\/bin\/ocigen exists and was not installed by ocigen/);
        assert.ok(!e.message.includes("\n"));
        return true;
      });
      assert.deepEqual(snapshot(prefix), before);
      installGenerator({ prefix, bin: fakeBin(work), force: true });
      assert.equal(fs.readFileSync(path.join(prefix, INSTALL_PATHS.binary), "utf8"), fs.readFileSync(fakeBin(work), "utf8"));
      uninstallGenerator({ prefix });
      assert.deepEqual(Object.keys(snapshot(prefix)).sort(), ["usr", "usr/local", "usr/local/bin"]);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  test("a program changed after install is kept by uninstall", () => {
    const work = tmp();
    const prefix = path.join(work, "root");
    try {
      installGenerator({ prefix, bin: fakeBin(work) });
      fs.writeFileSync(path.join(prefix, INSTALL_PATHS.binary), "patched\n");
      const r = uninstallGenerator({ prefix });
      assert.equal(r.kept.length, 1);
      assert.equal(fs.readFileSync(path.join(prefix, INSTALL_PATHS.binary), "utf8"), "patched\n");
      assert.ok(!fs.existsSync(path.join(prefix, INSTALL_PATHS.generator)));
      assert.ok(!fs.existsSync(path.join(prefix, INSTALL_PATHS.manifest)));
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  test("a tampered manifest cannot point uninstall outside the prefix", () => {
    const work = tmp();
    const prefix = path.join(work, "root");
    try {
      installGenerator({ prefix, bin: fakeBin(work) });
      const mp = path.join(prefix, INSTALL_PATHS.manifest);
      const m = JSON.parse(fs.readFileSync(mp, "utf8"));
      m.entries.push({ path: "../victim", type: "file", sha256: "0".repeat(64) });
      fs.writeFileSync(mp, JSON.stringify(m));
      fs.writeFileSync(path.join(work, "victim"), "keep me");
      assert.throws(() => uninstallGenerator({ prefix }), /not an ocigen install manifest: bad path/);
      assert.equal(fs.readFileSync(path.join(work, "victim"), "utf8"), "keep me");
      assert.equal(safeRelative("a/./b"), false);
      assert.equal(safeRelative("/etc"), false);
      assert.equal(safeRelative("usr/local/bin/ocigen"), true);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  test("the installed slice passes systemd-analyze verify", (t) => {
    if (!have("systemd-analyze")) {
      if (process.env.CI) assert.fail("systemd-analyze not installed");
      t.skip("systemd-analyze not installed");
      return;
    }
    const work = tmp();
    try {
      installGenerator({ prefix: work, bin: fakeBin(work) });
      const dir = path.join(work, path.dirname(INSTALL_PATHS.slice));
      const r = spawnSync("systemd-analyze", ["verify", "./oci.slice"], { cwd: dir, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), "");
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  test("CLI from the bundle: default program is a wrapper running node on an installed copy of dist/ocigen.mjs", (t) => {
    const bundle = path.join(root, "dist/ocigen.mjs");
    if (!fs.existsSync(bundle)) {
      if (process.env.CI) assert.fail("dist/ocigen.mjs missing (npm ci runs the build)");
      t.skip("dist/ocigen.mjs not built (npm run build)");
      return;
    }
    // the loader's program beside it (see .ci/code-cache.mjs), or an older one-file bundle
    const program = fs.existsSync(bundle + ".program") ? bundle + ".program" : bundle;
    if (!fs.readFileSync(program, "utf8").includes("install-generator")) {
      t.skip("dist/ocigen.mjs is older than install-generator (npm run build)");
      return;
    }
    const work = tmp();
    try {
      const cli = (...a: string[]) => spawnSync(nodeBin, [bundle, ...a], { encoding: "utf8", cwd: work });
      const r = cli("install-generator", "--prefix", work);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /installed .*usr\/local\/bin\/ocigen \(wrapper for /);
      const wrapper = fs.readFileSync(path.join(work, INSTALL_PATHS.binary), "utf8");
      assert.ok(wrapper.startsWith("#!/bin/sh\n"));
      // nothing from the checkout: the wrapper runs the installed copy of the bundle
      assert.ok(wrapper.includes(`'/${INSTALL_PATHS.bundle}'`), wrapper);
      assert.ok(!wrapper.includes(root), "the wrapper names no path of the checkout");
      const copy = path.join(work, INSTALL_PATHS.bundle);
      assert.deepEqual(fs.readFileSync(copy), fs.readFileSync(bundle));
      // and what the loader reads beside it: its program and the code cache the build made
      for (const suffix of [".program", ".cache"]) {
        if (fs.existsSync(bundle + suffix)) assert.deepEqual(fs.readFileSync(copy + suffix), fs.readFileSync(bundle + suffix), suffix);
      }
      // through the generator link the wrapper runs the generator's own bundle (generation only), when built
      const genBundle = path.join(root, "dist/ocigen-generator.mjs");
      if (fs.existsSync(genBundle)) {
        assert.deepEqual(fs.readFileSync(path.join(work, INSTALL_PATHS.generatorBundle)), fs.readFileSync(genBundle));
        assert.match(wrapper, new RegExp(`ocigen-generator\\) exec '[^']+' '/${INSTALL_PATHS.generatorBundle}' "\\$@"`), wrapper);
        const conf = path.join(work, "gen.conf");
        fs.writeFileSync(conf, `imagelayoutdir=${path.join(work, "none")}\nextractsdir=${path.join(work, "x")}\n`);
        // the installed copy generates on its own, and hands what it does not parse (--help) to the program beside it
        const genCopy = path.join(work, INSTALL_PATHS.generatorBundle);
        const g = spawnSync(nodeBin, [genCopy, "--config", conf, "--dry-run", path.join(work, "out")], { encoding: "utf8", env: { OCIGEN_KMSG: "0" } });
        assert.equal(g.status, 0, g.stderr);
        assert.match(g.stderr, /no layouts under/);
        const help = spawnSync(nodeBin, [genCopy, "--help"], { encoding: "utf8", env: {} });
        assert.match(help.stdout, /^Usage: ocigen generate /, help.stderr);
        fs.rmSync(conf);
      }
      // the copy runs ocigen, with no PATH (generators run with a minimal environment)
      const v = spawnSync(nodeBin, [copy, "--version"], { encoding: "utf8", env: {} });
      assert.equal(v.stdout.trim(), VERSION, v.stderr);
      // a second run is a no-op; uninstall empties the prefix
      assert.equal(cli("install-generator", "--prefix", work).stdout.split("\n").filter((l) => l.startsWith("installed")).length, 0);
      const u = cli("uninstall-generator", "--prefix", work);
      assert.equal(u.status, 0, u.stderr);
      assert.deepEqual(fs.readdirSync(work), []);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});

describe("invocation as ocigen-generator", () => {
  test("argv[1] or argv0 named ocigen-generator inserts generate", () => {
    const argv = ["/usr/bin/node", "/x/ocigen-generator", "/run/a", "/run/b", "/run/c"];
    assert.deepEqual(invocationArgv(argv, invokedAsGenerator(argv, "node")),
      ["/usr/bin/node", "/x/ocigen-generator", "generate", "/run/a", "/run/b", "/run/c"]);
    // single binary through the link: argv[0] is the binary, argv[1] and argv0 the link
    assert.ok(invokedAsGenerator(["/usr/local/bin/ocigen", "/usr/local/lib/systemd/system-generators/ocigen-generator"], "/usr/local/lib/systemd/system-generators/ocigen-generator"));
    assert.ok(invokedAsGenerator(["node", "/p/dist/ocigen-generator.mjs"], "node"));
    assert.ok(invokedAsGenerator(["node", "/p/dist/ocigen.mjs"], "node", true)); // OCIGEN_AS_GENERATOR=1
    assert.ok(!invokedAsGenerator(["/usr/local/bin/ocigen", "ocigen", "generate"], "ocigen"));
    assert.ok(!invokedAsGenerator(["node", "/p/ocigen-generator-old"], "node"));
    assert.deepEqual(invocationArgv(["node", "/p/dist/ocigen.mjs", "ls"], false), ["node", "/p/dist/ocigen.mjs", "ls"]);
  });
});

describe("OCIGEN_SELF for generated units", () => {
  test("invoked through a generator link to an executable script, OCIGEN_SELF is the script's real path", () => {
    const work = tmp();
    try {
      const script = path.join(work, "ocigen.mjs");
      fs.writeFileSync(script, "#!/usr/bin/env node\n", { mode: 0o755 });
      const link = path.join(work, "ocigen-generator");
      fs.symlinkSync(script, link);
      assert.equal(pinnedSelf(["node", link], undefined, true), fs.realpathSync(script));
      // not as generator: nothing pinned; an existing value (the wrapper's) wins
      assert.equal(pinnedSelf(["node", script], undefined, false), undefined);
      assert.equal(pinnedSelf(["node", link], "/usr/local/bin/ocigen", true), "/usr/local/bin/ocigen");
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});

describe("default config", () => {
  test("parses with the generator's own parser to exactly the built-in defaults", async (t) => {
    let mod: typeof import("../src/generator/config.ts");
    try {
      mod = await import("../src/generator/config.ts");
    } catch (e) {
      t.skip(`generator config parser not available: ${(e as Error).message}`);
      return;
    }
    const parsed = mod.parseGeneratorConfig(defaultConfig(), "/etc/oci-generator.conf");
    const defaults = mod.defaultGeneratorConfig();
    const plain = (c: typeof defaults) => JSON.stringify({ ...c, path: undefined, layouts: [...c.layouts] });
    assert.equal(plain(parsed), plain(defaults));
  });
});

describe("the command that runs this ocigen again", () => {
  test("under Deno it carries the V8 flags and the permissions; under Node the runtime's own options", () => {
    const cmd = selfCommand();
    assert.equal(cmd[0], process.execPath);
    if (isDeno) {
      assert.deepEqual(cmd.slice(1, 2 + DENO_V8_FLAGS.length + DENO_PERMISSIONS.length), ["run", ...DENO_V8_FLAGS, ...DENO_PERMISSIONS]);
      assert.match(DENO_V8_FLAGS.join(" "), /^--v8-flags=--max-semi-space-size=\d+,--expose-gc$/);
    } else {
      assert.ok(!cmd.some((a) => a.startsWith("--v8-flags")), cmd.join(" "));
    }
    assert.equal(selfCommand("/usr/local/bin/ocigen").join(" "), "/usr/local/bin/ocigen");
  });
  test("the deno tasks that run ocigen pass the same V8 flags as the wrapper", () => {
    const tasks = JSON.parse(fs.readFileSync(new URL("../deno.json", import.meta.url), "utf8")).tasks as Record<string, string>;
    const runs = Object.entries(tasks).filter(([, cmd]) => /\bdeno run .* src\/main\.ts\b/.test(cmd));
    assert.ok(runs.length >= 3, `tasks running src/main.ts: ${runs.map(([k]) => k).join(", ")}`);
    for (const [name, cmd] of runs) {
      const flags = cmd.split(/\s+/).filter((a) => a.startsWith("--v8-flags"));
      assert.deepEqual(flags, [...DENO_V8_FLAGS], `deno task ${name}`);
    }
  });
});
