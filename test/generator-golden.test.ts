// Golden tests of the systemd generator: each test/golden/generator/<case>/input.json
// describes layouts (and optionally already-extracted rootfs files and config lines);
// expected.txt is the exact `generate --dry-run` output with the temp root as @ROOT@.
// Every generated unit must also pass `systemd-analyze verify`, and where systemd is
// runnable (`systemd --test`), systemd must parse each command line back to exactly
// the image's argv. UPDATE_GOLDEN=1 rewrites expected.txt.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { makeLayout, mkTemp, rmTemp, tarFiles, toLegacyRefs, breakLayout, treeHash, type FixtureLayout, type Breakage } from "../fixtures/layout.ts";
import { canParseWithSystemd, envSubstituted, have, systemdParseMany, verifyUnits } from "../fixtures/generator.ts";
import { generate, type GenerateResult } from "../src/generator/generate.ts";
import { loadGeneratorConfig } from "../src/generator/config.ts";
import { storeRootfs } from "../src/store/paths.ts";
import { Layout } from "../src/oci/layout.ts";
import type { ImageRuntimeConfig } from "../src/oci/types.ts";
import type { Reporter } from "../src/generator/report.ts";
import { VERSION } from "../src/version.ts";

const GOLDEN = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "golden", "generator");
const OCIGEN = "/usr/local/bin/ocigen";
/** verify checks every Exec path on the host: map the golden paths to executables that exist. */
const VERIFY_MAP = { [OCIGEN]: "/bin/true", "/usr/bin/runc": "/bin/true" };

interface CaseImage {
  tags?: string[];
  config?: ImageRuntimeConfig;
  files?: { name: string; data: string }[];
}
interface CaseInput {
  description: string;
  config?: string;
  sectionless?: boolean;
  layouts: Record<string, { images: CaseImage[]; legacyRefs?: boolean; break?: Breakage; raw?: Record<string, string> }>;
  extracted?: { layout: string; tag: string; files: { name: string; data: string }[] }[];
  /** Per-image settings files, by path relative to the settings directory (`@ROOT@/settings`). */
  settings?: Record<string, string>;
  exit?: number;
  errors?: string[];
  parse?: boolean;
}

export interface CaseRun {
  root: string;
  result: GenerateResult;
  output: string;
  messages: string[];
}

/** Builds the case's files under a fresh temp root and runs the generator (dry-run). */
export async function runCase(input: CaseInput, dryRun = true): Promise<CaseRun> {
  const root = mkTemp("ocigen-golden-");
  const layouts = join(root, "layouts");
  fs.mkdirSync(layouts, { recursive: true });
  const fx: Record<string, FixtureLayout> = {};
  for (const [name, l] of Object.entries(input.layouts)) {
    const dir = join(layouts, name);
    fs.mkdirSync(join(dir, ".."), { recursive: true });
    if (l.raw) {
      fs.mkdirSync(dir, { recursive: true });
      for (const [f, t] of Object.entries(l.raw)) {
        fs.mkdirSync(join(dir, f, ".."), { recursive: true });
        fs.writeFileSync(join(dir, f), t);
      }
      continue;
    }
    fx[name] = makeLayout(dir, l.images.map((im) => ({
      tags: im.tags,
      layers: [tarFiles(im.files ?? [{ name: "etc/hostname", data: "box\n" }])],
      config: { created: "2024-01-01T00:00:00Z", config: im.config ?? {} },
    })));
    if (l.legacyRefs) toLegacyRefs(dir);
    if (l.break) breakLayout(fx[name], l.break);
  }
  for (const ex of input.extracted ?? []) {
    const img = await (await Layout.open(join(layouts, ex.layout))).resolve(ex.tag);
    const rootfs = storeRootfs(join(root, "extracts"), img.manifestDescriptor.digest);
    for (const f of ex.files) {
      fs.mkdirSync(join(rootfs, f.name, ".."), { recursive: true });
      fs.writeFileSync(join(rootfs, f.name), f.data);
    }
  }
  const settingsDir = join(root, "settings");
  for (const [f, t] of Object.entries(input.settings ?? {})) {
    fs.mkdirSync(join(settingsDir, f, ".."), { recursive: true });
    fs.writeFileSync(join(settingsDir, f), t);
  }
  const conf = join(root, "oci-generator.conf");
  const head = input.sectionless ? "" : "[system]\n";
  fs.writeFileSync(
    conf,
    `${head}imagelayoutdir = ${layouts}\nextractsdir = ${join(root, "extracts")}\nsettingsdir = ${settingsDir}\n` +
      `rundir = ${join(root, "run")}\nvolumesdir = ${join(root, "volumes")}\nocigen = ${OCIGEN}\n${input.config ?? ""}`,
  );
  const messages: string[] = [];
  const reporter: Reporter = { error: (m) => messages.push(m), warn: (m) => messages.push(m), info: () => {} };
  let output = "";
  const result = await generate({
    config: loadGeneratorConfig(conf),
    outDir: join(root, "out"),
    dryRun,
    print: (s) => (output += s),
    reporter,
  });
  return { root, result, output, messages };
}

const cases = fs.existsSync(GOLDEN) ? fs.readdirSync(GOLDEN).filter((c) => fs.existsSync(join(GOLDEN, c, "input.json"))).sort() : [];

describe("generator golden cases", () => {
  for (const c of cases) {
    test(c, async (t) => {
      const input = JSON.parse(fs.readFileSync(join(GOLDEN, c, "input.json"), "utf8")) as CaseInput;
      const run = await runCase(input);
      try {
        // Paths under the temp root and the version in the header comment are placeholders.
        const got = run.output.replaceAll(run.root, "@ROOT@").replaceAll(`(ocigen ${VERSION})`, "(ocigen @VERSION@)");
        const expPath = join(GOLDEN, c, "expected.txt");
        if (process.env.UPDATE_GOLDEN === "1") fs.writeFileSync(expPath, got);
        assert.equal(got, fs.readFileSync(expPath, "utf8"), `dry-run output of ${c} differs from ${expPath}`);
        assert.equal(run.result.errors.length > 0 ? 1 : 0, input.exit ?? 0, `exit status of ${c}: ${run.result.errors.join("; ")}`);
        if (input.errors) assert.equal(run.result.errors.length, input.errors.length, `errors of ${c}: ${run.result.errors.join("; ")}`);
        for (const e of input.errors ?? []) {
          assert.ok(run.messages.some((m) => m.includes(e.replaceAll("@ROOT@", run.root))), `no message containing ${JSON.stringify(e)} in ${JSON.stringify(run.messages)}`);
        }
        assert.equal(run.messages.filter((m) => run.result.errors.includes(m)).length, run.result.errors.length);

        // Writing (not dry-run) produces exactly the same files, and writes nothing else anywhere.
        const inputs = ["layouts", "extracts"].filter((d) => fs.existsSync(join(run.root, d)));
        const before = inputs.map((d) => treeHash(join(run.root, d)));
        const real = await runCaseInto(input, run.root);
        assert.deepEqual(inputs.map((d) => treeHash(join(run.root, d))), before, "layouts and extracts untouched");
        for (const u of real.units) {
          assert.equal(fs.readFileSync(u.path, "utf8"), u.text);
          assert.equal(fs.readFileSync(u.extractUnit.path, "utf8"), u.extractUnit.text);
        }
        for (const u of run.result.units) {
          if (u.wantsLink) assert.equal(fs.readlinkSync(u.wantsLink), `../${u.unit}`);
        }
        assert.deepEqual(fs.existsSync(join(run.root, "out")) ? fs.readdirSync(join(run.root, "out")).filter((n) => n.startsWith(".")) : [], [], "no temporary files left");

        // systemd-analyze verify accepts every unit.
        const files = Object.fromEntries(run.result.units.flatMap((u) => [[u.unit, u.text], [u.extractUnit.unit, u.extractUnit.text]]));
        if (Object.keys(files).length > 0) {
          if (!have("systemd-analyze")) {
            if (process.env.CI) assert.fail("systemd-analyze not installed");
            t.diagnostic("systemd-analyze not installed: verify skipped");
          } else {
            // Whether verify looks for ExecStart= on the host or inside RootDirectory= depends on the
            // systemd version: make each RootDirectory= a link to / so both find the same file.
            const links: string[] = [];
            for (const u of run.result.units) {
              const m = /\nRootDirectory=(.*)\n/.exec(u.text);
              if (m && !fs.existsSync(m[1])) {
                fs.mkdirSync(join(m[1], ".."), { recursive: true });
                fs.symlinkSync("/", m[1]);
                links.push(m[1]);
              }
            }
            let v: { status: number; output: string };
            try {
              v = verifyUnits(files, VERIFY_MAP);
            } finally {
              for (const l of links) fs.unlinkSync(l); // never leave a link to / for the recursive clean-up
            }
            assert.equal(v.status, 0, `systemd-analyze verify failed for ${c}:\n${v.output}`);
            assert.equal(v.output.trim(), "", `systemd-analyze verify warned for ${c}:\n${v.output}`);
          }
        }

        // systemd parses each ExecStart back to the image's exact argv.
        if (input.parse) {
          if (!canParseWithSystemd()) {
            if (process.env.CI) assert.fail("systemd --test not runnable");
            t.diagnostic("systemd --test not runnable: parse check skipped");
          } else {
            for (const u of run.result.units) {
              if (u.atomic) continue;
              const img = input.layouts[u.name].images.find((i) => i.tags?.includes(u.tag))!;
              const want = [...(img.config?.Entrypoint ?? []), ...(img.config?.Cmd ?? [])];
              const parsed = systemdParseMany({ [u.unit]: u.text, [u.extractUnit.unit]: u.extractUnit.text }, [u.unit, u.extractUnit.unit]);
              const p = parsed.get(u.unit)!;
              const execs = p.exec.get("ExecStart");
              assert.equal(execs?.length, 1, `${u.unit}: one ExecStart`);
              assert.deepEqual(execs![0].map(envSubstituted), want, `${u.unit}: systemd's argv`);
              assert.equal(p.exec.get("ExecStartPre"), undefined, `${u.unit}: no ExecStartPre (it would get the image's environment)`);
              assert.deepEqual(p.props.get("BindsTo")?.filter((r) => r.startsWith("ocigen-extract@")).map((r) => r.replace(/ \(.*\)$/, "")), [u.extractUnit.unit]);
              const x = parsed.get(u.extractUnit.unit)!;
              assert.equal(x.exec.get("ExecStart")?.length, 1);
              assert.deepEqual(x.exec.get("ExecStart")![0].slice(1, 6), ["extract", "--config", join(run.root, "oci-generator.conf"), "--name", u.name]);
              assert.equal(x.props.get("Environment"), undefined, `${u.extractUnit.unit}: no image environment`);
              const envs = (img.config?.Env ?? []).filter((e) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(e));
              // The dump prints values raw: a value with a newline shows up to the newline.
              assert.deepEqual(p.props.get("Environment") ?? [], envs.map((e) => e.split("\n")[0]), `${u.unit}: Environment`);
              assert.equal(p.props.get("Description")?.[0], `OCI image ${u.name}:${u.tag}`);
            }
          }
        }
      } finally {
        rmTemp(run.root);
      }
    });
  }
});

async function runCaseInto(input: CaseInput, root: string): Promise<GenerateResult> {
  const conf = join(root, "oci-generator.conf");
  return await generate({ config: loadGeneratorConfig(conf), outDir: join(root, "out"), reporter: { error() {}, warn() {}, info() {} } });
}
