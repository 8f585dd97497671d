// Unit tests of the systemd generator pieces: naming table, systemd quoting (checked
// against systemd's own parser with random arguments), config parsing, discovery,
// user resolution, the kmsg reporter and the CLI (exit codes, one/three directories).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { makeLayout, mkTemp, rmTemp, tarFiles, breakLayout } from "../fixtures/layout.ts";
import { canParseWithSystemd, envSubstituted, systemdParseMany } from "../fixtures/generator.ts";
import { escapeNamePart, unitName } from "../src/generator/naming.ts";
import { execLine, execWord, listWord, checkLineValue } from "../src/generator/syntax.ts";
import { loadGeneratorConfig, parseGeneratorConfig, layoutSettings } from "../src/generator/config.ts";
import { discoverLayouts } from "../src/generator/discover.ts";
import { findInImagePath, readFileInRoot, resolveInRoot } from "../src/rootfs/read.ts";
import { parseGroup, parsePasswd, resolveUser } from "../src/rootfs/users.ts";
import { createReporter, kmsgRecord } from "../src/generator/report.ts";
import { normalizeSignal } from "../src/generator/signal.ts";
import { renderAtomicTemplate } from "../src/generator/atomic-template.ts";
import { main } from "../src/cli/main.ts";
import { captureStderr } from "./capture-stderr.ts";

describe("unit names (SPEC 4.2)", () => {
  const table: [string, string, string][] = [
    ["myorg.com/myapp", "stable", "com.myorg.myapp.ref.stable.service"],
    ["example.com/test/myapp", "v1.0.0", "com.example.test.myapp.ref.v1.0.0.service"],
    ["busybox", "latest", "busybox.ref.latest.service"],
    ["registry.example.com:5000/team/app", "1.2", "com.example.registry:5000.team.app.ref.1.2.service"],
    ["app", "tag+build", "app.ref.tag\\x2bbuild.service"],
    ["my app@home/svc", "latest", "my\\x20app\\x40home.svc.ref.latest.service"],
    ["user@host.example", "v1", "example.user\\x40host.ref.v1.service"],
    ["a..b/c", "x", "a.\\x2eb.c.ref.x.service"],
    ["x./y", "t", "x\\x2e.y.ref.t.service"],
    ["app", "feature/x", "app.ref.feature\\x2fx.service"],
    ["my-app_1", "a--b", "my-app_1.ref.a--b.service"],
    ["back\\slash", "t", "back\\x5cslash.ref.t.service"],
    ["ü", "t", "\\xc3\\xbc.ref.t.service"],
  ];
  for (const [name, tag, want] of table) {
    test(`${name} + ${tag} -> ${want}`, () => assert.equal(unitName(name, tag), want));
  }
  test("never a '..', never a leading '.', only systemd's unit name characters", () => {
    fc.assert(fc.property(fc.array(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 4 }), fc.string({ minLength: 1, maxLength: 10 }), (comps, tag) => {
      const name = comps.join("/");
      if (comps.some((c) => c.includes("/") || c === "." || c === ".." || /[\x00-\x1f\x7f]/.test(c))) return;
      const u = unitName(name, tag);
      assert.ok(!u.includes(".."), u);
      assert.ok(!u.startsWith("."), u);
      assert.match(u, /^[A-Za-z0-9:_.\\-]+\.service$/);
    }));
  });
  test("escaping is injective per part", () => {
    fc.assert(fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (a, b) => {
      if (a !== b) assert.notEqual(escapeNamePart(a), escapeNamePart(b));
    }));
  });
  test("too long or bad names are refused", () => {
    assert.throws(() => unitName("a".repeat(250), "latest"), /more than systemd's 255/);
    assert.equal(unitName("a".repeat(226), "t"), "a".repeat(226) + ".ref.t.service");
    assert.throws(() => unitName("a".repeat(227), "t"), /would be 256 characters/);
    assert.throws(() => unitName("a/../b", "t"), /not a normalized relative path/);
    assert.throws(() => unitName("/abs", "t"), /not a normalized relative path/);
    assert.throws(() => unitName("a\nb", "t"), /control character/);
  });
});

describe("systemd quoting", () => {
  test("words", () => {
    assert.equal(execWord("plain"), "plain");
    assert.equal(execWord("a b"), '"a b"');
    assert.equal(execWord("$HOME"), "$$HOME");
    assert.equal(execWord("100%n"), "100%%n");
    assert.equal(execWord(""), '""');
    assert.equal(execWord(";"), '";"');
    assert.equal(execWord("x\nExecStartPre=/bin/evil"), '"x\\nExecStartPre=/bin/evil"');
    assert.equal(execWord("end\\"), '"end\\\\"');
    assert.equal(listWord("A=b c"), '"A=b c"');
    assert.throws(() => execWord("a\0b"), /NUL/);
    assert.throws(() => execWord("\ud800"), /surrogate/);
  });
  test("executables", () => {
    assert.equal(execLine(["/bin/sh", "-c", "x"], "+"), "+/bin/sh -c x");
    for (const bad of ["-x", "@x", "./x", "/a/../b", "/a/", "", "$x", "/a\nb"]) {
      assert.throws(() => execLine([bad]), /executable/, bad);
    }
    assert.equal(execLine(["nginx"]), "nginx");
  });
  test("raw values refuse newlines and trailing backslashes", () => {
    assert.equal(checkLineValue("50%", "x"), "50%%");
    assert.throws(() => checkLineValue("a\nb", "x"), /control character/);
    assert.throws(() => checkLineValue("a\\", "x"), /backslash/);
  });
  test("systemd parses random arguments back exactly (systemd --test)", (t) => {
    if (!canParseWithSystemd()) {
      if (process.env.CI) assert.fail("systemd --test is not runnable");
      t.skip("systemd --test not runnable here");
      return;
    }
    const arg = fc.oneof(
      fc.string({ unit: "grapheme", maxLength: 12 }),
      fc.string({ unit: fc.constantFrom(..."ab $%\\\"';\n\t{}\r#=\u0001x"), maxLength: 12 }),
    ).filter((s) => !s.includes("\0"));
    const samples = fc.sample(fc.array(arg, { minLength: 0, maxLength: 6 }), { numRuns: 150, seed: 42 });
    const files: Record<string, string> = {};
    const units: string[] = [];
    samples.forEach((args, i) => {
      const u = `q${i}.service`;
      units.push(u);
      const env = args.map((a, j) => `V${j}=${a}`);
      files[u] = `[Service]\nExecStart=${execLine(["/bin/echo", ...args])}\n${env.map((e) => `Environment=${listWord(e)}\n`).join("")}`;
    });
    const parsed = systemdParseMany(files, units);
    samples.forEach((args, i) => {
      const p = parsed.get(`q${i}.service`)!;
      assert.deepEqual(p.exec.get("ExecStart")?.length, 1);
      assert.deepEqual(p.exec.get("ExecStart")![0].map(envSubstituted), ["/bin/echo", ...args], JSON.stringify(args));
      const envs = (p.props.get("Environment") ?? []);
      assert.deepEqual(envs, args.map((a, j) => `V${j}=${a}`.split("\n")[0]), JSON.stringify(args));
    });
  });
});

describe("config", () => {
  test("defaults, [system], section-less form, per-layout sections", () => {
    const d = parseGeneratorConfig("", "c");
    assert.equal(d.imageLayoutDir, "/var/lib/oci/layouts");
    assert.equal(d.extractsDir, "/var/lib/oci/extracts");
    const s = parseGeneratorConfig("imagelayoutdir = /mnt/data/oci/layouts\nextractsdir = /mnt/data/oci/extracts\n", "c");
    assert.equal(s.imageLayoutDir, "/mnt/data/oci/layouts");
    assert.equal(s.extractsDir, "/mnt/data/oci/extracts");
    const c = parseGeneratorConfig(
      "# comment\n[system]\nimagelayoutdir=/l/\n; x\nENABLE = yes\nprotectsystem = full\nruntime = /opt/crun\n[layout \"a/b\"]\nenable = no\nprotecthome = tmpfs\n",
      "c",
    );
    assert.equal(c.imageLayoutDir, "/l");
    assert.equal(c.extractsDir, "/var/lib/oci/extracts");
    assert.equal(c.enable, true);
    assert.equal(c.atomicTemplates, false, "Atomic templates are off unless the administrator turns them on");
    assert.equal(parseGeneratorConfig("atomictemplates = yes\n", "c").atomicTemplates, true);
    // userdbdir is a key of earlier versions: accepted (with a warning) and ignored
    const old = parseGeneratorConfig("userdbdir =\nrundir = /run/x/\nvolumesdir = /srv/vol\n", "c");
    assert.equal(old.runDir, "/run/x");
    assert.equal(old.volumesDir, "/srv/vol");
    assert.ok(!("userdbDir" in old));
    const pick = (l: ReturnType<typeof layoutSettings>) => ({ runtime: l.runtime, protectSystem: l.protectSystem, protectHome: l.protectHome, enable: l.enable });
    assert.deepEqual(pick(layoutSettings(c, "a/b")), { runtime: "/opt/crun", protectSystem: "full", protectHome: "tmpfs", enable: false });
    assert.deepEqual(pick(layoutSettings(c, "x")), { runtime: "/opt/crun", protectSystem: "full", protectHome: "no", enable: undefined });
  });
  test("bad values name the file and line", () => {
    assert.throws(() => parseGeneratorConfig("[system]\nimagelayoutdir = rel\n", "/etc/x.conf"), /Bad config \/etc\/x.conf:2: imagelayoutdir must be an absolute path/);
    assert.throws(() => parseGeneratorConfig("protectsystem = maybe\n", "f"), /f:1: protectsystem/);
    assert.throws(() => parseGeneratorConfig("enable = perhaps\n", "f"), /boolean/);
    assert.throws(() => parseGeneratorConfig("[system\n", "f"), /malformed section/);
  });
  test("--config, then the settings' generatorConf ($OCIGEN_GENERATOR_CONF), then the default", () => {
    const tmp = mkTemp("ocigen-gencfg-");
    try {
      const a = join(tmp, "a.conf");
      const b = join(tmp, "b.conf");
      fs.writeFileSync(a, "imagelayoutdir = /from/flag\n");
      fs.writeFileSync(b, "imagelayoutdir = /from/env\n");
      assert.equal(loadGeneratorConfig(a, b).imageLayoutDir, "/from/flag");
      assert.equal(loadGeneratorConfig(undefined, b).imageLayoutDir, "/from/env");
      assert.equal(loadGeneratorConfig(undefined, b).explicit, true);
      assert.throws(() => loadGeneratorConfig(join(tmp, "missing.conf")), /missing.conf: read config: ENOENT/);
    } finally {
      rmTemp(tmp);
    }
  });
});

describe("discovery", () => {
  test("finds layouts by oci-layout, skips blobs/refs/hidden, survives link loops", async () => {
    const tmp = mkTemp("ocigen-disc-");
    try {
      makeLayout(join(tmp, "a.com/x"), [{ tags: ["t"], layers: [] }]);
      makeLayout(join(tmp, "b"), [{ tags: ["t"], layers: [] }]);
      // a layout-looking directory inside blobs/ must not be found
      fs.mkdirSync(join(tmp, "b/blobs/nested"), { recursive: true });
      fs.writeFileSync(join(tmp, "b/blobs/nested/oci-layout"), "{}");
      fs.mkdirSync(join(tmp, ".hidden/l"), { recursive: true });
      fs.writeFileSync(join(tmp, ".hidden/l/oci-layout"), "{}");
      fs.mkdirSync(join(tmp, "deep/er"), { recursive: true });
      fs.symlinkSync("..", join(tmp, "deep/er/loop"));
      fs.writeFileSync(join(tmp, "oci-layout"), "{}"); // the root itself is not a layout
      const d = await discoverLayouts(tmp);
      assert.deepEqual(d.layouts.map((l) => l.name), ["a.com/x", "b"]);
      assert.deepEqual(d.layouts.map((l) => l.real), [fs.realpathSync(join(tmp, "a.com/x")), fs.realpathSync(join(tmp, "b"))]);
      assert.deepEqual(d.errors, []);
      assert.deepEqual(await discoverLayouts(join(tmp, "nope")), { layouts: [], errors: [] });
    } finally {
      rmTemp(tmp);
    }
  });
});

describe("image users", () => {
  const passwd = parsePasswd("root:x:0:0:root:/root:/bin/sh\nnginx:x:101:102::/:/bin/false\nbroken line\n");
  const group = parseGroup("root:x:0:\nweb:x:33:nginx\n");
  test("resolution as runc does it", () => {
    // nginx is a member of web: a supplementary group unless a group is given
    assert.deepEqual(resolveUser("nginx", passwd, group), { uid: 101, gid: 102, additionalGids: [33], home: "/" });
    assert.deepEqual(resolveUser("nginx:web", passwd, group), { uid: 101, gid: 33, home: "/" });
    assert.deepEqual(resolveUser("101", passwd, group), { uid: 101, gid: 102, additionalGids: [33], home: "/" });
    assert.deepEqual(resolveUser("500", passwd, group), { uid: 500, gid: 0 });
    assert.deepEqual(resolveUser("500:7", null, null), { uid: 500, gid: 7 });
    assert.throws(() => resolveUser("nobody", passwd, group), /no such user in the image's \/etc\/passwd/);
    assert.throws(() => resolveUser("nginx:nogroup", passwd, group), /no such group in the image's \/etc\/group/);
  });
  test("files are read inside the rootfs: symlinks cannot escape", () => {
    const tmp = mkTemp("ocigen-root-");
    try {
      const root = join(tmp, "rootfs");
      fs.mkdirSync(join(tmp, "outside"), { recursive: true });
      fs.writeFileSync(join(tmp, "outside/passwd"), "evil:x:0:0::/:/bin/sh\n");
      fs.mkdirSync(join(root, "real"), { recursive: true });
      fs.writeFileSync(join(root, "real/passwd"), "ok:x:1:1::/:/bin/sh\n");
      fs.symlinkSync("../../../../../outside", join(root, "etc"));
      assert.equal(readFileInRoot(root, "/etc/passwd", 1000), null);
      fs.rmSync(join(root, "etc"));
      fs.symlinkSync("/real", join(root, "etc"));
      assert.equal(new TextDecoder().decode(readFileInRoot(root, "/etc/passwd", 1000)!), "ok:x:1:1::/:/bin/sh\n");
      assert.equal(resolveInRoot(root, "/etc/../../../../outside/passwd"), null);
      assert.throws(() => readFileInRoot(root, "/etc/passwd", 3), /larger than 3 bytes/);
      // plain command names: the image's PATH, inside the rootfs, executables only
      fs.mkdirSync(join(root, "usr/sbin"), { recursive: true });
      fs.mkdirSync(join(root, "opt/bin"), { recursive: true });
      fs.writeFileSync(join(root, "usr/sbin/nginx"), "", { mode: 0o755 });
      fs.writeFileSync(join(root, "opt/bin/nginx"), "", { mode: 0o644 });
      fs.writeFileSync(join(tmp, "outside/evil"), "", { mode: 0o755 });
      fs.symlinkSync("../../../outside/evil", join(root, "opt/bin/evil"));
      assert.equal(findInImagePath(root, "nginx", undefined), "/usr/sbin/nginx");
      assert.equal(findInImagePath(root, "nginx", ["PATH=/opt/bin:/usr/sbin"]), "/usr/sbin/nginx");
      assert.equal(findInImagePath(root, "nginx", ["PATH=/opt/bin"]), null);
      assert.equal(findInImagePath(root, "evil", ["PATH=/opt/bin"]), null);
    } finally {
      rmTemp(tmp);
    }
  });
});

describe("signals", () => {
  test("StopSignal forms", () => {
    assert.equal(normalizeSignal("SIGTERM"), "SIGTERM");
    assert.equal(normalizeSignal("term"), "SIGTERM");
    assert.equal(normalizeSignal("9"), "SIGKILL");
    assert.equal(normalizeSignal("SIGRTMIN+3"), "SIGRTMIN+3");
    assert.equal(normalizeSignal("RTMAX"), "SIGRTMIN+30");
    assert.equal(normalizeSignal("SIGIOT"), "SIGABRT");
    for (const bad of ["SIGBOGUS", "0", "99", "", "RTMIN-1", "TERM\nUser=root"]) assert.throws(() => normalizeSignal(bad), /Bad StopSignal/, bad);
  });
});

describe("Atomic templates", () => {
  const vars = { NAME: "n", EXEC_START: "/usr/bin/runc run x", EXEC_STARTPRE: "+/usr/bin/ocigen extract", OPTS: "a b", EVIL: "x\nExecStartPre=/bin/evil", BS: "end\\", PCT: "%n" };
  test("substitution and escaping by context", () => {
    const out = renderAtomicTemplate("[Service]\nExecStartPre=$EXEC_STARTPRE\nExecStart=$EXEC_START $OPTS ${PCT}\nDescription=$PCT $$ $NAME\nEnvironment=O=$OPTS\n", vars);
    assert.equal(out, "[Service]\nExecStartPre=+/usr/bin/ocigen extract\nExecStart=/usr/bin/runc run x \"a b\" %%n\nDescription=%%n $ n\nEnvironment=O=\"a b\"\n");
  });
  test("unknown variables, bad placeholders, values that would add lines fail", () => {
    assert.throws(() => renderAtomicTemplate("[Service]\nExecStart=$NOPE\n", vars), /line 2: unknown variable \$NOPE/);
    assert.throws(() => renderAtomicTemplate("[Service]\nExecStart=$ x\n", vars), /invalid placeholder/);
    assert.throws(() => renderAtomicTemplate("[Service]\nDescription=$EVIL\n", vars), /control character/);
    assert.throws(() => renderAtomicTemplate("[Service]\nDescription=$BS\nExecStart=/bin/true\n", vars), /backslash/);
    assert.throws(() => renderAtomicTemplate("[Unit]\nDescription=x\n", vars), /no \[Service\] section/);
    assert.equal(renderAtomicTemplate("[Service]\nExecStart=/x $EVIL\n", vars), "[Service]\nExecStart=/x \"x\\nExecStartPre=/bin/evil\"\n");
  });
});

describe("reporting", () => {
  test("kmsg records carry our name and priority (when kmsg is chosen: test/settings.test.ts)", () => {
    assert.equal(kmsgRecord(3, "layout x: broken\nsecond line", 42), "<3>ocigen-generator[42]: layout x: broken second line\n");
    assert.equal(kmsgRecord(4, "careful", 7), "<4>ocigen-generator[7]: careful\n");
  });
  test("kmsg: only an existing character device is written; nothing is ever created; else stderr", async () => {
    const tmp = mkTemp("ocigen-kmsg-");
    try {
      // a character device (/dev/null) is used; nothing reaches stderr
      const dev = await captureStderr(async () => {
        const r = createReporter(true, "/dev/null");
        r.error("to the device");
        return r.kmsg;
      });
      assert.equal(dev.value, true);
      assert.equal(dev.stderr, "");
      // missing: not created, stderr used
      const missing = join(tmp, "kmsg");
      const m = await captureStderr(async () => {
        const r = createReporter(true, missing, join(tmp, "console"));
        r.error("layout x: broken");
        return r.kmsg;
      });
      assert.equal(m.value, false);
      assert.equal(fs.existsSync(missing), false, "the reporter must not create a file");
      assert.equal(fs.existsSync(join(tmp, "console")), false, "the reporter must not create a console file");
      assert.match(m.stderr, /^ocigen: layout x: broken\n$/);
      // a regular file, a FIFO and a symlink to a device are left alone
      const reg = join(tmp, "regular");
      fs.writeFileSync(reg, "");
      const link = join(tmp, "link");
      fs.symlinkSync("/dev/null", link);
      const fifo = join(tmp, "fifo");
      const { spawnSync } = await import("node:child_process");
      const haveFifo = spawnSync("mkfifo", [fifo]).status === 0;
      for (const p of [reg, link, ...(haveFifo ? [fifo] : [])]) {
        const o = await captureStderr(async () => {
          const r = createReporter(true, p, p);
          r.warn("careful");
          return r.kmsg;
        });
        assert.equal(o.value, false, p);
        assert.match(o.stderr, /^ocigen: warn: careful\n$/, p);
      }
      assert.equal(fs.readFileSync(reg, "utf8"), "", "a regular file is never written");
      // no kernel log (a container): the console, as systemd's own generators do; nothing on stderr
      const con = await captureStderr(async () => {
        const r = createReporter(true, missing, "/dev/null");
        r.error("layout y: broken");
        return r.kmsg;
      });
      assert.equal(con.value, false);
      assert.equal(con.stderr, "", "the console (a character device) takes the message");
    } finally {
      rmTemp(tmp);
    }
  });
});

describe("ocigen generate (CLI)", () => {
  test("one corrupt layout among good ones: good units written, exit 1, message names the bad layout", async () => {
    const tmp = mkTemp("ocigen-gencli-");
    try {
      const L = join(tmp, "layouts");
      makeLayout(join(L, "good/a"), [{ tags: ["latest"], layers: [tarFiles([{ name: "x", data: "1" }])], config: { config: { Cmd: ["/bin/true"] } } as never }]);
      const bad = makeLayout(join(L, "corrupt"), [{ tags: ["latest"], layers: [], config: { config: { Cmd: ["/bin/true"] } } as never }]);
      breakLayout(bad, "broken-index-json");
      makeLayout(join(L, "good/b"), [{ tags: ["v1", "v2"], layers: [], config: { config: { Cmd: ["/bin/true"] } } as never }]);
      const conf = join(tmp, "c.conf");
      fs.writeFileSync(conf, `[system]\nimagelayoutdir=${L}\nextractsdir=${join(tmp, "x")}\nocigen=/bin/true\n`);
      const out = join(tmp, "out");
      process.exitCode = undefined;
      const { value: code, stderr } = await captureStderr(() => main(["node", "ocigen", "generate", "--config", conf, out]));
      process.exitCode = undefined;
      assert.equal(code, 1);
      assert.match(stderr, /layout corrupt: /);
      assert.deepEqual(fs.readdirSync(out).filter((n) => !n.startsWith("ocigen-extract@")).sort(), ["good.a.ref.latest.service", "good.b.ref.v1.service", "good.b.ref.v2.service"]);
      assert.deepEqual(fs.readdirSync(out).filter((n) => n.startsWith("ocigen-extract@")).sort(), ["ocigen-extract@good.a.ref.latest.service", "ocigen-extract@good.b.ref.v1.service", "ocigen-extract@good.b.ref.v2.service"]);
      // with everything fine: exit 0; two directories is a usage error
      rmTemp(join(L, "corrupt"));
      const ok = await captureStderr(() => main(["node", "ocigen", "generate", "--config", conf, out, join(tmp, "early"), join(tmp, "late")]));
      process.exitCode = undefined;
      assert.equal(ok.value, 0, ok.stderr);
      const two = await captureStderr(() => main(["node", "ocigen", "generate", "--config", conf, out, join(tmp, "early")]));
      process.exitCode = undefined;
      assert.equal(two.value, 1);
    } finally {
      rmTemp(tmp);
    }
  });

  test("never reads layers: generation works with every layer blob deleted", async () => {
    const tmp = mkTemp("ocigen-nolayers-");
    try {
      const L = join(tmp, "layouts");
      const fx = makeLayout(join(L, "app"), [{ tags: ["latest"], layers: [tarFiles([{ name: "x", data: "1" }]), tarFiles([{ name: "y", data: "2" }])], config: { config: { Cmd: ["/bin/true"] } } as never }]);
      for (const l of fx.layers[0]) fs.rmSync(join(fx.dir, "blobs/sha256", l.digest.slice(7)));
      const conf = join(tmp, "c.conf");
      fs.writeFileSync(conf, `imagelayoutdir=${L}\nextractsdir=${join(tmp, "x")}\nocigen=/bin/true\n`);
      const { value: code, stderr } = await captureStderr(() => main(["node", "ocigen", "generate", "--config", conf, join(tmp, "out")]));
      process.exitCode = undefined;
      assert.equal(code, 0, stderr);
      assert.ok(fs.existsSync(join(tmp, "out/app.ref.latest.service")));
    } finally {
      rmTemp(tmp);
    }
  });

  test("invoked as ocigen-generator with one directory, config from $OCIGEN_GENERATOR_CONF, --dry-run", async () => {
    const tmp = mkTemp("ocigen-genbin-");
    try {
      const L = join(tmp, "layouts");
      makeLayout(join(L, "busybox"), [{ tags: ["latest"], layers: [], config: { config: { Cmd: ["/bin/sh"] } } as never }]);
      const conf = join(tmp, "c.conf");
      fs.writeFileSync(conf, `imagelayoutdir=${L}\nextractsdir=${join(tmp, "x")}\nocigen=/bin/true\n`);
      const env = { ...process.env, OCIGEN_AS_GENERATOR: "1", OCIGEN_GENERATOR_CONF: conf, OCIGEN_KMSG: "0" };
      const r = spawnSync(process.execPath, ["--import", "tsx", "src/main.ts", join(tmp, "out")], { env, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(fs.readdirSync(join(tmp, "out")).sort(), ["busybox.ref.latest.service", "ocigen-extract@busybox.ref.latest.service"]);
      const d = spawnSync(process.execPath, ["--import", "tsx", "src/main.ts", "generate", "--dry-run", join(tmp, "out2")], { env: { ...env, OCIGEN_AS_GENERATOR: "" }, encoding: "utf8" });
      assert.equal(d.status, 0, d.stderr);
      assert.match(d.stdout, new RegExp(`^---${join(tmp, "out2")}/busybox.ref.latest.service---\n# Generated by ocigen-generator`));
      assert.equal(fs.existsSync(join(tmp, "out2")), false);
    } finally {
      rmTemp(tmp);
    }
  });
});
