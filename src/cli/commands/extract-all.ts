/**
 * The CLI side of bulk extraction: `ocigen extract --all [--config FILE]
 * [--jobs N] [--no-reuse] [--json]` (the options are registered on the
 * generator's `extract` verb, which calls {@linkcode extractAllCommand} when
 * `--all` is given).
 *
 * @module
 */
import process from "node:process";
import { type Command, Option } from "commander";
import { OcigenError } from "../../errors.ts";
import { log } from "../../log.ts";
import { generatorConfig } from "../generator-config.ts";
import { settings } from "../context.ts";
import type { BulkMode } from "../../bulk/extract-all.ts";
import { extractAllJson } from "../json.ts";
// bulk/extract-all.ts and bulk/workers.ts (and through them the unpack engine) are
// loaded only when `--all` runs: registering the options must stay cheap.

/** Options `extract --all` understands. */
export interface ExtractAllFlags {
  config?: string;
  /** Largest zstd window a layer may use, bytes (parsed from --zstd-window-max). */
  zstdWindowMax?: number;
  jobs?: string;
  json?: boolean;
  reuse?: boolean;
  bulkWorker?: boolean;
  bulkMode?: string;
  bulkUnpack?: string;
  bulkLockTimeout?: string;
  bulkCopy?: string;
}

/**
 * Adds the `--all` family of options to the `extract` command.
 *
 * @example
 * ```ts
 * addExtractAllOptions(program.command("extract"));
 * ```
 */
export function addExtractAllOptions(cmd: Command): Command {
  return cmd
    .option("--all", "extract every tag of every layout under imagelayoutdir (a later unit start is a no-op)")
    .option("--jobs <n>", "with --all: images extracted in parallel, one worker process each (default: the number of CPUs)")
    .option("--no-reuse", "with --all: never start an image from the tree of an image it extends")
    .option("--json", "with --all: print the summary as JSON")
    .addOption(new Option("--bulk-mode <mode>", "process or inline").hideHelp())
    .addOption(new Option("--bulk-worker", "internal: run as a worker of extract --all").hideHelp())
    .addOption(new Option("--bulk-unpack <json>", "internal: a worker's unpack options").hideHelp())
    .addOption(new Option("--bulk-lock-timeout <ms>", "internal: a worker's store lock timeout").hideHelp())
    .addOption(new Option("--bulk-copy <mode>", "internal: a worker's tree copier (auto or js)").hideHelp());
}

/**
 * Runs `extract --all` (or a worker of it); sets exit code 1 and throws
 * naming the failed images when any failed.
 *
 * @example
 * ```ts
 * await extractAllCommand({ config: "/etc/oci-generator.conf", jobs: "4" });
 * ```
 */
export async function extractAllCommand(o: ExtractAllFlags): Promise<void> {
  const config = generatorConfig(o.config);
  const s = settings();
  if (o.bulkWorker) {
    // a worker gets its settings from its parent's command line (bulk/workers.ts)
    const { parseWorkerUnpack, workerMain } = await import("../../bulk/workers.ts");
    const ms = Number(o.bulkLockTimeout);
    await workerMain({
      config,
      unpack: parseWorkerUnpack(o.bulkUnpack),
      lockTimeoutMs: o.bulkLockTimeout !== undefined && Number.isFinite(ms) && ms >= 0 ? ms : s.lockTimeoutMs,
      copyMode: o.bulkCopy === "js" || o.bulkCopy === "auto" ? o.bulkCopy : s.copy,
    });
    return;
  }
  const { extractAll, formatBulk } = await import("../../bulk/extract-all.ts");
  let jobs: number | undefined;
  if (o.jobs !== undefined) {
    jobs = Number(o.jobs);
    if (!Number.isInteger(jobs) || jobs < 1) throw new OcigenError("EUSAGE", `--jobs must be a positive integer, got ${o.jobs}`);
  }
  const mode = o.bulkMode as BulkMode | undefined;
  if (mode !== undefined && mode !== "process" && mode !== "inline") throw new OcigenError("EUSAGE", `--bulk-mode must be process or inline`);
  const r = await extractAll({
    config, jobs, reuse: o.reuse !== false, mode, configPath: o.config,
    unpack: { zstdWindowMax: o.zstdWindowMax ?? config.zstdWindowMax, lookahead: s.lookahead, inflate: s.inflate },
    lockTimeoutMs: s.lockTimeoutMs, copyMode: s.copy, self: s.self,
  });
  for (const e of r.errors) log.error(e);
  process.stdout.write((o.json ? JSON.stringify(extractAllJson(r)) : formatBulk(r)) + "\n");
  if (r.failed.length > 0) {
    process.exitCode = 1;
    throw new OcigenError("EUNPACK", `extract --all: ${r.failed.length} of ${r.images.length} images failed: ${r.failed.join(", ")}`);
  }
  if (r.errors.length > 0) process.exitCode = 1;
}
