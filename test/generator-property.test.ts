// Property tests of the generator's unit writer: for any image config JSON (hostile strings,
// odd numbers, wrong types, huge arrays; fixtures/random-configs.ts), each image yields either
// a unit that systemd accepts or one clear per-image error, and the other images are still
// generated. "systemd accepts": our strict checker (fixtures/unit-check.ts), systemd's own
// parser (`systemd --test`: every unit loaded, ExecStart's argv exactly the image's), and
// `systemd-analyze verify` on the units whose executable exists on this host.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join, posix } from "node:path";
import process from "node:process";
import fc from "fast-check";
import { makeLayout, rmTemp } from "../fixtures/layout.ts";
import { canParseWithSystemd, envSubstituted, generatorEnv, have, systemdParseMany, verifyUnits } from "../fixtures/generator.ts";
import { expandConfig, hostileString, imageConfigArbitrary, randomImageConfigs, writeRandomLayouts } from "../fixtures/random-configs.ts";
import { parseImageSettings } from "../src/generator/settings.ts";
import { checkUnitText, knownDirectives } from "../fixtures/unit-check.ts";
import { generate } from "../src/generator/generate.ts";
import { execLine } from "../src/generator/syntax.ts";
import { OcigenError } from "../src/errors.ts";
import type { ImageConfig } from "../src/oci/types.ts";

const quiet = { error() {}, warn() {}, info() {} };

/** fc.assert with a failure message cut to a readable size. */
async function assertProperty<T>(p: fc.IAsyncProperty<T>, params: fc.Parameters<T>): Promise<void> {
  try {
    await fc.assert(p, params);
  } catch (e) {
    const cause = (e as Error).cause;
    const m = `${(e as Error).message}\nCause: ${cause instanceof Error ? cause.message : String(cause)}`;
    throw new Error(m.length > 6000 ? `${m.slice(0, 3000)}\n...[${m.length} chars]...\n${m.slice(-3000)}` : m);
  }
}
const SEED = Number(process.env.OCIGEN_PROPERTY_SEED ?? 20261206);

/** The argv the image asks for when it is a list of strings (else undefined). */
function imageArgv(c: Partial<ImageConfig>): string[] | undefined {
  const rc = (c.config ?? {}) as Record<string, unknown>;
  const ep = rc.Entrypoint ?? [];
  const cmd = rc.Cmd ?? [];
  if (!Array.isArray(ep) || !Array.isArray(cmd)) return undefined;
  const argv = [...ep, ...cmd];
  if (argv.some((a) => typeof a !== "string")) return undefined;
  return argv as string[];
}

describe("generator unit writer: property tests", () => {
  test("strict checker: rejects what systemd would misread", () => {
    assert.deepEqual(checkUnitText("[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n"), []);
    const bad = [
      "[Unit]\nDescription=x\\\n[Service]\nExecStart=/bin/true\n",
      "[Unit]\nDescription=100%n\n[Service]\nExecStart=/bin/true\n",
      "[Unit]\n[Service]\nExecStart=/bin/echo $HOME\n",
      "[Unit]\n[Service]\nExecStart=/bin/echo \"a\n",
      "[Unit]\n[Service]\nExecStart=/bin/true\nExecStart=/bin/false\n",
      "[Unit]\n[Service]\nExecStart=/bin/true\nNoSuchKey=1\n",
      "[Unit]\n[Service]\nExecStart=/bin/true\x01\n",
      "[Unit]\n[Service]\nExecStart=/bin/true",
      `[Unit]\nDescription=${"x".repeat(1 << 20)}\n[Service]\nExecStart=/bin/true\n`,
    ];
    for (const b of bad) assert.notDeepEqual(checkUnitText(b), [], JSON.stringify(b.slice(0, 60)));
  });

  test("executables systemd refuses (found by the property test) are refused with EGENERATE", (t) => {
    const refused = ["\\l4", "a\"b", "a'b", "/bin/a\\b", ";", "x".repeat(256), "/" + "d/".repeat(2100) + "x", "/bin/" + "n".repeat(256)];
    for (const exe of refused) {
      assert.throws(() => execLine([exe, "arg"]), (e) => e instanceof OcigenError && e.code === "EGENERATE", JSON.stringify(exe.slice(0, 40)));
    }
    const accepted = ["a#b", "a{b", "é", "a;b", "a*b", "x".repeat(255), "/bin/" + "n".repeat(255)];
    for (const exe of accepted) assert.doesNotThrow(() => execLine([exe]), exe.slice(0, 40));
    if (!canParseWithSystemd()) {
      if (process.env.CI) assert.fail("systemd --test must be runnable in CI");
      t.diagnostic("systemd --test not runnable here: the cross-check with systemd is skipped");
      return;
    }
    // systemd agrees: the same words, written by hand, make a unit it refuses; the accepted ones load
    const quoted = (w: string) => '"' + w.replaceAll("\\", "\\\\").replaceAll('"', '\\"') + '"';
    const files: Record<string, string> = {};
    [...refused, ...accepted].forEach((exe, i) => (files[`u${i}.service`] = `[Unit]\nDescription=x\n[Service]\nExecStart=${quoted(exe)}\n`));
    const p = systemdParseMany(files, Object.keys(files));
    [...refused, ...accepted].forEach((exe, i) => {
      assert.deepEqual(p.get(`u${i}.service`)!.props.get("Unit Load State"), [i < refused.length ? "bad-setting" : "loaded"], JSON.stringify(exe.slice(0, 40)));
    });
  });

  test("any image config: a unit systemd accepts, or one clear error naming the image; the rest are generated", async (t) => {
    const systemd = canParseWithSystemd();
    const verify = have("systemd-analyze");
    if (!systemd || !verify || !knownDirectives()) {
      if (process.env.CI) assert.fail("systemd (--test, systemd-analyze, --dump-configuration-items) must be runnable in CI");
      t.diagnostic("systemd is not runnable here: only the strict checker runs (systemd --test and verify skipped)");
    }
    let units = 0;
    let refused = 0;
    let verified = 0;
    await assertProperty(
      fc.asyncProperty(fc.array(imageConfigArbitrary(), { minLength: 8, maxLength: 20 }), async (generated) => {
        const configs = generated.map(expandConfig);
        const e = generatorEnv("ocigen-prop-");
        try {
          configs.forEach((c, i) => makeLayout(join(e.layouts, `c${i}`), [{ tags: ["t"], layers: [], config: c }]));
          const r = await generate({ config: e.cfg, outDir: join(e.tmp, "out"), dryRun: true, print: () => {}, reporter: quiet });
          for (const err of r.errors) {
            assert.doesNotMatch(err, /[\n\r]/, "an error is one line");
            assert.match(err, /^layout c\d+(:| tag t: )/, "an error names the layout (and tag)");
          }
          configs.forEach((_, i) => {
            const u = r.units.filter((x) => x.name === `c${i}`);
            const errs = r.errors.filter((x) => x.startsWith(`layout c${i}:`) || x.startsWith(`layout c${i} `));
            assert.equal(u.length + (errs.length > 0 ? 1 : 0), 1, `c${i}: a unit or an error, not both nor neither: ${JSON.stringify(errs)}`);
          });
          units += r.units.length;
          refused += configs.length - r.units.length;
          for (const u of r.units) {
            assert.deepEqual(checkUnitText(u.text), [], `${u.unit}`);
            assert.deepEqual(checkUnitText(u.extractUnit.text), [], `${u.extractUnit.unit}`);
          }
          if (!systemd || r.units.length === 0) return;
          const files = Object.fromEntries(r.units.flatMap((u) => [[u.unit, u.text], [u.extractUnit.unit, u.extractUnit.text]]));
          const parsed = systemdParseMany(files, Object.keys(files));
          for (const u of r.units) {
            const p = parsed.get(u.unit)!;
            assert.deepEqual(p.props.get("Unit Load State"), ["loaded"], `${u.unit}: systemd: ${p.props.get("Load Error Code")}\n` +
              u.text.split("\n").map((l) => JSON.stringify(l.slice(0, 200))).join("\n"));
            assert.deepEqual(parsed.get(u.extractUnit.unit)!.props.get("Unit Load State"), ["loaded"]);
            const want = imageArgv(configs[Number(u.name.slice(1))]);
            const got = p.exec.get("ExecStart");
            assert.equal(got?.length, 1, `${u.unit}: one ExecStart`);
            if (want && want[0].startsWith("/")) {
              assert.deepEqual(got![0].map(envSubstituted), [posix.normalize(want[0]), ...want.slice(1)], `${u.unit}: systemd's argv is the image's`);
            }
          }
          // systemd-analyze verify where the executable is visible to it (on this host): RootDirectory= -> /
          if (!verify) return;
          const sample = r.units.filter((u) => /\nExecStart=\/(bin|usr\/bin)\/\w+( |\n)/.test(u.text) && /\nRootDirectory=/.test(u.text)).slice(0, 4);
          const links: string[] = [];
          try {
            for (const u of sample) {
              const root = /\nRootDirectory=(.*)\n/.exec(u.text)![1];
              fs.mkdirSync(join(root, ".."), { recursive: true });
              fs.symlinkSync("/", root);
              links.push(root);
            }
            if (sample.length === 0) return;
            const v = verifyUnits(Object.fromEntries(sample.flatMap((u) => [[u.unit, u.text], [u.extractUnit.unit, u.extractUnit.text]])), {});
            assert.equal(v.status, 0, v.output);
            verified += sample.length;
          } finally {
            for (const l of links) fs.unlinkSync(l);
          }
        } finally {
          rmTemp(e.tmp);
        }
      }),
      { seed: SEED, numRuns: Number(process.env.OCIGEN_PROPERTY_RUNS ?? 12), endOnFailure: true },
    );
    t.diagnostic(`seed ${SEED}: ${units} units accepted, ${refused} images refused with an error, ${verified} passed systemd-analyze verify`);
    assert.ok(units > 20, "the property saw units");
    assert.ok(refused > 5, "the property saw refusals");
  });

  test("any settings file text: a parsed layer with single-line values, or one ECONFIG error naming file and line", () => {
    const key = fc.constantFrom("IncludeTag", "ExcludeTag", "Volume", "Tmpfs", "Environment", "User", "Exec", "ReadOnly", "Enable", "Runtime", "Platform", "Restart", "volume", "X-Y", "");
    const line = fc.oneof(
      fc.tuple(key, fc.constantFrom("=", " = ", "=="), hostileString(30)).map(([k, e, v]) => k + e + v),
      fc.constantFrom("[Image]", "[Service]", "[Unit]", "[Image x]", "# c", "; c", "", "[", "Volume=/data # c", "ExecStart=/bin/x\\"),
      hostileString(20),
    );
    fc.assert(fc.property(fc.array(line, { maxLength: 12 }), (lines) => {
      const text = lines.join(fc.sample(fc.constantFrom("\n", "\r\n"), 1)[0]);
      let layer;
      try {
        layer = parseImageSettings(text, "/etc/ocigen/x.image", "layout");
      } catch (e) {
        assert.ok(e instanceof OcigenError && e.code === "ECONFIG", String(e));
        assert.match(e.message, /^\/etc\/ocigen\/x\.image:\d+: [^\n\r]+$/);
        return;
      }
      for (const l of layer.serviceLines?.items ?? []) {
        assert.match(l, /^[A-Z][A-Za-z0-9]*=[^\x00-\x08\x0a-\x1f\x7f]*$/);
        assert.ok(!l.endsWith("\\"));
      }
      for (const v of layer.volumes?.items ?? []) assert.match(v.path, /^\/[^\x00-\x1f\x7f:]*$/);
      for (const [k] of layer.environment?.items ?? []) assert.match(k, /^[A-Za-z_][A-Za-z0-9_]*$/);
      if (layer.exec) assert.doesNotThrow(() => execLine(layer.exec!));
    }), { seed: SEED, numRuns: 500 });
  });

  test("the seeded fixture for the boot suite is deterministic and mixes units and refusals", async () => {
    const a = randomImageConfigs(7, 30);
    assert.deepEqual(randomImageConfigs(7, 30), a, "same seed, same configs");
    assert.notDeepEqual(randomImageConfigs(8, 30), a);
    assert.deepEqual(a.map((x) => x.name), Array.from({ length: 30 }, (_, i) => `random.ocigen.test/c${i}`));
    const e = generatorEnv("ocigen-prop-fixture-");
    try {
      writeRandomLayouts(e.layouts, 7, 30);
      const r = await generate({ config: e.cfg, outDir: join(e.tmp, "out"), reporter: quiet });
      assert.ok(r.units.length >= 10, `units: ${r.units.length}`);
      assert.equal(r.units.length + new Set(r.errors.map((x) => /^layout (\S+)/.exec(x)![1])).size, 30);
      for (const u of r.units) assert.deepEqual(checkUnitText(fs.readFileSync(u.path, "utf8")), [], u.unit);
    } finally {
      rmTemp(e.tmp);
    }
  });
});
