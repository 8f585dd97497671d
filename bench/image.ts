/**
 * Deterministic generator of a realistic OCI image for benchmarks.
 *
 * The image has five gzip layers (about `scaleMB` MB of tar in all):
 *  1. base   — a distro-like tree: thousands of small text files, symlinks, dirs;
 *  2. libs   — shared-library-like binaries (32 KiB – 6 MiB, ~3x compressible);
 *  3. data   — incompressible (random) blobs and a few zero-filled files;
 *  4. app    — a node_modules-like tree of tiny JS/JSON files plus a few bundles;
 *  5. churn  — deletes ~30% of base (whiteouts), an opaque directory, rewrites
 *              ~40% of the libraries and adds new files.
 * Content comes from a seeded PRNG, so the same options give the same bytes.
 * Layers are compressed with node:zlib at level 6 (like most registries'
 * images) unless `level` says otherwise. The result is an OCI layout with the tag `bench`; it is cached in
 * `dir` (regenerated when the options or generator version change).
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import crypto from "node:crypto";
import { pipeline } from "node:stream/promises";
import { TarWriter, type TarWriterEntry } from "../src/tar/writer.ts";
import type { ByteSink } from "../src/stream/sink.ts";

/** Bump when the generated content changes. */
const GENERATOR_VERSION = 2;

/**
 * Options of {@linkcode generateBenchImage}.
 *
 * @example
 * ```ts
 * const o: BenchImageOptions = { dir: "/tmp/b", scaleMB: 48 };
 * ```
 */
export interface BenchImageOptions {
  /** Directory for the layout and work files (created; reused when up to date). */
  dir: string;
  /** Approximate total uncompressed size in MB. */
  scaleMB: number;
  /** PRNG seed. */
  seed?: number;
  /** Log progress lines here. */
  log?: (msg: string) => void;
  /** `"single"`: one layer holding base+libs+data+app (e.g. the 2 GB single-layer memory test). */
  shape?: "layers" | "single";
  /** gzip level of the layers (default 6). */
  level?: number;
}

/**
 * One generated layer.
 *
 * @example
 * ```ts
 * const l: BenchLayer = (await generateBenchImage(o)).layers[0];
 * ```
 */
export interface BenchLayer {
  name: string;
  /** Path of the gzip blob. */
  blob: string;
  /** Path of the uncompressed tar (kept for tar/sha benchmarks). */
  tar: string;
  digest: string;
  diffId: string;
  compressedSize: number;
  size: number;
  entries: number;
}

/**
 * A generated image.
 *
 * @example
 * ```ts
 * const img: BenchImage = await generateBenchImage(o);
 * ```
 */
export interface BenchImage {
  /** The OCI layout directory. */
  layout: string;
  tag: string;
  layers: BenchLayer[];
  /** Sum of tar sizes. */
  size: number;
  /** Sum of blob sizes. */
  compressedSize: number;
}

// ---------------------------------------------------------------- content

/** mulberry32: small fast seeded PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

class Content {
  private words: Uint8Array[] = [];
  constructor(private r: () => number) {
    const letters = "etaoinshrdlucmfwypvbgkjqxz_-./0123456789";
    for (let i = 0; i < 600; i++) {
      const len = 2 + (r() % 9);
      const w = new Uint8Array(len + 1);
      for (let j = 0; j < len; j++) w[j] = letters.charCodeAt(Math.min(letters.length - 1, (r() % 20) + (r() % (j + 1 + (i % 20)))));
      w[len] = i % 13 === 0 ? 10 : 32;
      this.words.push(w);
    }
  }
  /** Prose/config-like text (~3-4x compressible). */
  text(n: number): Uint8Array {
    const out = new Uint8Array(n);
    const r = this.r;
    let o = 0;
    while (o < n) {
      // Zipf-ish word choice
      const k = r();
      const w = this.words[(k & 0xffff) % (1 + ((k >>> 16) % this.words.length))];
      const m = Math.min(w.length, n - o);
      out.set(m === w.length ? w : w.subarray(0, m), o);
      o += m;
    }
    return out;
  }
  /** Random bytes (incompressible). */
  random(n: number): Uint8Array {
    const out = new Uint8Array(n);
    const words = new Uint32Array(out.buffer, 0, n >>> 2);
    const r = this.r;
    for (let i = 0; i < words.length; i++) words[i] = r();
    for (let i = words.length * 4; i < n; i++) out[i] = r() & 0xff;
    return out;
  }
  /** Machine-code-like bytes: skewed opcodes, repeated snippets, zero runs, string tables. */
  binary(n: number): Uint8Array {
    const out = new Uint8Array(n);
    const r = this.r;
    const hot = [0x48, 0x89, 0x8b, 0x0f, 0xe8, 0x85, 0xc0, 0x74, 0x75, 0x83, 0x00, 0xff, 0x24, 0x44, 0x4c, 0x8d, 0x31, 0xc3, 0x41, 0x5d];
    let o = 0;
    while (o < n) {
      const k = r() % 100;
      if (k < 45) {
        const len = 4 + (r() % 24);
        for (let i = 0; i < len && o < n; i++) {
          const x = r();
          out[o++] = (x & 3) !== 0 ? hot[(x >>> 2) % hot.length] : (x >>> 8) & 0xff;
        }
      } else if (k < 80 && o > 64) {
        const d = 8 + (r() % Math.min(o - 8, 30000));
        const len = 6 + (r() % 40);
        for (let i = 0; i < len && o < n; i++, o++) out[o] = out[o - d];
      } else if (k < 88) {
        const len = 8 + (r() % 120);
        o = Math.min(n, o + len); // zeros
      } else {
        const t = this.text(Math.min(n - o, 16 + (r() % 200)));
        out.set(t, o);
        o += t.length;
      }
    }
    return out;
  }
}

// ---------------------------------------------------------------- tar building

class FileSink implements ByteSink {
  private buf = new Uint8Array(1 << 20);
  private n = 0;
  readonly hash = crypto.createHash("sha256");
  size = 0;
  constructor(private fd: number) {}
  write(c: Uint8Array): void {
    this.hash.update(c);
    this.size += c.length;
    if (this.n + c.length > this.buf.length) this.flush();
    if (c.length >= this.buf.length) fs.writeSync(this.fd, c);
    else {
      this.buf.set(c, this.n);
      this.n += c.length;
    }
  }
  flush(): void {
    if (this.n) fs.writeSync(this.fd, this.buf, 0, this.n);
    this.n = 0;
  }
  end(): void {
    this.flush();
  }
}

interface LayerPlan {
  name: string;
  build(w: (e: TarWriterEntry) => void): void;
}

function plans(scaleMB: number, c: Content, r: () => number): LayerPlan[] {
  const MB = 1 << 20;
  const budget = (f: number) => Math.max(64 * 1024, Math.round(scaleMB * f * MB));
  const mtime = 1_700_000_000;
  const baseFiles: string[] = [];
  const libFiles: string[] = [];
  const dirsMade = new Set<string>();
  const dir = (w: (e: TarWriterEntry) => void, p: string) => {
    const parts = p.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join("/") + "/";
      if (!dirsMade.has(d)) {
        dirsMade.add(d);
        w({ name: d, type: "dir", mode: 0o755, mtime });
      }
    }
  };
  const smallSize = () => Math.min(64 * 1024, 200 + Math.floor(Math.exp((r() % 1000) / 1000 * 9.5)));
  return [
    {
      name: "base",
      build(w) {
        let left = budget(0.2);
        const tops = ["etc", "usr/share/doc", "usr/share/man/man1", "usr/bin", "usr/share/locale/de/LC_MESSAGES", "var/lib/dpkg/info"];
        let i = 0;
        while (left > 0) {
          const d = `${tops[i % tops.length]}/pkg${(i >> 3) % 97}`;
          dir(w, d);
          const n = `${d}/file-${i}${i % 5 === 0 ? ".conf" : i % 5 === 1 ? ".txt" : ""}`;
          const size = smallSize();
          w({ name: n, data: c.text(size), mode: i % 7 === 0 ? 0o755 : 0o644, mtime });
          baseFiles.push(n);
          if (i % 50 === 0) w({ name: `${d}/link-${i}`, type: "symlink", linkname: `file-${i}`, mtime });
          left -= size + 512;
          i++;
        }
      },
    },
    {
      name: "libs",
      build(w) {
        let left = budget(0.35);
        dir(w, "usr/lib/x86_64-linux-gnu");
        let i = 0;
        while (left > 0) {
          const size = Math.min(left + 1, 32 * 1024 + (r() % (6 * MB)));
          const n = `usr/lib/x86_64-linux-gnu/lib${i}.so.${i % 4}`;
          w({ name: n, data: c.binary(size), mode: 0o755, mtime });
          libFiles.push(n);
          left -= size;
          i++;
        }
      },
    },
    {
      name: "data",
      build(w) {
        let left = budget(0.15);
        dir(w, "opt/data");
        let i = 0;
        while (left > 0) {
          const size = Math.min(left + 1, 256 * 1024 + (r() % (8 * MB)));
          w({ name: `opt/data/blob-${i}.bin`, data: i % 5 === 4 ? new Uint8Array(size) : c.random(size), mtime });
          left -= size;
          i++;
        }
      },
    },
    {
      name: "app",
      build(w) {
        let left = budget(0.15);
        let i = 0;
        while (left > 0) {
          const pkg = `app/node_modules/mod${i % 211}`;
          dir(w, pkg);
          if (i % 40 === 39) {
            const size = 100 * 1024 + (r() % (2 * MB));
            w({ name: `${pkg}/bundle-${i}.js`, data: c.text(size), mtime });
            left -= size;
          } else {
            const size = 100 + (r() % 4000);
            w({ name: `${pkg}/${i % 3 === 0 ? "package.json" : `lib-${i}.js`}`, data: c.text(size), mtime });
            left -= size + 512;
          }
          i++;
        }
      },
    },
    {
      name: "churn",
      build(w) {
        let left = budget(0.15);
        // deletions: ~30% of base files
        for (let i = 0; i < baseFiles.length; i++) {
          if (r() % 10 < 3) {
            const f = baseFiles[i];
            const slash = f.lastIndexOf("/");
            w({ name: `${f.slice(0, slash + 1)}.wh.${f.slice(slash + 1)}`, mtime });
          }
        }
        // an opaque directory
        w({ name: "app/node_modules/mod7/", type: "dir", mtime });
        w({ name: "app/node_modules/mod7/.wh..wh..opq", mtime });
        w({ name: "app/node_modules/mod7/index.js", data: c.text(2000), mtime });
        // rewrites: ~40% of libraries (new content, same names)
        for (const f of libFiles) {
          if (left <= 0) break;
          if (r() % 10 < 4) {
            const size = 32 * 1024 + (r() % (2 * MB));
            w({ name: f, data: c.binary(size), mode: 0o755, mtime });
            left -= size;
          }
        }
        // new files
        let i = 0;
        while (left > 0) {
          const size = smallSize();
          w({ name: `srv/new/file-${i}`, data: c.text(size), mtime });
          left -= size + 512;
          i++;
        }
      },
    },
  ];
}

// ---------------------------------------------------------------- layout

function sha256File(p: string): string {
  const h = crypto.createHash("sha256");
  const fd = fs.openSync(p, "r");
  const buf = new Uint8Array(1 << 20);
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest("hex");
}

function writeBlob(layout: string, data: string): { digest: string; size: number } {
  const hex = crypto.createHash("sha256").update(data).digest("hex");
  fs.writeFileSync(path.join(layout, "blobs/sha256", hex), data);
  return { digest: `sha256:${hex}`, size: Buffer.byteLength(data) };
}

/**
 * Generates (or reuses) the benchmark image.
 *
 * @example
 * ```ts
 * const img = await generateBenchImage({ dir: "/tmp/ocigen-bench", scaleMB: 50 });
 * console.log(img.layout, img.layers.length);
 * ```
 */
export async function generateBenchImage(opts: BenchImageOptions): Promise<BenchImage> {
  const seed = opts.seed ?? 1;
  const log = opts.log ?? (() => {});
  const stamp = path.join(opts.dir, "image.json");
  const shape = opts.shape ?? "layers";
  const level = opts.level ?? 6;
  const key = { version: GENERATOR_VERSION, scaleMB: opts.scaleMB, seed, shape, level };
  try {
    const prev = JSON.parse(fs.readFileSync(stamp, "utf8")) as { key: typeof key; image: BenchImage };
    if (JSON.stringify(prev.key) === JSON.stringify(key) && prev.image.layers.every((l) => fs.existsSync(l.blob) && fs.existsSync(l.tar))) {
      return prev.image;
    }
  } catch {
    // (re)generate
  }
  fs.rmSync(opts.dir, { recursive: true, force: true });
  const layout = path.join(opts.dir, "layout");
  const work = path.join(opts.dir, "tars");
  fs.mkdirSync(path.join(layout, "blobs/sha256"), { recursive: true });
  fs.mkdirSync(work, { recursive: true });
  const r = rng(seed);
  const c = new Content(r);
  const layers: BenchLayer[] = [];
  const compressions: Promise<void>[] = [];
  let layerPlans = plans(opts.scaleMB, c, r);
  if (shape === "single") {
    // base + libs + data + app in one layer, each part scaled so the total stays scaleMB
    const parts = plans(opts.scaleMB / 0.85, c, r).slice(0, 4);
    layerPlans = [{ name: "single", build: (w) => parts.forEach((p) => p.build(w)) }];
  }
  for (const plan of layerPlans) {
    const t0 = performance.now();
    const tarPath = path.join(work, `${plan.name}.tar`);
    const fd = fs.openSync(tarPath, "w");
    const sink = new FileSink(fd);
    const tw = new TarWriter(sink);
    let entries = 0;
    plan.build((e) => {
      tw.add(e);
      entries++;
    });
    tw.end();
    fs.closeSync(fd);
    const layer: BenchLayer = {
      name: plan.name, tar: tarPath, blob: "", digest: "", diffId: `sha256:${sink.hash.digest("hex")}`,
      compressedSize: 0, size: sink.size, entries,
    };
    layers.push(layer);
    log(`generated layer ${plan.name}: ${entries} entries, ${(sink.size / 1e6).toFixed(1)} MB tar in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // compress in the background (zlib runs on the thread pool: layers in parallel)
    const tmp = path.join(work, `${plan.name}.tar.gz`);
    compressions.push(
      pipeline(fs.createReadStream(tarPath, { highWaterMark: 1 << 20 }), zlib.createGzip({ level }), fs.createWriteStream(tmp)).then(() => {
        const hex = sha256File(tmp);
        const blob = path.join(layout, "blobs/sha256", hex);
        fs.renameSync(tmp, blob);
        layer.blob = blob;
        layer.digest = `sha256:${hex}`;
        layer.compressedSize = fs.statSync(blob).size;
      }),
    );
  }
  await Promise.all(compressions);
  const config = JSON.stringify({
    created: "2024-01-01T00:00:00Z",
    architecture: "amd64",
    os: "linux",
    config: { Env: ["PATH=/usr/bin:/bin"], Cmd: ["/bin/sh"] },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((l) => ({ created: "2024-01-01T00:00:00Z", created_by: `bench layer ${l.name}` })),
  });
  const cfg = writeBlob(layout, config);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...cfg },
    layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: l.digest, size: l.compressedSize })),
  });
  const man = writeBlob(layout, manifest);
  fs.writeFileSync(path.join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  fs.writeFileSync(path.join(layout, "index.json"), JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...man, annotations: { "org.opencontainers.image.ref.name": "bench" } }],
  }));
  const image: BenchImage = {
    layout, tag: "bench", layers,
    size: layers.reduce((a, l) => a + l.size, 0),
    compressedSize: layers.reduce((a, l) => a + l.compressedSize, 0),
  };
  fs.writeFileSync(stamp, JSON.stringify({ key, image }, null, 1));
  return image;
}

/**
 * Writes a deterministic rootfs-like tree of about `scaleMB` MB into `dir`
 * (created): the content of the image's base, libs, data and app layers
 * (many small text files, symlinks, machine-code-like binaries, random and
 * zero-filled blobs, a node_modules-like tree), as files on disk, for the
 * benchmarks that commit a tree (`insert`, `repack`). Returns the file count
 * and byte total.
 *
 * @example
 * ```ts
 * const t = generateBenchTree("/tmp/tree", 170);
 * console.log(t.files, t.bytes);
 * ```
 */
export function generateBenchTree(dir: string, scaleMB: number, seed = 1): { files: number; bytes: number } {
  const r = rng(seed);
  const c = new Content(r);
  let files = 0;
  let bytes = 0;
  const madeDirs = new Set<string>();
  const mkdir = (d: string) => {
    if (madeDirs.has(d)) return;
    fs.mkdirSync(d, { recursive: true });
    madeDirs.add(d);
  };
  fs.mkdirSync(dir, { recursive: true });
  for (const plan of plans(scaleMB / 0.85, c, r).slice(0, 4)) {
    plan.build((e) => {
      const p = path.join(dir, e.name);
      if (e.type === "dir") return mkdir(p);
      mkdir(path.dirname(p));
      if (e.type === "symlink") fs.symlinkSync(e.linkname ?? "", p);
      else {
        const data = typeof e.data === "string" ? Buffer.from(e.data) : (e.data ?? new Uint8Array(0));
        fs.writeFileSync(p, data, { mode: e.mode ?? 0o644 });
        files++;
        bytes += data.length;
      }
    });
  }
  return { files, bytes };
}
