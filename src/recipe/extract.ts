/**
 * The `expand` and `install` steps: archives into a rootfs through the
 * unpack engine's safe layer applier (every path resolved inside the root,
 * as for image layers), never through a host `tar` that could follow a
 * symlink out of the rootfs.
 *
 * An archive is turned into a plain tar stream — decompressed by magic
 * number (gzip via node:zlib, zstd/xz/bzip2 via their commands), or produced
 * by `dpkg-deb --fsys-tarfile` for a `.deb` — and streamed into the applier.
 *
 * `.rpm` packages: `rpm2cpio PKG | cpio -idm` into an empty directory inside a
 * bubblewrap sandbox (host read-only), then copied in with the `copy` rules.
 *
 * @module
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { spawn, spawnSync } from "node:child_process";
import { OcigenError, wrapIo } from "../errors.ts";
import { pipeThroughTransform } from "../stream/transform.ts";
import { copyTree } from "./copy.ts";
import { mkdirInRoot } from "./rootpath.ts";
import { applyTarStreamTo } from "./apply.ts";

/** Compression detected from an archive's first bytes. */
export type ArchiveCompression = "gzip" | "zstd" | "xz" | "bzip2" | "none";

/**
 * Detects the compression of an archive from its magic number.
 *
 * @example
 * ```ts
 * sniffCompression(new Uint8Array([0x1f, 0x8b, 8])); // "gzip"
 * ```
 */
export function sniffCompression(head: Uint8Array): ArchiveCompression {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  if (head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a && head[5] === 0) return "xz";
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return "bzip2";
  return "none";
}

function haveTool(t: string): boolean {
  const r = spawnSync(t, ["--version"], { stdio: "ignore" });
  return !r.error;
}

/** Streams a command's stdout; rejects with its stderr when it fails. */
async function* commandOutput(cmd: string, args: string[], what: string, stdinFile?: string): AsyncGenerator<Uint8Array> {
  const child = spawn(cmd, args, { stdio: [stdinFile ? "pipe" : "ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += String(d)));
  const exited = new Promise<number>((res, rej) => {
    child.on("error", (e) => rej(new OcigenError("EBUILD", `${what}: cannot run ${cmd}: ${e.message}`)));
    child.on("close", (code) => res(code ?? 1));
  });
  if (stdinFile) {
    const rs = fs.createReadStream(stdinFile);
    rs.on("error", () => child.kill());
    child.stdin!.on("error", () => {});
    rs.pipe(child.stdin!);
  }
  for await (const c of child.stdout! as AsyncIterable<Uint8Array>) yield c;
  const code = await exited;
  if (code !== 0) throw new OcigenError("EBUILD", `${what}: ${cmd} failed (exit ${code}): ${stderr.trim().split("\n")[0] ?? ""}`);
}

/**
 * A plain tar stream of a (possibly compressed) tarball.
 *
 * @example
 * ```ts
 * for await (const c of tarballStream("rootfs.tar.xz", "expand")) out.push(c);
 * ```
 */
export function tarballStream(file: string, what: string): AsyncIterable<Uint8Array> {
  const head = new Uint8Array(6);
  try {
    const fd = fs.openSync(file, "r");
    try {
      fs.readSync(fd, head, 0, 6, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw wrapIo(e, "open", file);
  }
  const c = sniffCompression(head);
  const raw = fs.createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>;
  switch (c) {
    case "none":
      return raw;
    case "gzip":
      return pipeThroughTransform(raw, zlib.createGunzip());
    default: {
      const tool = c === "bzip2" ? "bzip2" : c;
      if (!haveTool(tool)) throw new OcigenError("EBUILD", `${what}: ${file} is ${c}-compressed and the ${tool} command is not installed`);
      return commandOutput(tool, ["-dc"], what, file);
    }
  }
}

/**
 * The `expand` step for one tarball.
 *
 * @example
 * ```ts
 * await expandTarball("/specs/cirros.tar.gz", "/tmp/rootfs");
 * ```
 */
export async function expandTarball(file: string, rootfs: string): Promise<void> {
  if (!fs.existsSync(file)) throw new OcigenError("EBUILD", `Cannot expand ${file}: no such file`);
  await applyTarStreamTo(tarballStream(file, `expand ${file}`), rootfs, `expand ${file}`);
}

/**
 * The `install` step for one package (`.deb` or `.rpm`, by extension, then magic).
 * Files only: maintainer scripts are not run.
 *
 * @example
 * ```ts
 * await installPackage("/pkgs/hello_1.0_amd64.deb", "/tmp/rootfs");
 * ```
 */
export async function installPackage(file: string, rootfs: string): Promise<void> {
  if (!fs.existsSync(file)) throw new OcigenError("EBUILD", `Cannot install ${file}: no such file`);
  const what = `install ${file}`;
  const lower = file.toLowerCase();
  const head = new Uint8Array(8);
  const fd = fs.openSync(file, "r");
  try {
    fs.readSync(fd, head, 0, 8, 0);
  } finally {
    fs.closeSync(fd);
  }
  const isDeb = lower.endsWith(".deb") || new TextDecoder().decode(head) === "!<arch>\n";
  const isRpm = lower.endsWith(".rpm") || (head[0] === 0xed && head[1] === 0xab && head[2] === 0xee && head[3] === 0xdb);
  if (isDeb) {
    if (!haveTool("dpkg-deb")) throw new OcigenError("EBUILD", `Cannot ${what}: dpkg-deb is not installed`);
    await applyTarStreamTo(commandOutput("dpkg-deb", ["--fsys-tarfile", file], what), rootfs, what);
    return;
  }
  if (isRpm) {
    await installRpm(file, rootfs, what);
    return;
  }
  throw new OcigenError("EBUILD", `Cannot ${what}: not a .deb or .rpm package`);
}

async function installRpm(file: string, rootfs: string, what: string): Promise<void> {
  for (const t of ["rpm2cpio", "cpio", "bwrap"]) {
    if (!haveTool(t)) throw new OcigenError("EBUILD", `Cannot ${what}: ${t} is not installed (needed for .rpm packages)`);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-rpm-"));
  try {
    const cpioFile = path.join(tmp, "payload.cpio");
    const out = path.join(tmp, "root");
    fs.mkdirSync(out);
    const r1 = spawnSync("rpm2cpio", [file], { stdio: ["ignore", fs.openSync(cpioFile, "w"), "pipe"] });
    if (r1.status !== 0) throw new OcigenError("EBUILD", `Cannot ${what}: rpm2cpio failed: ${String(r1.stderr).trim()}`);
    // cpio runs with only `out` writable, so archive symlinks cannot lead it anywhere else
    const r2 = spawnSync(
      "bwrap",
      ["--ro-bind", "/", "/", "--bind", out, out, "--dev", "/dev", "--chdir", out, "--",
        "cpio", "-idm", "--quiet", "--no-absolute-filenames", "-F", cpioFile],
      { encoding: "utf8" },
    );
    if (r2.status !== 0) throw new OcigenError("EBUILD", `Cannot ${what}: cpio failed: ${String(r2.stderr).trim().split("\n")[0]}`);
    for (const name of fs.readdirSync(out).sort()) {
      // top-level names are plain names; their content is copied by name below the root
      copyTreeMerge(path.join(out, name), rootfs, name);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Merges host tree `src` into `rootfs/rel` (directories merged, not replaced). */
function copyTreeMerge(src: string, rootfs: string, rel: string): void {
  const st = fs.lstatSync(src);
  if (st.isDirectory()) {
    const dest = mkdirInRoot(rootfs, rel);
    for (const n of fs.readdirSync(src).sort()) copyTreeMerge(path.join(src, n), rootfs, `${rel}/${n}`);
    fs.chmodSync(dest, st.mode & 0o7777);
  } else {
    const parentRel = rel.split("/").slice(0, -1).join("/");
    const parent = parentRel ? mkdirInRoot(rootfs, parentRel) : rootfs;
    copyTree(src, path.join(parent, rel.split("/").pop()!));
  }
}

