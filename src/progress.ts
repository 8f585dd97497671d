/**
 * Progress on stderr for long work (unpack, repack, build, bench, gc): ONE
 * line, redrawn in place at most 10 times a second, showing bytes, entries,
 * the current layer, images done/total, rate and ETA; erased when the work
 * ends. Drawn only when {@linkcode progressEnabled} (stderr is a TTY and not
 * `--quiet`); otherwise every call is a cheap no-op, so callers never check.
 *
 * Reporters nest: a reporter started while another is active draws after it
 * on the same line (`build 2/5 › unpack layer 1/3 …`). Log lines written
 * while a line is drawn erase it first (via `setBeforeLogWrite` in log.ts).
 *
 * Calling convention (cheap enough for per-chunk calls: a clock read and a
 * compare when nothing is drawn):
 * ```ts
 * import { progress } from "../progress.ts";
 * const p = progress.start("unpack", { total: compressedBytes, layers: 3 });
 * p.update({ layer: "sha256:ab..", layerIndex: 0 });
 * p.add(chunk.length, 0);   // bytes, entries
 * p.update({ entries: 1200 });
 * p.done();
 * ```
 *
 * @module
 */
import process from "node:process";
import { progressEnabled, setBeforeLogWrite } from "./log.ts";

/** Where the line is drawn: `process.stderr` or a fake TTY in tests. */
export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Options of {@linkcode start}. */
export interface ProgressOptions {
  /** Total bytes expected (enables percentage and ETA). */
  total?: number;
  /** Number of items (images, targets) this task covers: shows `done/items`. */
  items?: number;
  /** Number of layers: shows `layer i/n`. */
  layers?: number;
  /** Draw even if {@linkcode progressEnabled} says no (tests). Default: progressEnabled(). */
  enabled?: boolean;
  /** Stream to draw on. Default: process.stderr. */
  stream?: ProgressStream;
  /**
   * Minimum milliseconds between redraws, also the delay before the first
   * draw. Default: the one {@linkcode configureProgress} set, else 100 (10 Hz).
   */
  intervalMs?: number;
  /** Clock in milliseconds (tests). Default: performance.now(). */
  now?: () => number;
}

/** Fields of {@linkcode Progress.update}; absolute values, each optional. */
export interface ProgressUpdate {
  /** Bytes processed so far in this task. */
  bytes?: number;
  /** Entries (files) processed so far. */
  entries?: number;
  /** Current layer (digest or name; digests are shortened). */
  layer?: string;
  /** 0-based index of the current layer. */
  layerIndex?: number;
  /** Number of layers (if not given at start). */
  layers?: number;
  /** Items done so far. */
  itemsDone?: number;
  /** Number of items (if not given at start). */
  items?: number;
  /** Total bytes (if not given at start). */
  total?: number;
  /** Free text shown last (e.g. current image name). */
  note?: string;
}

/** A running progress report. All methods are no-ops when disabled. */
export interface Progress {
  /** True when this reporter draws anything. */
  readonly enabled: boolean;
  /** Sets fields (absolute values) and redraws if due. */
  update(u: ProgressUpdate): void;
  /** Adds to the byte and entry counters and redraws if due. */
  add(bytes: number, entries?: number): void;
  /** Counts `n` items (images, targets) done. */
  itemDone(n?: number): void;
  /** Ends this reporter; the line is erased when no reporter is left. Idempotent. */
  done(): void;
}

const NOOP: Progress = Object.freeze({
  enabled: false,
  update() {},
  add() {},
  itemDone() {},
  done() {},
});

interface State {
  task: string;
  bytes: number;
  entries: number;
  total?: number;
  items?: number;
  itemsDone: number;
  layers?: number;
  layerIndex?: number;
  layer?: string;
  note?: string;
  startedAt: number;
}

/** Shared line state: one line per stream, reporters stacked on it. */
class Line {
  readonly stack: Reporter[] = [];
  drawn = false;
  lastDraw = -Infinity;
  firstDue = 0;
  constructor(readonly stream: ProgressStream, readonly interval: number, readonly now: () => number) {}

  maybeDraw(): void {
    const t = this.now();
    if (t < this.firstDue || t - this.lastDraw < this.interval) return;
    this.lastDraw = t;
    this.draw(t);
  }

  draw(t: number): void {
    const width = Math.max(10, (this.stream.columns || display.columns || 80) - 1);
    // Fit the terminal by giving up detail, least useful first (see FIT), before cutting the end.
    let text = "";
    for (let fit = 0; fit <= MAX_FIT; fit++) {
      text = this.stack.map((r) => r.segment(t, fit)).join(" › ");
      if (text.length <= width) break;
    }
    if (text.length > width) text = text.slice(0, width - 1) + "…";
    this.stream.write(`\r${text}\x1b[K`);
    this.drawn = true;
    if (this.stream === process.stderr) hookLog(this);
  }

  clear(): void {
    if (!this.drawn) return;
    this.stream.write("\r\x1b[K");
    this.drawn = false;
    // Redraw as soon as the next update comes.
    this.lastDraw = -Infinity;
  }
}

/**
 * What a line too wide for the terminal gives up, in this order (each level
 * keeps giving up what the lower ones did): the digest's algorithm and all
 * but 8 hex digits, the free-text note, the rate, the entry count, the layer
 * digest, the total (the percentage stays), the ETA, the `layer i/n` column,
 * then double spaces. Bytes and percentage stay to the end; only then is the
 * end cut.
 */
const FIT = { shortDigest: 1, note: 2, rate: 3, entries: 4, digest: 5, total: 6, eta: 7, layer: 8, tight: 9 } as const;
const MAX_FIT = 9;

const lines = new Map<ProgressStream, Line>();
let exitHooked = false;

function hookLog(line: Line): void {
  setBeforeLogWrite(() => line.clear());
  if (!exitHooked) {
    exitHooked = true;
    process.once("exit", () => {
      for (const l of lines.values()) l.clear();
    });
  }
}

class Reporter implements Progress {
  readonly enabled = true;
  private finished = false;
  readonly s: State;
  constructor(private readonly line: Line, task: string, opts: ProgressOptions) {
    this.s = {
      task, bytes: 0, entries: 0, itemsDone: 0,
      total: opts.total, items: opts.items, layers: opts.layers, startedAt: line.now(),
    };
  }

  update(u: ProgressUpdate): void {
    if (this.finished) return;
    const s = this.s;
    if (u.bytes !== undefined) s.bytes = u.bytes;
    if (u.entries !== undefined) s.entries = u.entries;
    if (u.layer !== undefined) s.layer = u.layer;
    if (u.layerIndex !== undefined) s.layerIndex = u.layerIndex;
    if (u.layers !== undefined) s.layers = u.layers;
    if (u.itemsDone !== undefined) s.itemsDone = u.itemsDone;
    if (u.items !== undefined) s.items = u.items;
    if (u.total !== undefined) s.total = u.total;
    if (u.note !== undefined) s.note = u.note;
    this.line.maybeDraw();
  }

  add(bytes: number, entries = 0): void {
    if (this.finished) return;
    this.s.bytes += bytes;
    this.s.entries += entries;
    this.line.maybeDraw();
  }

  itemDone(n = 1): void {
    if (this.finished) return;
    this.s.itemsDone += n;
    this.line.maybeDraw();
  }

  done(): void {
    if (this.finished) return;
    this.finished = true;
    const st = this.line.stack;
    const i = st.indexOf(this);
    if (i >= 0) st.splice(i, 1);
    if (st.length === 0) {
      this.line.clear();
      lines.delete(this.line.stream);
      if (this.line.stream === process.stderr) setBeforeLogWrite(null);
    }
  }

  /** This reporter's part of the line, with the detail `fit` allows (see FIT). */
  segment(t: number, fit = 0): string {
    const s = this.s;
    const parts = [s.task];
    if (s.items !== undefined) parts.push(`${s.itemsDone}/${s.items}`);
    if ((s.layerIndex !== undefined || s.layer !== undefined) && fit < FIT.layer) {
      let l = "layer";
      if (s.layerIndex !== undefined) l += ` ${s.layerIndex + 1}${s.layers !== undefined ? `/${s.layers}` : ""}`;
      if (s.layer && fit < FIT.digest) l += ` ${fit < FIT.shortDigest ? shortLabel(s.layer) : shorterLabel(s.layer)}`;
      if (l !== "layer") parts.push(l);
    }
    if (s.bytes > 0 || s.total) {
      const pct = s.total ? ` ${Math.min(100, Math.floor((100 * s.bytes) / s.total))}%` : "";
      parts.push(s.total && fit < FIT.total ? `${formatBytes(s.bytes)}/${formatBytes(s.total)}${pct}` : `${formatBytes(s.bytes)}${pct}`);
    }
    if (s.entries > 0 && fit < FIT.entries) parts.push(`${s.entries} ${s.entries === 1 ? "entry" : "entries"}`);
    const secs = (t - s.startedAt) / 1000;
    if (secs > 0.2 && s.bytes > 0) {
      const rate = s.bytes / secs;
      if (fit < FIT.rate) parts.push(`${formatBytes(rate)}/s`);
      if (s.total && s.total > s.bytes && fit < FIT.eta) parts.push(`ETA ${formatDuration((s.total - s.bytes) / rate)}`);
    } else if (secs > 0.2 && s.items && s.itemsDone > 0 && s.items > s.itemsDone && fit < FIT.eta) {
      parts.push(`ETA ${formatDuration(((s.items - s.itemsDone) * secs) / s.itemsDone)}`);
    }
    if (s.note && fit < FIT.note) parts.push(s.note);
    return parts.join(fit >= FIT.tight ? " " : "  ");
  }
}

/**
 * Starts a progress report for `task` (a short verb: "unpack", "repack").
 * Returns a no-op reporter unless progress is enabled.
 *
 * @example
 * ```ts
 * const p = start("unpack", { total: 1 << 30, layers: 4 });
 * p.update({ layerIndex: 0, layer: "sha256:0123abcd" });
 * p.add(65536, 3);
 * p.done();
 * ```
 */
export function start(task: string, opts: ProgressOptions = {}): Progress {
  const enabled = opts.enabled ?? progressEnabled();
  if (!enabled) return NOOP;
  const stream = opts.stream ?? process.stderr;
  let line = lines.get(stream);
  if (!line) {
    const now = opts.now ?? (() => performance.now());
    line = new Line(stream, opts.intervalMs ?? display.intervalMs, now);
    line.firstDue = now() + line.interval;
    lines.set(stream, line);
  }
  const r = new Reporter(line, task, opts);
  line.stack.push(r);
  return r;
}

/** Callbacks matching the unpack engine's `onLayer`/`onBytes` options, plus `done`. */
export interface LayerProgress {
  /** Before each layer: 1-based index, layer count, the layer's descriptor. */
  onLayer(index: number, count: number, layer: { digest: string; size?: number }): void;
  /** Uncompressed bytes processed. */
  onBytes(n: number): void;
  /** One entry (file) written. */
  onEntry(): void;
  /** Ends the report (call in `finally`). */
  done(): void;
}

/**
 * A reporter shaped for layer-by-layer work (unpack, extract, repack):
 * pass `onLayer`/`onBytes` straight into the engine's options.
 *
 * @example
 * ```ts
 * const lp = layerProgress("unpack");
 * try {
 *   await unpackBundle(layout, image, bundle, { onLayer: lp.onLayer, onBytes: lp.onBytes });
 * } finally {
 *   lp.done();
 * }
 * ```
 */
export function layerProgress(task: string, opts: ProgressOptions = {}): LayerProgress {
  const p = start(task, opts);
  return {
    onLayer: (index, count, layer) => p.update({ layerIndex: index - 1, layers: count, layer: layer.digest }),
    onBytes: (n) => p.add(n, 0),
    onEntry: () => p.add(0, 1),
    done: () => p.done(),
  };
}

/**
 * Erases the progress line (if one is drawn) so that the caller can write
 * to stdout or stderr mid-work; the next update redraws it. Log messages do
 * this by themselves.
 *
 * @example
 * ```ts
 * clearLine();
 * process.stdout.write("sha256:ab.. verified\n");
 * ```
 */
export function clearLine(): void {
  for (const l of lines.values()) l.clear();
}

/** What the command line set with {@linkcode configureProgress}. */
const display: { intervalMs: number; columns: number | undefined } = { intervalMs: 100, columns: undefined };

/**
 * Sets, for the whole process, the redraw interval (the settings'
 * `progressIntervalMs`, `$OCIGEN_PROGRESS_INTERVAL_MS`; tests use 0 to draw
 * on every update, even for quick work) and the width used when the stream
 * does not know its own (`columns`, `$COLUMNS`). The command line calls it
 * once, before any work, as it sets the log level.
 *
 * @example
 * ```ts
 * configureProgress({ intervalMs: settings.progressIntervalMs, columns: settings.columns });
 * ```
 */
export function configureProgress(o: { intervalMs: number; columns: number | undefined }): void {
  display.intervalMs = o.intervalMs;
  display.columns = o.columns;
}

/**
 * Runs `fn` with a reporter and always ends it (also when `fn` throws).
 *
 * @example
 * ```ts
 * await withProgress("gc", { items: blobs.length }, async (p) => {
 *   for (const b of blobs) { await check(b); p.itemDone(); }
 * });
 * ```
 */
export async function withProgress<T>(task: string, opts: ProgressOptions, fn: (p: Progress) => Promise<T> | T): Promise<T> {
  const p = start(task, opts);
  try {
    return await fn(p);
  } finally {
    p.done();
  }
}

/**
 * Formats a byte count with binary units: `512 B`, `1.5 KiB`, `12.3 MiB`.
 *
 * @example
 * ```ts
 * formatBytes(1536); // "1.5 KiB"
 * ```
 */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(n >= 100 ? 0 : 1)} ${units[i]}`;
}

/**
 * Formats seconds as `m:ss` (or `h:mm:ss`).
 *
 * @example
 * ```ts
 * formatDuration(75); // "1:15"
 * ```
 */
export function formatDuration(secs: number): string {
  const t = Math.max(0, Math.ceil(secs));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const s = String(t % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function shortLabel(l: string): string {
  const m = /^([a-z0-9]+):([0-9a-f]{12})[0-9a-f]+$/.exec(l);
  return m ? `${m[1]}:${m[2]}` : l;
}

/** Narrow terminals: a digest as its first 8 hex digits, other labels cut to 16 characters. */
function shorterLabel(l: string): string {
  const m = /^[a-z0-9]+:([0-9a-f]{8})[0-9a-f]*$/.exec(l);
  return m ? m[1] : l.length > 16 ? l.slice(0, 15) + "…" : l;
}

/**
 * The progress API as one object: `progress.start(...)`.
 *
 * @example
 * ```ts
 * const p = progress.start("repack");
 * p.done();
 * ```
 */
export const progress = { start, withProgress, clearLine, layerProgress };
