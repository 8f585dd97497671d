/**
 * The systemd generator (SPEC 4): layouts on disk -> service units, in three
 * steps: read the layouts (./inputs.ts: small verified JSON, settings, pins;
 * never a layer), plan the units (./plan.ts: pure, the unit files and their
 * contents), write them (./write.ts: each renamed into place) or print them
 * (`--dry-run`). A broken layout or tag is reported and skipped; the others
 * are still generated. Two layouts/tags mapping to one unit name are both
 * reported and neither is written.
 *
 * @module
 */
import * as fs from "node:fs";
import { basename } from "node:path";
import process from "node:process";
import type { GeneratorConfig } from "./config.ts";
import { createReporter, type Reporter } from "./report.ts";
import { log } from "../log.ts";
import { selfCommand } from "../install/self.ts";
import { readInputs } from "./inputs.ts";
import { type GeneratedUnit, planUnits } from "./plan.ts";
import { formatUnits, writeUnits } from "./write.ts";

export type { GeneratedUnit } from "./plan.ts";

/** Options of {@linkcode generate}. */
export interface GenerateOptions {
  config: GeneratorConfig;
  /** The generator's normal output directory. */
  outDir: string;
  /** Print `---PATH---` and each file instead of writing. */
  dryRun?: boolean;
  /** Where dry-run output goes (default stdout). */
  print?: (s: string) => void;
  /** argv prefix running ocigen in the extract units (default: config `ocigen`, else this program as {@linkcode ocigenCommand} finds it without `OCIGEN_SELF`). */
  ocigen?: readonly string[];
  /** Where problems are reported (default stderr / kmsg, see report.ts). */
  reporter?: Reporter;
  /** Parallel layouts (default 16). */
  concurrency?: number;
}

/** The outcome of a run. */
export interface GenerateResult {
  units: GeneratedUnit[];
  /** One line per problem (each names the layout, tag or unit at fault). */
  errors: string[];
}

/**
 * The argv prefix that runs this ocigen in the extract units: the config's
 * `ocigen =`, else {@linkcode selfCommand} (`env.OCIGEN_SELF` — the `self`
 * setting, which src/cli passes — the single binary, or runtime + script)
 * with every path made absolute and real — so a run through the
 * `ocigen-generator` link never writes that link (which would run
 * `generate`) into units. The environment is not read here: pass it.
 *
 * @example
 * ```ts
 * ocigenCommand(defaultGeneratorConfig(), { OCIGEN_SELF: "/usr/local/bin/ocigen" }); // ["/usr/local/bin/ocigen"]
 * ```
 */
export function ocigenCommand(cfg: GeneratorConfig, env: Record<string, string | undefined> = {}): string[] {
  if (cfg.ocigen) return [cfg.ocigen];
  return selfCommand(env.OCIGEN_SELF).map((a) => {
    if (!a.startsWith("/") || !/^ocigen-generator/.test(basename(a))) return a;
    try {
      return fs.realpathSync(a);
    } catch {
      return a;
    }
  });
}

/**
 * Generates the units of every layout below `config.imageLayoutDir` into
 * `outDir` (or prints them with `dryRun`). Never throws for a broken layout:
 * problems are reported and returned in `errors`.
 *
 * @example
 * ```ts
 * const r = await generate({ config: loadGeneratorConfig(), outDir: "/run/systemd/generator" });
 * process.exitCode = r.errors.length ? 1 : 0;
 * ```
 */
export async function generate(opts: GenerateOptions): Promise<GenerateResult> {
  const cfg = opts.config;
  const rep = opts.reporter ?? createReporter(false);
  const errors: string[] = [];
  const fail = (msg: string) => {
    errors.push(msg);
    rep.error(msg);
  };
  const inputs = await readInputs(cfg, { concurrency: opts.concurrency, warn: (m) => rep.warn(m) });
  for (const e of inputs.discoveryErrors) fail(e);
  if (inputs.layouts.length === 0 && inputs.discoveryErrors.length === 0) {
    (rep.notice ?? rep.info)(`no layouts under ${cfg.imageLayoutDir} (a layout is a directory holding an oci-layout file); no units`);
  }
  const plan = planUnits({
    config: cfg, outDir: opts.outDir, ocigen: opts.ocigen ?? ocigenCommand(cfg),
    hostIds: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }, layouts: inputs.layouts,
  });
  for (const m of plan.messages) {
    if (m.level === "error") fail(m.text);
    else if (m.level === "warn") rep.warn(m.text);
    else log.info(m.text);
  }
  if (opts.dryRun) {
    const print = opts.print ?? ((s: string) => process.stdout.write(s));
    for (const s of formatUnits(plan.units)) print(s);
    return { units: plan.units, errors };
  }
  const w = writeUnits(plan.units, opts.outDir);
  for (const e of w.errors) fail(e);
  if (w.noOutDir) return { units: [], errors };
  log.info(`${w.written.length} unit(s) written to ${opts.outDir}, ${errors.length} problem(s)`);
  return { units: w.written, errors };
}
