/**
 * The `--json` documents of the verbs that report (the README's "JSON
 * output" section has one JSON Schema per verb; the tests validate the real
 * output against them). `stat --json` is umoci's shape and is not here.
 *
 * One vocabulary across verbs, so a field means the same thing everywhere:
 *
 * | field | meaning |
 * |---|---|
 * | `layout` | path of an OCI layout (as given, or relative to `imagelayoutdir`) |
 * | `image` | `LAYOUT:TAG`, several tags of one manifest joined by `,` |
 * | `tag` / `tags` | tag name(s) |
 * | `manifest` | digest of the image manifest (`sha256:<hex>`) the tag resolves to on this host |
 * | `tagManifest`, `from`, `to` | manifests too: what a tag names now (`status`), before and after an update (`update`) |
 * | `layers` | number of layers |
 * | `bytes` | a size in bytes (of layer blobs: compressed) |
 * | `unpackedBytes` | uncompressed layer bytes written |
 * | `seconds` | a duration |
 * | `status` | one word: what happened to the item |
 * | `error` | a one-line error message (the item failed) |
 * | `path` / `paths` | host paths |
 * | `errors` | one-line messages of problems that did not stop the verb |
 *
 * Each document is one JSON object on stdout, followed by a newline.
 *
 * @module
 */
import type { BuiltTarget } from "../recipe/build.ts";
import type { BulkResult } from "../bulk/extract-all.ts";
import type { GcResult } from "../oci/gc.ts";
import type { ResolvedImage } from "../oci/layout.ts";
import type { StatusReport } from "../status/status.ts";
import type { UpdateResult } from "../update/update.ts";

/**
 * `ls --json`: the tags of a layout.
 *
 * @example
 * ```ts
 * const doc: LsJson = { layout: "oci", images: [{ image: "oci:latest", tag: "latest", manifest: "sha256:ab…", layers: 1, bytes: 285 }] };
 * ```
 */
export interface LsJson {
  layout: string;
  images: Array<{ image: string; tag: string; manifest?: string; layers?: number; bytes?: number; error?: string }>;
}

/**
 * `ls --json` from the tags and what each resolved to (or why it did not).
 *
 * @example
 * ```ts
 * lsJson("oci", [{ tag: "latest", image: await layout.resolve("latest") }]);
 * ```
 */
export function lsJson(layout: string, tags: Array<{ tag: string; image?: ResolvedImage; error?: string }>): LsJson {
  return {
    layout,
    images: tags.map(({ tag, image, error }) =>
      image
        ? {
          image: `${layout}:${tag}`, tag, manifest: image.manifestDescriptor.digest, layers: image.manifest.layers.length,
          bytes: image.manifest.layers.reduce((a, l) => a + (l.size || 0), 0),
        }
        : { image: `${layout}:${tag}`, tag, error: error ?? "does not resolve" }
    ),
  };
}

/**
 * `build --json`: one entry per target, in build order.
 *
 * @example
 * ```ts
 * const doc: BuildJson = { layout: "oci", images: [{ image: "oci:app", tag: "app", status: "unchanged", tags: [], manifest: "sha256:ab…", inputs: "sha256:cd…" }] };
 * ```
 */
export interface BuildJson {
  layout: string;
  images: Array<{ image: string; tag: string; status: "built" | "unchanged"; tags: string[]; dated?: string; manifest: string; inputs: string; layer?: string }>;
}

/**
 * `build --json` from the targets a build visited.
 *
 * @example
 * ```ts
 * buildJson("oci", await buildFile("spec.yaml", { layout: "oci" }));
 * ```
 */
export function buildJson(layout: string, built: BuiltTarget[]): BuildJson {
  return {
    layout,
    images: built.map((b) => ({
      image: `${layout}:${b.name}`, tag: b.name, status: b.status, tags: b.tags, ...(b.dated ? { dated: b.dated } : {}),
      manifest: b.manifestDescriptor.digest, inputs: b.inputs, ...(b.layer ? { layer: b.layer.digest } : {}),
    })),
  };
}

/**
 * `gc --json`.
 *
 * @example
 * ```ts
 * const doc: GcJson = { layout: "oci", kept: 3, removed: ["sha256:00…"], paths: [] };
 * ```
 */
export interface GcJson {
  layout: string;
  kept: number;
  removed: string[];
  paths: string[];
}

/**
 * `gc --json`: blobs kept (count), removed (digests) and temporary files removed (`paths`).
 *
 * @example
 * ```ts
 * gcJson("oci", await gcLayout(layout));
 * ```
 */
export function gcJson(layout: string, r: GcResult): GcJson {
  return { layout, kept: r.kept.length, removed: r.removed, paths: r.tempRemoved };
}

/**
 * `gc-extracts --json`.
 *
 * @example
 * ```ts
 * const doc: GcExtractsJson = { dryRun: true, paths: ["/var/lib/oci/extracts/.store/sha256/ab…"], errors: [] };
 * ```
 */
export interface GcExtractsJson {
  dryRun: boolean;
  paths: string[];
  errors: string[];
}

/**
 * `gc-extracts --json`: the extracted trees removed (or, with `--dry-run`, that would be).
 *
 * @example
 * ```ts
 * gcExtractsJson(false, { removed: ["/var/lib/oci/extracts/.store/sha256/ab…"], errors: [] });
 * ```
 */
export function gcExtractsJson(dryRun: boolean, r: { removed: string[]; errors: string[] }): GcExtractsJson {
  return { dryRun, paths: r.removed, errors: r.errors };
}

/**
 * `extract --all --json`.
 *
 * @example
 * ```ts
 * const doc: ExtractAllJson = { images: [], shared: [], failed: [], seconds: 0.1, jobs: 2, mode: "inline", reuse: true, errors: [] };
 * ```
 */
export interface ExtractAllJson {
  images: ExtractAllImageJson[];
  shared: ExtractAllImageJson[];
  failed: string[];
  seconds: number;
  jobs: number;
  mode: string;
  reuse: boolean;
  errors: string[];
}

/**
 * One image of {@linkcode ExtractAllJson}.
 *
 * @example
 * ```ts
 * const i: ExtractAllImageJson = { image: "app:latest", layers: 1, applied: 1, bytes: 285, unpackedBytes: 1024, seconds: 0.02, status: "extracted" };
 * ```
 */
export interface ExtractAllImageJson {
  image: string;
  manifest?: string;
  layers: number;
  applied: number;
  bytes: number;
  unpackedBytes: number;
  seconds: number;
  status: string;
  source?: string;
  error?: string;
  warnings?: string[];
}

/**
 * `extract --all --json` from the bulk result (sizes in bytes, as everywhere).
 *
 * @example
 * ```ts
 * extractAllJson(await extractAll({ config }));
 * ```
 */
export function extractAllJson(r: BulkResult): ExtractAllJson {
  const img = (i: BulkResult["images"][number]): ExtractAllImageJson => ({
    image: i.image, ...(i.manifest ? { manifest: i.manifest } : {}), layers: i.layers, applied: i.applied,
    bytes: Math.round(i.mb * 1e6), unpackedBytes: Math.round(i.unpackedMB * 1e6), seconds: i.seconds, status: i.status,
    ...(i.source ? { source: i.source } : {}), ...(i.error ? { error: i.error } : {}), ...(i.warnings?.length ? { warnings: i.warnings } : {}),
  });
  return {
    images: r.images.map(img), shared: r.shared.map(img), failed: r.failed, seconds: r.seconds, jobs: r.jobs,
    mode: r.mode, reuse: r.reuse, errors: r.errors,
  };
}

/**
 * `bench --json` (both forms): the measurement report, with image sizes in
 * bytes like every other verb: `compressedMB` becomes `bytes` and `sizeMB`
 * `unpackedBytes` wherever they occur; rates stay `mbps` (MB/s, 10^6 bytes),
 * durations `seconds`.
 *
 * @example
 * ```ts
 * benchJson({ image: { compressedMB: 1.5, sizeMB: 3 } }); // { image: { bytes: 1500000, unpackedBytes: 3000000 } }
 * ```
 */
export function benchJson(report: unknown): unknown {
  if (Array.isArray(report)) return report.map(benchJson);
  if (!report || typeof report !== "object") return report;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(report as Record<string, unknown>)) {
    if (k === "compressedMB" && typeof v === "number") out.bytes = Math.round(v * 1e6);
    else if (k === "sizeMB" && typeof v === "number") out.unpackedBytes = Math.round(v * 1e6);
    else out[k] = benchJson(v);
  }
  return out;
}

/**
 * `status --json`: the generated units, the extracted trees no unit uses and
 * the volumes whose unit is gone. `manifest` is what a unit's service runs
 * (it differs from `tagManifest` while pinned or before a pending restart).
 *
 * @example
 * ```ts
 * const doc: StatusJson = { units: [], unused: [], volumes: [], systemd: false, errors: [] };
 * ```
 */
export type StatusJson = StatusReport;

/**
 * `status --json` from the gathered report (the report's own shape).
 *
 * @example
 * ```ts
 * statusJson(await gatherStatus({ config }));
 * ```
 */
export function statusJson(r: StatusReport): StatusJson {
  return { units: r.units, unused: r.unused, volumes: r.volumes, systemd: r.systemd, errors: r.errors };
}

/**
 * `update --json`: one entry per unit that was (or would be) updated, rolled
 * back, kept pinned, skipped or failed; `from`/`to` are manifests.
 *
 * @example
 * ```ts
 * const doc: UpdateJson = { dryRun: false, reloaded: true, units: [], unpinned: [], errors: [] };
 * ```
 */
export interface UpdateJson {
  dryRun: boolean;
  reloaded: boolean;
  units: Array<{ unit: string; image: string; layout: string; tag: string; from?: string; to: string; status: string; reason?: string; seconds?: number }>;
  unpinned: string[];
  errors: string[];
}

/**
 * `update --json` from an update run.
 *
 * @example
 * ```ts
 * updateJson(false, await update({ config }));
 * ```
 */
export function updateJson(dryRun: boolean, r: UpdateResult): UpdateJson {
  return {
    dryRun, reloaded: r.reloaded,
    units: r.units.map((u) => ({ unit: u.unit, image: `${u.layout}:${u.tag}`, layout: u.layout, tag: u.tag, ...(u.from ? { from: u.from } : {}), to: u.to, status: u.status, ...(u.reason ? { reason: u.reason } : {}), ...(u.seconds !== undefined ? { seconds: u.seconds } : {}) })),
    unpinned: r.unpinned, errors: r.errors,
  };
}
