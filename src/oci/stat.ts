/**
 * `stat`: the history of an image with the layer each entry added, as umoci
 * prints it (table) or encodes it (`--json`).
 *
 * @module
 */
import type { ResolvedImage } from "./layout.ts";
import type { Descriptor } from "./types.ts";
import { oneLine } from "../log.ts";

/** One history row: a layer (or null for an empty-layer entry) and its history data. */
export interface StatHistoryEntry {
  layer: Descriptor | null;
  diff_id: string;
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** The machine-readable stat of an image (umoci's `--json` shape plus the manifest descriptor). */
export interface ImageStat {
  history: StatHistoryEntry[];
  manifest: Descriptor;
}

/**
 * Pairs each history entry with its layer: entries without `empty_layer`
 * take the next layer in order. Layers left over (images without history)
 * get rows with no history data.
 *
 * @example
 * ```ts
 * const s = imageStat(await layout.resolve("latest"));
 * for (const h of s.history) console.log(h.layer?.digest ?? "<none>", h.created_by);
 * ```
 */
export function imageStat(img: ResolvedImage): ImageStat {
  const layers = img.manifest.layers;
  const diffIds = img.config.rootfs.diff_ids;
  const out: StatHistoryEntry[] = [];
  let li = 0;
  for (const h of img.config.history ?? []) {
    const e: StatHistoryEntry = { layer: null, diff_id: "" };
    if (!h.empty_layer && li < layers.length) {
      e.layer = tidy(layers[li]);
      e.diff_id = diffIds[li] ?? "";
      li++;
    }
    if (h.created !== undefined) e.created = rfc3339Nano(h.created);
    if (h.created_by !== undefined) e.created_by = h.created_by;
    if (h.author !== undefined) e.author = h.author;
    if (h.comment !== undefined) e.comment = h.comment;
    if (h.empty_layer) e.empty_layer = true;
    out.push(e);
  }
  for (; li < layers.length; li++) out.push({ layer: tidy(layers[li]), diff_id: diffIds[li] ?? "" });
  return { history: out, manifest: tidy(img.manifestDescriptor) };
}

/** A descriptor with umoci's key order and without annotations/platform. */
function tidy(d: Descriptor): Descriptor {
  const { mediaType, digest, size, annotations: _a, platform: _p, ...rest } = d;
  return { mediaType, digest, size, ...rest };
}

/**
 * Human-readable size in decimal units, as Go's `units.HumanSize` (umoci):
 * 4 significant digits, `B`, `kB`, `MB`, ...
 *
 * @example
 * ```ts
 * humanSize(12055); // "12.05kB"
 * humanSize(88); // "88B"
 * ```
 */
export function humanSize(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  let s = v.toPrecision(4);
  if (s.includes(".") && !s.includes("e")) s = s.replace(/0+$/, "").replace(/\.$/, "");
  return s + units[i];
}

/**
 * An RFC 3339 time as Go's `time.RFC3339Nano` prints it (umoci's `stat`): the
 * fraction of a second without trailing zeros, and none when it is zero.
 * Anything that is not such a time is returned unchanged.
 *
 * @example
 * ```ts
 * rfc3339Nano("2024-01-01T00:00:00.450Z"); // "2024-01-01T00:00:00.45Z"
 * rfc3339Nano("2024-01-01T00:00:00.000+02:00"); // "2024-01-01T00:00:00+02:00"
 * ```
 */
export function rfc3339Nano(t: string | undefined): string | undefined {
  const m = t === undefined ? null : /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) return t;
  const frac = (m[2] ?? "").replace(/0+$/, "");
  return `${m[1]}${frac ? "." + frac : ""}${m[3]}`;
}

/**
 * Renders the stat table (columns LAYER, CREATED, CREATED BY, SIZE, COMMENT;
 * each column but the last padded to its widest cell plus one space, like
 * Go's tabwriter in umoci).
 *
 * @example
 * ```ts
 * process.stdout.write(formatStatTable(imageStat(img)));
 * ```
 */
export function formatStatTable(s: ImageStat): string {
  // history text comes from the image: tabs and newlines become spaces, other control
  // characters (terminal escape sequences) are shown escaped
  const text = (v: string | undefined) => oneLine((v ?? "").replace(/[\t\n]/g, " "));
  const rows: string[][] = [["LAYER", "CREATED", "CREATED BY", "SIZE", "COMMENT"]];
  for (const h of s.history) {
    rows.push([
      h.layer ? h.layer.digest : "<none>",
      text(rfc3339Nano(h.created)),
      text(h.created_by),
      h.layer ? humanSize(h.layer.size) : "<none>",
      text(h.comment),
    ]);
  }
  const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => [...r[c]].length)));
  return rows.map((r) => r.map((cell, c) => (c < 4 ? cell + " ".repeat(widths[c] - [...cell].length + 1) : cell)).join("") + "\n").join("");
}
