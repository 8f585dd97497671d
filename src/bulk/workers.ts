/**
 * Worker processes for `extract --all`: the unpack engine writes files with
 * synchronous calls, so jobs in one process take turns on one core; worker
 * processes apply images truly in parallel, on Node and Deno alike (each is
 * this same ocigen, started as `ocigen extract --all --bulk-worker
 * --bulk-unpack JSON`, the JSON being the run's unpack options).
 *
 * Protocol: JSON lines. The parent writes `{"job":Job}` to a worker's stdin,
 * one job at a time; the worker answers on stdout with any number of
 * `{"id":N,"bytes":K}` (uncompressed bytes applied, batched) and
 * `{"id":N,"layer":[i,n]}` lines, then `{"id":N,"result":JobResult}`. The
 * worker's stderr is the parent's (its log lines). Closing stdin ends it.
 * A worker that dies fails its current job (the message says so) and is
 * replaced for the next one.
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { onExit } from "signal-exit";
import { fileURLToPath } from "node:url";
import { basename, dirname, join } from "node:path";
import { isDeno, isSea, selfCommand } from "../install/self.ts";
import type { GeneratorConfig } from "../generator/config.ts";
import type { UnpackOptions } from "../layer/unpack.ts";
import type { CopyMode } from "../store/copy.ts";
import { type Job, type JobHooks, type JobResult, type JobRunner, runJob } from "./job.ts";

/** What the worker processes need of the bulk options. */
export interface WorkerOptions {
  /** Generator configuration (the store and its permissions). */
  config: GeneratorConfig;
  /** Config file the worker processes load (`--config`). */
  configPath?: string;
  /** Passed to the unpack engine (sent to the workers on their command line). */
  unpack?: UnpackOptions;
  /** Store lock wait limit in ms (the `lockTimeoutMs` setting; sent as `--lock-timeout`). */
  lockTimeoutMs?: number;
  /** How source trees are copied (the `copyMode` setting; sent as `--copy`). */
  copyMode?: CopyMode;
  /** The command generated units run ocigen with (the `self` setting, `$OCIGEN_SELF`), if known. */
  self?: string;
}

/**
 * The command that starts this ocigen again, or null when it cannot be known
 * (ocigen used as a library from a program of its own). `self` is the `self`
 * setting (`$OCIGEN_SELF`, read in src/cli), which wins when set.
 *
 * @example
 * ```ts
 * workerCommand(); // ["/usr/bin/node", "/usr/lib/node_modules/ocigen/dist/ocigen.mjs"]
 * ```
 */
export function workerCommand(self?: string): string[] | null {
  const script = process.argv[1] ?? "";
  if (self || isSea() || /^ocigen(-generator)?(\.[cm]?js|\.ts)?$/.test(basename(script)) || /src\/main\.ts$/.test(script)) {
    return selfCommand(self);
  }
  // Sources (tests, library use from the sources): run src/main.ts.
  let main: string;
  try {
    main = join(dirname(fileURLToPath(import.meta.url)), "..", "main.ts");
  } catch {
    return null;
  }
  if (!main.endsWith("src/main.ts") || !fs.existsSync(main)) return null;
  if (isDeno()) return [process.execPath, "run", "-A", main];
  return [process.execPath, "--import", "tsx", main];
}

interface Worker {
  child: ChildProcess;
  busy: boolean;
  current?: { job: Job; hooks: JobHooks; resolve: (r: JobResult) => void };
  dead: boolean;
}

function failed(job: Job, error: string): JobResult {
  return { id: job.id, status: "failed", layers: 0, applied: 0, bytes: 0, unpacked: 0, seconds: 0, error, warnings: [] };
}

/**
 * A {@linkcode JobRunner} on `n` worker processes (falls back to this
 * process when no worker command is known).
 *
 * @example
 * ```ts
 * const runner = await processRunner(4, { config, configPath: "/etc/oci-generator.conf" });
 * const r = await runner.run(job, {});
 * await runner.close();
 * ```
 */
export async function processRunner(n: number, opts: WorkerOptions): Promise<JobRunner> {
  const ctx = { config: opts.config, unpack: opts.unpack, lockTimeoutMs: opts.lockTimeoutMs, copyMode: opts.copyMode };
  const cmd = workerCommand(opts.self);
  if (!cmd) {
    return { run: (job, hooks) => runJob(job, ctx, hooks), close: async () => {} };
  }
  const args = [...cmd.slice(1), "extract", "--all", "--bulk-worker", "--bulk-unpack", JSON.stringify(opts.unpack ?? {})];
  if (opts.configPath) args.push("--config", opts.configPath);
  if (opts.lockTimeoutMs !== undefined) args.push("--bulk-lock-timeout", String(opts.lockTimeoutMs));
  if (opts.copyMode !== undefined) args.push("--bulk-copy", opts.copyMode);
  const workers: Worker[] = [];
  const waiting: Array<() => void> = [];
  // Interrupted (SIGINT/SIGTERM/SIGHUP): the workers are told too, so that they remove their temporary trees.
  const unhook = onExit(() => {
    for (const w of workers) if (!w.dead) w.child.kill("SIGTERM");
  });

  const start = (): Worker => {
    // The environment is inherited as it is: everything a worker needs is on its command line.
    const child = spawn(cmd[0], args, { stdio: ["pipe", "pipe", "inherit"] });
    const w: Worker = { child, busy: false, dead: false };
    const rl = createInterface({ input: child.stdout! });
    rl.on("line", (line) => {
      let m: { id: number; bytes?: number; layer?: [number, number]; result?: JobResult };
      try {
        m = JSON.parse(line);
      } catch {
        return;
      }
      const cur = w.current;
      if (!cur || m.id !== cur.job.id) return;
      if (m.bytes) cur.hooks.bytes?.(m.bytes);
      if (m.layer) cur.hooks.layer?.(m.layer[0], m.layer[1]);
      if (m.result) {
        w.current = undefined;
        cur.resolve(m.result);
      }
    });
    const gone = (why: string) => {
      if (w.dead) return;
      w.dead = true;
      const cur = w.current;
      w.current = undefined;
      cur?.resolve(failed(cur.job, `worker process ${why}`));
    };
    child.on("exit", (code, sig) => gone(`exited (${sig ?? code}) while extracting`));
    child.on("error", (e) => gone(`could not run: ${e.message}`));
    child.stdin!.on("error", () => {});
    workers.push(w);
    return w;
  };

  const acquire = async (): Promise<Worker> => {
    for (;;) {
      for (let i = workers.length - 1; i >= 0; i--) if (workers[i].dead) workers.splice(i, 1);
      const free = workers.find((w) => !w.busy) ?? (workers.length < n ? start() : undefined);
      if (free) {
        free.busy = true;
        return free;
      }
      await new Promise<void>((r) => waiting.push(r));
    }
  };

  return {
    async run(job, hooks) {
      const w = await acquire();
      try {
        return await new Promise<JobResult>((resolve) => {
          w.current = { job, hooks, resolve };
          w.child.stdin!.write(JSON.stringify({ job }) + "\n");
        });
      } finally {
        w.busy = false;
        waiting.shift()?.();
      }
    },
    async close() {
      unhook();
      await Promise.all(workers.filter((w) => !w.dead).map((w) => new Promise<void>((r) => {
        w.child.once("exit", () => r());
        w.child.stdin!.end();
      })));
    },
  };
}

/** What a worker process runs its jobs with (parsed from its command line by src/cli). */
export interface WorkerContext {
  config: GeneratorConfig;
  unpack?: UnpackOptions;
  lockTimeoutMs?: number;
  copyMode?: CopyMode;
}

/**
 * The unpack options a worker got on its command line (`--bulk-unpack
 * JSON`); the defaults when missing or not a JSON object.
 *
 * @example
 * ```ts
 * parseWorkerUnpack('{"zstdWindowMax":134217728}'); // { zstdWindowMax: 134217728 }
 * ```
 */
export function parseWorkerUnpack(json: string | undefined): UnpackOptions {
  try {
    const v = JSON.parse(json ?? "{}");
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as UnpackOptions) : {};
  } catch {
    return {};
  }
}

/**
 * The worker side: reads jobs from stdin until it closes, runs them one at a
 * time, answers on stdout (see the module docs).
 *
 * @example
 * ```ts
 * await workerMain({ config: loadGeneratorConfig(path), unpack: parseWorkerUnpack(flag) });
 * ```
 */
export async function workerMain(ctx: WorkerContext): Promise<void> {
  const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + "\n");
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const { job } = JSON.parse(line) as { job: Job };
    let pending = 0;
    let last = performance.now();
    const r = await runJob(job, ctx, {
      bytes: (k) => {
        pending += k;
        const t = performance.now();
        if (t - last > 100) {
          out({ id: job.id, bytes: pending });
          pending = 0;
          last = t;
        }
      },
      layer: (i, n) => out({ id: job.id, layer: [i, n] }),
    });
    if (pending) out({ id: job.id, bytes: pending });
    out({ id: job.id, result: r });
  }
}
