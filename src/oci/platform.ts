/**
 * The host platform in OCI terms, and platform matching for multi-platform
 * tags.
 *
 * @module
 */
import process from "node:process";
import type { Platform } from "./types.ts";

const ARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ia32: "386",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
  mips: "mips",
  mipsel: "mipsle",
};
const OS: Record<string, string> = { linux: "linux", darwin: "darwin", win32: "windows", freebsd: "freebsd" };

/**
 * Maps a Node `process.arch` value to the OCI/Go architecture name.
 *
 * @example
 * ```ts
 * ociArch("x64"); // "amd64"
 * ```
 */
export function ociArch(nodeArch: string): string {
  return ARCH[nodeArch] ?? nodeArch;
}

/**
 * The platform of this host (`linux`/`amd64` on a usual x86-64 Linux).
 * `OCIGEN_PLATFORM=os/arch[/variant]` overrides it (tests, cross use).
 *
 * @example
 * ```ts
 * hostPlatform(); // { os: "linux", architecture: "amd64" }
 * ```
 */
export function hostPlatform(): Platform {
  const env = process.env.OCIGEN_PLATFORM;
  if (env) {
    const [os, architecture, variant] = env.split("/");
    if (os && architecture) return variant ? { os, architecture, variant } : { os, architecture };
  }
  return { os: OS[process.platform] ?? process.platform, architecture: ociArch(process.arch) };
}

/**
 * True if `p` can run on `host`: same os and architecture, and the same
 * variant when both name one.
 *
 * @example
 * ```ts
 * platformMatches({ os: "linux", architecture: "amd64" }, hostPlatform());
 * ```
 */
export function platformMatches(p: Platform, host: Platform): boolean {
  if (p.os !== host.os || p.architecture !== host.architecture) return false;
  if (p.variant && host.variant && p.variant !== host.variant) return false;
  return true;
}

/**
 * Formats a platform as `os/arch[/variant]`.
 *
 * @example
 * ```ts
 * formatPlatform({ os: "linux", architecture: "arm64", variant: "v8" }); // "linux/arm64/v8"
 * ```
 */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? "/" + p.variant : ""}`;
}
