// The generator's input side: the INI reader (inline comments), the README's config example,
// per-image settings files (/etc/ocigen/LAYOUT[:TAG].image), tag selection, platform choice,
// and the limits (ids, line length, discovery confined to imagelayoutdir), through the library
// and the CLI.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { makeLayout, makeMultiPlatformLayout, mkTemp, rmTemp } from "../fixtures/layout.ts";
import { canParseWithSystemd, generatorEnv, systemdParseMany } from "../fixtures/generator.ts";
import { parseIni, stripInlineComment } from "../src/generator/ini.ts";
import { DATED_TAG_GLOB, defaultGeneratorConfig, layoutSettings, parseGeneratorConfig } from "../src/generator/config.ts";
import {
  applySettings, checkUserSpec, imageSettingsPath, parseImageSettings, readImageSettings, settingsForLayout, settingsForTag,
} from "../src/generator/settings.ts";
import { globToRegExp, selectTags } from "../src/generator/tags.ts";
import { checkId, checkUnitLines, LONG_LINE_MAX, unitIdText } from "../src/generator/syntax.ts";
import { discoverLayouts } from "../src/generator/discover.ts";
import { generate } from "../src/generator/generate.ts";
import { extract } from "../src/generator/extract.ts";
import { checkImagePlatform, hostPlatform, normalizePlatform, parsePlatform, platformMatches } from "../src/oci/platform.ts";
import { Layout } from "../src/oci/layout.ts";
import { OcigenError } from "../src/errors.ts";
import { main } from "../src/cli/main.ts";
import { captureStderr as captureStderrOf } from "./capture-stderr.ts";
import { defaultConfig } from "../src/install/files.ts";

const README = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..", "README.md");
const quiet = { error() {}, warn() {}, info() {} };

function captureStderr<T>(fn: () => Promise<T>): Promise<{ value: T; stderr: string }> {
  process.exitCode = undefined; // node:test sets it when an earlier test failed; the CLI reports it
  return captureStderrOf(fn);
}

function code(e: unknown): string | undefined {
  return e instanceof OcigenError ? e.code : undefined;
}

/** The ```ini block under a README heading. */
function readmeIni(heading: string): string {
  const md = fs.readFileSync(README, "utf8");
  const at = md.indexOf(heading);
  assert.ok(at >= 0, `README has ${heading}`);
  const m = /```ini\n([\s\S]*?)```/.exec(md.slice(at));
  assert.ok(m, `an ini block under ${heading}`);
  return m[1];
}

const other = hostPlatform().architecture === "amd64" ? "arm64" : "amd64";

describe("config file: inline comments, quoting", () => {
  test("inline # and ; after a blank are comments; quoted values and a#b keep them", () => {
    assert.equal(stripInlineComment("no   # why"), "no");
    assert.equal(stripInlineComment("no\t; why"), "no");
    assert.equal(stripInlineComment("a#b"), "a#b");
    assert.equal(stripInlineComment('"a # b"  # c'), '"a # b"');
    assert.equal(stripInlineComment("/bin/sh -c 'echo # x' # c"), "/bin/sh -c 'echo # x'");
    assert.equal(stripInlineComment("x \\#y"), "x \\#y");
    const c = parseGeneratorConfig(
      "[system]  # the main section\nimagelayoutdir = /srv/l   # layouts\nenable = yes ; on\nenablelabel = \"my # label\"  # quoted\n" +
        "runtime = systemd        # systemd (RootDirectory=), runc, crun\n[layout a/b] # per layout\nenable = no # off\n",
      "c",
    );
    assert.equal(c.imageLayoutDir, "/srv/l");
    assert.equal(c.enable, true);
    assert.equal(c.enableLabel, "my # label");
    assert.equal(c.defaults.runtime, "systemd");
    assert.equal(layoutSettings(c, "a/b").enable, false);
  });

  test("the README's /etc/oci-generator.conf example parses as written", () => {
    const text = readmeIni("### Generator configuration");
    const c = parseGeneratorConfig(text, "README");
    const d = defaultGeneratorConfig();
    assert.equal(c.imageLayoutDir, d.imageLayoutDir);
    assert.equal(c.extractsDir, d.extractsDir);
    assert.equal(c.settingsDir, "/etc/ocigen");
    assert.equal(c.atomicTemplates, false);
    assert.equal(c.defaults.protectSystem, "no");
    assert.equal(layoutSettings(c, "myorg.com/myapp").enable, true);
  });

  test("the config install-generator writes parses to the built-in defaults", () => {
    const c = parseGeneratorConfig(defaultConfig(), "/etc/oci-generator.conf");
    const d = defaultGeneratorConfig();
    assert.deepEqual({ ...c, path: undefined }, { ...d, path: undefined });
  });

  test("malformed lines name file and line; control characters and continuations are refused", () => {
    assert.throws(() => parseIni("[Image]\nnot a key value\n"), /expected key = value/);
    assert.throws(() => parseGeneratorConfig("[system]\nimagelayoutdir = /a\\\n", "/x.conf"), /\/x\.conf:2: .*backslash/);
    assert.throws(() => parseGeneratorConfig("[system]\nenable = y\x1bes\n", "/x.conf"), (e) => code(e) === "ECONFIG" && /\/x\.conf:2: control character/.test(String(e)));
    assert.throws(() => parseGeneratorConfig("platform = linux\n", "/x.conf"), /\/x\.conf:1: platform must be os\/arch/);
    assert.equal(parseGeneratorConfig("platform = linux/arm64/v8\n", "c").defaults.platform, "linux/arm64/v8");
    assert.equal(parseGeneratorConfig("settingsdir = /srv/settings  # here\n", "c").settingsDir, "/srv/settings");
    assert.equal(parseGeneratorConfig("settingsdir =\n", "c").settingsDir, "");
  });

  test("CLI: a bad config is reported once, with the ocigen: prefix, and nothing is written", async () => {
    const tmp = mkTemp("ocigen-badconf-");
    try {
      const conf = join(tmp, "c.conf");
      fs.writeFileSync(conf, "[system]\nenable = perhaps   # hmm\n");
      const r = await captureStderr(() => main(["node", "ocigen", "generate", "--config", conf, join(tmp, "out")]));
      process.exitCode = undefined;
      assert.equal(r.value, 1);
      assert.equal(r.stderr, `ocigen: Bad config ${conf}:2: enable must be a boolean (yes/no), not "perhaps"\n`);
      assert.equal(fs.existsSync(join(tmp, "out")), false);
    } finally {
      rmTemp(tmp);
    }
  });

  test("CLI: generate with no layouts says so in one line and exits 0", async () => {
    const e = generatorEnv("ocigen-nolayouts-");
    try {
      const r = await captureStderr(() => main(["node", "ocigen", "generate", "--config", e.conf, join(e.tmp, "out")]));
      process.exitCode = undefined;
      assert.equal(r.value, 0);
      assert.equal(r.stderr, `ocigen: no layouts under ${e.layouts} (a layout is a directory holding an oci-layout file); no units\n`);
    } finally {
      rmTemp(e.tmp);
    }
  });
});

describe("per-image settings files", () => {
  test("every [Image] key and [Service] lines", () => {
    const s = parseImageSettings(
      [
        "# comment",
        "[Image]",
        "IncludeTag=v*",
        "ExcludeTag=*-rc*  # release candidates",
        "Volume=/srv/app/data:/data",
        "Volume=/etc/app.conf:/etc/app.conf:ro",
        "Volume=/cache",
        "Tmpfs=/scratch:size=64m,mode=1777",
        "Tmpfs=/run/app",
        `Environment=A=1 "B=two words" 'C=x # y'`,
        "User=app:staff",
        `Exec=/usr/bin/app --greeting "hello world" '$HOME'`,
        "ReadOnly=yes",
        "Enable=on",
        "Runtime=/opt/crun",
        "Platform=linux/arm64/v8",
        "",
        "[Service]",
        "Restart=on-failure",
        "MemoryMax=512M",
        "Environment=X=%n",
      ].join("\n"),
      "/etc/ocigen/app.image",
      "layout",
    );
    assert.deepEqual(s.includeTags, { reset: false, items: ["v*"] });
    assert.deepEqual(s.excludeTags, { reset: false, items: ["*-rc*"] });
    assert.deepEqual(s.volumes?.items, [
      { host: "/srv/app/data", path: "/data", readOnly: false },
      { host: "/etc/app.conf", path: "/etc/app.conf", readOnly: true },
      { path: "/cache", readOnly: false },
    ]);
    assert.deepEqual(s.tmpfs?.items, [{ path: "/scratch", options: "size=64m,mode=1777" }, { path: "/run/app" }]);
    assert.deepEqual(s.environment?.items, [["A", "1"], ["B", "two words"], ["C", "x # y"]]);
    assert.equal(s.user, "app:staff");
    assert.deepEqual(s.exec, ["/usr/bin/app", "--greeting", "hello world", "$HOME"]);
    assert.equal(s.readOnly, true);
    assert.equal(s.enable, true);
    assert.equal(s.runtime, "/opt/crun");
    assert.equal(s.platform, "linux/arm64/v8");
    assert.deepEqual(s.serviceLines?.items, ["Restart=on-failure", "MemoryMax=512M", "Environment=X=%n"]);
  });

  test("unknown keys and sections, bad values: ECONFIG naming file and line", () => {
    const bad = (text: string, re: RegExp, level: "layout" | "tag" = "layout") =>
      assert.throws(() => parseImageSettings(text, "/etc/ocigen/a.image", level), (e) => code(e) === "ECONFIG" && re.test((e as Error).message), text);
    bad("[Image]\nVolumes=/x\n", /^\/etc\/ocigen\/a\.image:2: unknown key Volumes=/);
    bad("[Image]\nvolume=/x\n", /:2: unknown key volume= \(did you mean Volume=\?\)/);
    bad("[Container]\nImage=x\n", /:1: unknown section \[Container\]/);
    bad("[Image foo]\n", /:1: unknown section \[Image foo\]/);
    bad("Volume=/x\n", /:1: Volume= before any section/);
    bad("[Image]\nVolume=data\n", /:2: the volume path must be an absolute path/);
    bad("[Image]\nVolume=/a:/b:rx\n", /:2: volume option must be ro or rw/);
    bad("[Image]\nVolume=/a/../b\n", /:2: .*normalized/);
    bad("[Image]\nVolume=/\n", /:2: a volume cannot be mounted at \//);
    bad("[Image]\nTmpfs=/t:size=1m;rm -rf\n", /:2: tmpfs options/);
    bad("[Image]\nEnvironment=1X=a\n", /:2: Environment= "1X=a" is not NAME=VALUE/);
    bad("[Image]\nEnvironment=A=\"unterminated\n", /:2: cannot split/);
    bad("[Image]\nUser=100000000000000000000\n", /:2: .*not an id in 0\.\.4294967294/);
    bad("[Image]\nUser=4294967295\n", /:2: .*not an id/);
    bad("[Image]\nUser=a b\n", /:2: User= /);
    bad("[Image]\nExec=relative/path x\n", /:2: Exec=: executable "relative\/path" is neither/);
    bad("[Image]\nReadOnly=maybe\n", /:2: ReadOnly= must be yes or no/);
    bad("[Image]\nRuntime=docker\n", /:2: runtime must be/);
    bad("[Image]\nPlatform=arm64\n", /:2: platform must be os\/arch/);
    bad("[Image]\nIncludeTag=v1 v2\n", /:2: IncludeTag= "v1 v2" is not a tag glob/);
    bad("[Image]\nExcludeTag=[abc\n", /:2: glob .* unterminated/);
    bad("[Image]\nIncludeTag=v*\n", /:2: IncludeTag= belongs in the layout's file/, "tag");
    // [Service]: a sane key, no way to make two lines out of one
    bad("[Service]\nexec start=/bin/x\n", /:2: bad key|:2: .*not a unit file key/);
    bad("[Service]\nrestart=always\n", /:2: "restart" is not a unit file key/);
    bad("[Service]\nExecStart=/bin/true\\\n", /:2: a trailing backslash/);
    bad("[Service]\nExecStart=/bin/true\rExecStartPre=/bin/evil\n", /:2: control character/);
    bad("[Service]\nDescription=a\x00b\n", /:2: control character/);
  });

  test("lists add up across levels, an empty assignment clears them; single values: the last wins", () => {
    const cfg = parseGeneratorConfig("[layout app]\nenable = yes\nruntime = /opt/runc\n", "c");
    const base = layoutSettings(cfg, "app");
    assert.deepEqual(base.excludeTags, [DATED_TAG_GLOB], "dated tags excluded by default");
    const layer = parseImageSettings("[Image]\nVolume=/a\nEnvironment=A=1\nRuntime=systemd\n[Service]\nRestart=always\n", "L", "layout");
    const l = applySettings(base, layer);
    assert.equal(l.runtime, "systemd", "the layout file beats [layout NAME]");
    assert.equal(l.enable, true, "kept from [layout NAME]");
    const t = applySettings(l, parseImageSettings("[Image]\nVolume=\nVolume=/b\nEnvironment=A=2\nEnable=no\nUser=1000:1000\n", "T", "tag"));
    assert.deepEqual(t.volumes, [{ path: "/b", readOnly: false }], "an empty Volume= clears the lower levels");
    assert.deepEqual(t.environment, [["A", "1"], ["A", "2"]], "later assignments come later (and win in the unit)");
    assert.deepEqual(t.serviceLines, ["Restart=always"]);
    assert.equal(t.enable, false, "the tag file beats the layout file");
    assert.equal(t.user, "1000:1000");
    assert.equal(applySettings(t, parseImageSettings("[Image]\nUser=\nExcludeTag=\n", "X", "layout")).user, undefined);
    assert.deepEqual(applySettings(t, parseImageSettings("[Image]\nExcludeTag=\n", "X", "layout")).excludeTags, []);
  });

  test("file naming: SETTINGSDIR/LAYOUT.image and SETTINGSDIR/LAYOUT:TAG.image; missing is no settings; a non-regular file is an error", () => {
    assert.equal(imageSettingsPath("/etc/ocigen", "myorg.com/myapp"), "/etc/ocigen/myorg.com/myapp.image");
    assert.equal(imageSettingsPath("/etc/ocigen", "myorg.com/myapp", "stable"), "/etc/ocigen/myorg.com/myapp:stable.image");
    const e = generatorEnv("ocigen-settings-files-");
    try {
      assert.equal(readImageSettings(join(e.settings, "none.image"), "layout"), null);
      fs.mkdirSync(join(e.settings, "myorg.com"), { recursive: true });
      fs.writeFileSync(join(e.settings, "myorg.com/myapp.image"), "[Image]\nEnable=yes\nVolume=/data\n");
      fs.writeFileSync(join(e.settings, "myorg.com/myapp:stable.image"), "[Image]\nReadOnly=yes\n");
      const l = settingsForLayout(e.cfg, "myorg.com/myapp");
      assert.equal(l.enable, true);
      assert.equal(l.readOnly, false);
      const t = settingsForTag(e.cfg, "myorg.com/myapp", "stable", l);
      assert.equal(t.readOnly, true);
      assert.deepEqual(t.volumes, [{ path: "/data", readOnly: false }]);
      assert.equal(settingsForTag(e.cfg, "myorg.com/myapp", "beta").readOnly, false);
      fs.mkdirSync(join(e.settings, "dir.image"));
      assert.throws(() => readImageSettings(join(e.settings, "dir.image"), "layout"), /dir\.image: settings file is not a regular file/);
      fs.writeFileSync(join(e.settings, "latin1.image"), new Uint8Array([0x5b, 0x49, 0x6d, 0x61, 0x67, 0x65, 0x5d, 0x0a, 0xff]));
      assert.throws(() => readImageSettings(join(e.settings, "latin1.image"), "layout"), /latin1\.image: settings file is not UTF-8/);
      assert.equal(settingsForLayout({ ...e.cfg, settingsDir: "" }, "myorg.com/myapp").enable, undefined, "settingsdir = (empty): no files");
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("the README's worked example does what the README says", async () => {
    const md = fs.readFileSync(README, "utf8");
    const at = md.indexOf("### Per-image settings");
    const blocks = [...md.slice(at).matchAll(/`(\/etc\/ocigen\/[^`]+\.image)`[^\n`]*:\n\n```ini\n([\s\S]*?)```/g)];
    assert.deepEqual(blocks.map((b) => b[1]), ["/etc/ocigen/myorg.com/myapp.image", "/etc/ocigen/myorg.com/myapp:v2.image"]);
    const e = generatorEnv("ocigen-readme-settings-");
    try {
      for (const [, path, text] of blocks) {
        const f = join(e.settings, path.slice("/etc/ocigen/".length));
        fs.mkdirSync(join(f, ".."), { recursive: true });
        fs.writeFileSync(f, text);
      }
      const tags = ["v1", "v2", "v2-rc1", "v2-2026-01-31_1"];
      makeLayout(join(e.layouts, "myorg.com/myapp"), tags.map((t) => ({ tags: [t], layers: [], config: { config: { Cmd: ["/bin/true"], Labels: { t } } } as never })));
      const r = await generate({ config: e.cfg, outDir: join(e.tmp, "out"), dryRun: true, print: () => {}, reporter: quiet });
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.units.map((u) => [u.tag, Boolean(u.wantsLink)]), [["v1", true], ["v2", false]]);
      const v2 = settingsForTag(e.cfg, "myorg.com/myapp", "v2");
      assert.deepEqual(v2.environment, [["LOG_LEVEL", "info"], ["GREETING", "hello world"], ["LOG_LEVEL", "debug"]]);
      assert.deepEqual(v2.exec, ["/usr/bin/myapp", "--port", "8080", "--greeting", "hello world"]);
      assert.deepEqual(v2.serviceLines, ["Restart=on-failure", "MemoryMax=512M"]);
      assert.equal(v2.readOnly, true);
      assert.equal(v2.user, "www-data");
      assert.equal(v2.volumes.length, 3);
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("checkUserSpec", () => {
    assert.equal(checkUserSpec("1000"), "1000");
    assert.equal(checkUserSpec("app:0"), "app:0");
    assert.throws(() => checkUserSpec("a:b:c"));
    assert.throws(() => checkUserSpec("1e20"));
  });
});

describe("tag selection", () => {
  test("globs", () => {
    assert.ok(globToRegExp("v1.*").test("v1.2"));
    assert.ok(!globToRegExp("v1.*").test("v1x2"), "a dot is a dot");
    assert.ok(globToRegExp("v?").test("v1"));
    assert.ok(!globToRegExp("v?").test("v10"));
    assert.ok(globToRegExp("[!a-c]*").test("d"));
    assert.ok(!globToRegExp("[!a-c]*").test("b"));
    assert.ok(globToRegExp("a\\*").test("a*"));
    assert.ok(!globToRegExp("a\\*").test("ab"));
    assert.ok(globToRegExp(DATED_TAG_GLOB).test("latest-2024-05-01_1"));
    assert.ok(globToRegExp(DATED_TAG_GLOB).test("v1.2-2026-12-06_12"));
    assert.ok(!globToRegExp(DATED_TAG_GLOB).test("latest"));
    assert.ok(!globToRegExp(DATED_TAG_GLOB).test("2024-05-01"));
  });
  test("include, then exclude; the default leaves out build's dated tags", () => {
    const tags = ["latest", "latest-2024-05-01_1", "v1", "v1-rc1", "v2"];
    const d = layoutSettings(defaultGeneratorConfig(), "x");
    assert.deepEqual(selectTags(tags, d).selected, ["latest", "v1", "v1-rc1", "v2"]);
    assert.deepEqual(selectTags(tags, d).skipped, [{ tag: "latest-2024-05-01_1", why: `excluded by ExcludeTag=${DATED_TAG_GLOB}` }]);
    assert.deepEqual(selectTags(tags, { includeTags: ["v*"], excludeTags: ["*-rc*"] }).selected, ["v1", "v2"]);
    assert.deepEqual(selectTags(tags, { includeTags: [], excludeTags: [] }).selected, tags);
    assert.deepEqual(selectTags(tags, { includeTags: ["nomatch"], excludeTags: [] }).selected, []);
  });
  test("generate: excluded tags get no unit; a bad layout file fails that layout only, a bad tag file that tag only", async () => {
    const e = generatorEnv("ocigen-settings-gen-");
    try {
      const cmd = { config: { Cmd: ["/bin/true"] } } as never;
      makeLayout(join(e.layouts, "app"), [{ tags: ["latest", "latest-2024-05-01_1", "beta", "v2"], layers: [], config: cmd }]);
      makeLayout(join(e.layouts, "other"), [{ tags: ["latest"], layers: [], config: cmd }]);
      makeLayout(join(e.layouts, "typo"), [{ tags: ["latest"], layers: [], config: cmd }]);
      fs.mkdirSync(e.settings);
      fs.writeFileSync(join(e.settings, "app.image"), "[Image]\nExcludeTag=beta\nEnable=yes\n");
      fs.writeFileSync(join(e.settings, "app:v2.image"), "[Image]\nEnable=no\nBogus=1\n");
      fs.writeFileSync(join(e.settings, "typo.image"), "[Image]\nReadonly=yes\n");
      const r = await generate({ config: e.cfg, outDir: join(e.tmp, "out"), dryRun: true, print: () => {}, reporter: quiet });
      assert.deepEqual(r.units.map((u) => u.unit), ["app.ref.latest.service", "other.ref.latest.service"]);
      assert.ok(r.units[0].wantsLink, "Enable=yes of the layout file");
      assert.equal(r.units[1].wantsLink, undefined);
      assert.deepEqual([...r.errors].sort(), [
        `layout app tag v2: ${join(e.settings, "app:v2.image")}:3: unknown key Bogus= in [Image] (known: IncludeTag, ExcludeTag, Volume, Tmpfs, Environment, User, Exec, ReadOnly, Enable, Runtime, Platform, AddCapability, DropCapability, NoNewPrivileges, SeccompProfile, SystemCallFilter, Network, NetworkOnline, Memory, CPUQuota, TasksMax, Restart, RestartSec, StartLimitBurst, StartLimitIntervalSec, TimeoutStopSec, Notify, AutoUpdate, HealthCmd, HealthTimeout)`,
        `layout typo: ${join(e.settings, "typo.image")}:2: unknown key Readonly= (did you mean ReadOnly=?) in [Image] (known: IncludeTag, ExcludeTag, Volume, Tmpfs, Environment, User, Exec, ReadOnly, Enable, Runtime, Platform, AddCapability, DropCapability, NoNewPrivileges, SeccompProfile, SystemCallFilter, Network, NetworkOnline, Memory, CPUQuota, TasksMax, Restart, RestartSec, StartLimitBurst, StartLimitIntervalSec, TimeoutStopSec, Notify, AutoUpdate, HealthCmd, HealthTimeout)`,
      ].sort());
    } finally {
      rmTemp(e.tmp);
    }
  });
});

describe("platform", () => {
  test("parse, normalise, match", () => {
    assert.deepEqual(parsePlatform("linux/arm64/v8"), { os: "linux", architecture: "arm64", variant: "v8" });
    assert.throws(() => parsePlatform("linux"), /os\/arch/);
    assert.throws(() => parsePlatform("linux/a b"), /os\/arch/);
    assert.deepEqual(normalizePlatform({ os: "linux", architecture: "aarch64" }), { os: "linux", architecture: "arm64" });
    assert.deepEqual(normalizePlatform({ os: "linux", architecture: "arm64", variant: "v8" }), { os: "linux", architecture: "arm64" });
    assert.deepEqual(normalizePlatform({ os: "linux", architecture: "armhf" }), { os: "linux", architecture: "arm" });
    assert.ok(platformMatches({ os: "linux", architecture: "arm64", variant: "v8" }, { os: "linux", architecture: "arm64" }));
    assert.ok(platformMatches({ os: "linux", architecture: "x86_64" }, { os: "linux", architecture: "amd64" }));
    assert.ok(!platformMatches({ os: "linux", architecture: "arm", variant: "v6" }, { os: "linux", architecture: "arm", variant: "v7" }));
    assert.ok(!platformMatches({ os: "linux", architecture: "arm64" }, { os: "linux", architecture: "amd64" }));
    assert.throws(
      () => checkImagePlatform({ os: "linux", architecture: "arm64" }, { os: "linux", architecture: "amd64" }, "layout x tag y"),
      (e) => code(e) === "EPLATFORM" && /^layout x tag y: the image is for linux\/arm64, not linux\/amd64 /.test((e as Error).message),
    );
  });

  test("generate: a multi-platform tag resolves to the host's (or the configured) platform; a foreign image is refused; no match is ambiguous", async () => {
    const e = generatorEnv("ocigen-platform-gen-");
    try {
      const host = hostPlatform();
      const cmd = (c: string) => ({ config: { Cmd: ["/bin/sh", "-c", c] } }) as never;
      makeLayout(join(e.layouts, "multi"), [
        { tags: ["latest"], layers: [], platform: { os: "linux", architecture: other }, config: cmd(`echo ${other}`) },
        { tags: ["latest"], layers: [], platform: host, config: cmd(`echo ${host.architecture}`) },
      ]);
      makeLayout(join(e.layouts, "foreign"), [{ tags: ["latest"], layers: [], platform: { os: "linux", architecture: other }, config: cmd("x") }]);
      makeLayout(join(e.layouts, "nomatch"), [
        { tags: ["latest"], layers: [], platform: { os: "linux", architecture: "s390x" }, config: cmd("a") },
        { tags: ["latest"], layers: [], platform: { os: "linux", architecture: "riscv64" }, config: cmd("b") },
      ]);
      const run = async (cfg = e.cfg) => {
        let out = "";
        const r = await generate({ config: cfg, outDir: join(e.tmp, "out"), dryRun: true, print: (s) => (out += s), reporter: quiet });
        return { r, out };
      };
      const a = await run();
      assert.deepEqual(a.r.units.map((u) => u.unit), ["multi.ref.latest.service"]);
      assert.match(a.out, new RegExp(`ExecStart=/bin/sh -c "echo ${host.architecture}"`));
      a.r.errors.sort();
      assert.equal(a.r.errors.length, 2);
      assert.match(a.r.errors[0], new RegExp(`^layout foreign tag latest: the image is for linux/${other}, not ${host.os}/${host.architecture}`));
      assert.match(a.r.errors[1], /^layout nomatch tag latest: .*tag is ambiguous \(2 manifests, none for .*\)/);
      // platform = other: the other manifest of "multi" and the foreign image are chosen
      const b = await run(parseGeneratorConfig(fs.readFileSync(e.conf, "utf8") + `platform = linux/${other}\n`, e.conf));
      assert.deepEqual(b.r.units.map((u) => u.unit), ["foreign.ref.latest.service", "multi.ref.latest.service"]);
      assert.match(b.out, new RegExp(`ExecStart=/bin/sh -c "echo ${other}"`));
      // Platform= in a per-image file, for one layout
      fs.mkdirSync(e.settings);
      fs.writeFileSync(join(e.settings, "foreign.image"), `[Image]\nPlatform=linux/${other}\n`);
      const c = await run();
      assert.deepEqual(c.r.units.map((u) => u.unit), ["foreign.ref.latest.service", "multi.ref.latest.service"]);
      assert.equal(c.r.errors.length, 1);
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("unpack and extract: --platform picks; an image for another platform is refused naming it and both platforms", async () => {
    const e = generatorEnv("ocigen-platform-cli-");
    try {
      const host = hostPlatform();
      makeMultiPlatformLayout(join(e.layouts, "multi"), "latest", [{ os: "linux", architecture: other }, host]);
      makeLayout(join(e.layouts, "foreign"), [{ tags: ["latest"], layers: [], platform: { os: "linux", architecture: other }, config: { config: { Cmd: ["/bin/true"] } } as never }]);
      const cli = async (...args: string[]) => {
        const r = await captureStderr(() => main(["node", "ocigen", ...args]));
        process.exitCode = undefined;
        return r;
      };
      const b1 = join(e.tmp, "b1");
      const u1 = await cli("unpack", "--image", `${join(e.layouts, "multi")}:latest`, b1);
      assert.equal(u1.value, 0, u1.stderr);
      assert.ok(fs.existsSync(join(b1, `rootfs/arch-${host.architecture}`)));
      const b2 = join(e.tmp, "b2");
      const u2 = await cli("unpack", "--platform", `linux/${other}`, "--image", `${join(e.layouts, "multi")}:latest`, b2);
      assert.equal(u2.value, 0, u2.stderr);
      assert.ok(fs.existsSync(join(b2, `rootfs/arch-${other}`)));
      const ref = `${join(e.layouts, "foreign")}:latest`;
      // without --platform a foreign image is unpacked with a warning, as umoci does (its
      // config.bats sets --os/--architecture and unpacks); with --platform it is refused
      const u3w = await cli("unpack", "--image", ref, join(e.tmp, "b3w"));
      assert.equal(u3w.value, 0, u3w.stderr);
      assert.match(u3w.stderr, new RegExp(`the image is for linux/${other}, not ${host.os}/${host.architecture}: unpacking it anyway`));
      assert.ok(fs.existsSync(join(e.tmp, "b3w", "config.json")));
      const u3 = await cli("unpack", "--platform", `${host.os}/${host.architecture}`, "--image", ref, join(e.tmp, "b3"));
      assert.equal(u3.value, 1);
      assert.match(u3.stderr, new RegExp(`^ocigen: ${ref.replaceAll("/", "\\/")}: the image is for linux/${other}, not ${host.os}/${host.architecture} .*\\n$`));
      assert.equal(fs.existsSync(join(e.tmp, "b3")), false, "nothing half-written");
      const u4 = await cli("unpack", "--platform", "linux", "--image", ref, join(e.tmp, "b4"));
      assert.equal(u4.value, 1);
      assert.match(u4.stderr, /--platform: platform must be os\/arch/);
      // extract (what the units run)
      await assert.rejects(extract({ config: e.cfg, name: "foreign", tag: "latest" }), (err) => code(err) === "EPLATFORM" && /foreign:latest: the image is for/.test(String(err)));
      const x = await extract({ config: e.cfg, name: "multi", tag: "latest", platform: { os: "linux", architecture: other } });
      assert.ok(fs.existsSync(join(x.store, `arch-${other}`)));
      const x2 = await cli("extract", "--config", e.conf, "--name", "multi", "--ref", "latest");
      assert.equal(x2.value, 0, x2.stderr);
      assert.ok(fs.existsSync(join(e.extracts, "multi.ref.latest/rootfs", `arch-${host.architecture}`)));
    } finally {
      rmTemp(e.tmp);
    }
  });
});

describe("generator limits", () => {
  test("ids: integers 0..4294967294, written in decimal", () => {
    assert.equal(checkId("0", "User"), 0);
    assert.equal(checkId(4294967294, "User"), 4294967294);
    assert.equal(unitIdText(4294967294), "4294967294");
    for (const bad of [4294967295, -1, 1.5, 1e20, NaN, Infinity, "1e20", "100000000000000000000", "", "0x10", " 1"]) {
      assert.throws(() => checkId(bad as number | string, "User"), (e) => code(e) === "EGENERATE" && /not an id in 0\.\.4294967294/.test(String(e)), String(bad));
    }
  });

  test("an image whose User is out of range gets a unit that cannot start as anyone else; never a float in the unit", async () => {
    // SPEC 4.4: such a user fails that service's start (the companion unit
    // says why), never a unit systemd rejects; the unit runs as nobody at most.
    const e = generatorEnv("ocigen-ids-");
    try {
      makeLayout(join(e.layouts, "huge"), [{ tags: ["latest"], layers: [], config: { config: { Cmd: ["/bin/true"], User: "100000000000000000000" } } as never }]);
      makeLayout(join(e.layouts, "max"), [{ tags: ["latest"], layers: [], config: { config: { Cmd: ["/bin/true"], User: "4294967295:0" } } as never }]);
      makeLayout(join(e.layouts, "ok"), [{ tags: ["latest"], layers: [], config: { config: { Cmd: ["/bin/true"], User: "4294967294:4294967294" } } as never }]);
      let out = "";
      const r = await generate({ config: e.cfg, outDir: join(e.tmp, "out"), dryRun: true, print: (s) => (out += s), reporter: quiet });
      assert.deepEqual(r.units.map((u) => u.unit), ["huge.ref.latest.service", "max.ref.latest.service", "ok.ref.latest.service"]);
      assert.match(out, /\nUser=4294967294\nGroup=4294967294\n/);
      assert.doesNotMatch(out, /e\+|1e20|User=4294967295/);
      assert.equal(r.errors.length, 0);
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("unit lines: at most LONG_LINE_MAX-1 bytes (what systemd 252 reads); a longer ExecStart fails that image", async (t) => {
    const line = (n: number) => "Description=" + "x".repeat(n - "Description=".length);
    assert.doesNotThrow(() => checkUnitLines(`[Unit]\n${line(LONG_LINE_MAX - 1)}\n`, "a.service"));
    assert.throws(() => checkUnitLines(`[Unit]\n${line(LONG_LINE_MAX)}\n`, "a.service"), /a\.service: line 2 \(Description=\) would be 1048576 bytes; systemd reads at most 1048575/);
    // multi-byte characters count in bytes
    assert.throws(() => checkUnitLines(`[Unit]\nDescription=${"é".repeat(LONG_LINE_MAX / 2)}\n`, "b.service"), /b\.service: line 2/);
    // the same bound as systemd itself
    if (!canParseWithSystemd()) {
      if (process.env.CI) assert.fail("systemd is not runnable here");
      t.diagnostic("systemd (--test) not runnable here: the cross-check with systemd's own parser is skipped");
    } else {
      const unit = (n: number) => `[Unit]\n${line(n)}\n[Service]\nExecStart=/bin/true\n`;
      const p = systemdParseMany({ "ok.service": unit(LONG_LINE_MAX - 1), "long.service": unit(LONG_LINE_MAX) }, ["ok.service", "long.service"]);
      assert.deepEqual(p.get("ok.service")!.props.get("Unit Load State"), ["loaded"]);
      assert.deepEqual(p.get("long.service")!.props.get("Unit Load State"), ["error"], "systemd refuses one byte more");
    }
    const e = generatorEnv("ocigen-longline-");
    try {
      makeLayout(join(e.layouts, "long"), [{ tags: ["latest"], layers: [], config: { config: { Cmd: ["/bin/echo", "y".repeat(3 << 20)] } } as never }]);
      makeLayout(join(e.layouts, "short"), [{ tags: ["latest"], layers: [], config: { config: { Cmd: ["/bin/echo", "y"] } } as never }]);
      const t0 = Date.now();
      const r = await generate({ config: e.cfg, outDir: join(e.tmp, "out"), reporter: quiet });
      assert.ok(Date.now() - t0 < 20000);
      assert.deepEqual(r.units.map((u) => u.unit), ["short.ref.latest.service"]);
      assert.equal(r.errors.length, 1);
      assert.match(r.errors[0], /^layout long tag latest: long\.ref\.latest\.service: line \d+ \(ExecStart=\) would be 3145\d+ bytes; systemd reads at most 1048575$/);
      assert.deepEqual(fs.readdirSync(join(e.tmp, "out")).sort(), ["ocigen-extract@short.ref.latest.service", "short.ref.latest.service"]);
    } finally {
      rmTemp(e.tmp);
    }
  });

  test("discovery never leaves imagelayoutdir through a symlink; links inside it are followed once", async () => {
    const tmp = mkTemp("ocigen-disc-links-");
    try {
      const root = join(tmp, "layouts");
      const outside = join(tmp, "outside");
      makeLayout(join(outside, "evil"), [{ tags: ["latest"], layers: [], config: { config: { Cmd: ["/bin/true"] } } as never }]);
      makeLayout(join(root, "real/app"), [{ tags: ["latest"], layers: [], config: { config: { Cmd: ["/bin/true"] } } as never }]);
      fs.symlinkSync(outside, join(root, "escape"));
      fs.symlinkSync(join(outside, "evil"), join(root, "evil"));
      fs.symlinkSync("real", join(root, "alias"));
      fs.symlinkSync("../..", join(root, "real/up"));
      const d = await discoverLayouts(root);
      assert.deepEqual(d.layouts.map((l) => l.name), ["alias/app"]);
      assert.deepEqual(d.layouts.map((l) => l.real), [fs.realpathSync(join(root, "real/app"))], "the real path, through the link");
      assert.deepEqual(d.errors.sort(), [
        `${join(root, "escape")}: a symbolic link to ${outside}, outside imagelayoutdir ${root}; skipped`,
        `${join(root, "evil")}: a symbolic link to ${join(outside, "evil")}, outside imagelayoutdir ${root}; skipped`,
        `${join(root, "alias/up")}: a symbolic link to ${tmp}, outside imagelayoutdir ${root}; skipped`,
      ].sort());
      // imagelayoutdir itself may be a link
      fs.symlinkSync(root, join(tmp, "via-link"));
      const v = await discoverLayouts(join(tmp, "via-link"));
      assert.deepEqual(v.layouts.map((l) => l.name), ["alias/app"]);
      assert.deepEqual(v.layouts.map((l) => l.real), [fs.realpathSync(join(root, "real/app"))]);
      assert.equal(v.errors.length, 3);
      // extract --name follows the same rule
      const e = generatorEnv("ocigen-disc-extract-");
      try {
        makeLayout(join(outside, "evil2"), [{ tags: ["latest"], layers: [], config: { config: { Cmd: ["/bin/true"] } } as never }]);
        fs.symlinkSync(join(outside, "evil2"), join(e.layouts, "evil2"));
        await assert.rejects(
          extract({ config: e.cfg, name: "evil2", tag: "latest" }),
          (err) => code(err) === "EESCAPE" && String(err).includes(`a symbolic link to ${join(outside, "evil2")}, outside imagelayoutdir`),
        );
        assert.equal(fs.existsSync(e.extracts) && fs.readdirSync(e.extracts).length > 0, false, "nothing extracted");
      } finally {
        rmTemp(e.tmp);
      }
      // the layouts of a resolved tag are still readable through the link that named them
      assert.equal((await (await Layout.open(d.layouts[0].dir)).listTags()).length, 1);
    } finally {
      rmTemp(tmp);
    }
  });
});
