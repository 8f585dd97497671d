/**
 * The host platform in OCI terms, and platform matching for multi-platform
 * tags.
 *
 * Names are Go's (`GOOS`/`GOARCH`), as the image-spec says: `linux/amd64`,
 * `linux/arm64/v8`, `linux/arm/v7`. Matching normalises the usual aliases
 * (`x86_64` is `amd64`, `aarch64` is `arm64`) and the default variants
 * (`arm64` is `arm64/v8`, `amd64` is `amd64/v1`, a bare `arm` is `arm/v7`);
 * a platform that names no variant matches every variant of its
 * architecture.
 *
 * The host platform is what this process runs on; a different one is chosen
 * by the caller (`--platform`, the generator's `platform =`, or a per-image
 * `Platform=`), never from the environment.
 *
 * @module
 */
import process from "node:process";
import { OcigenError } from "../errors.ts";
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
 * The platform of this host (`linux`/`amd64` on a usual x86-64 Linux; on
 * 32-bit ARM the variant Node was built for, e.g. `v7`).
 *
 * @example
 * ```ts
 * hostPlatform(); // { os: "linux", architecture: "amd64" }
 * ```
 */
export function hostPlatform(): Platform {
  const p: Platform = { os: OS[process.platform] ?? process.platform, architecture: ociArch(process.arch) };
  if (p.architecture === "arm") {
    const v = (process.config?.variables as Record<string, unknown> | undefined)?.arm_version;
    if (typeof v === "string" && /^[5-8]$/.test(v)) p.variant = `v${v}`;
  }
  return p;
}

const ARCH_ALIAS: Record<string, [string, string?]> = {
  x86_64: ["amd64"],
  "x86-64": ["amd64"],
  aarch64: ["arm64"],
  armhf: ["arm", "v7"],
  armel: ["arm", "v6"],
  i386: ["386"],
  i686: ["386"],
};
const DEFAULT_VARIANT: Record<string, string> = { arm64: "v8", amd64: "v1", arm: "v7" };

/**
 * Normalises a platform: architecture aliases, variants as `vN`, and the
 * default variant dropped (so `arm64/v8` and `arm64` compare equal).
 *
 * @example
 * ```ts
 * normalizePlatform({ os: "linux", architecture: "aarch64", variant: "8" }); // { os: "linux", architecture: "arm64" }
 * ```
 */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  const alias = ARCH_ALIAS[architecture];
  if (alias) {
    architecture = alias[0];
    variant ??= alias[1];
  }
  if (variant && /^[0-9]+$/.test(variant)) variant = "v" + variant;
  if (variant && DEFAULT_VARIANT[architecture] === variant) variant = undefined;
  return variant ? { os, architecture, variant } : { os, architecture };
}

/**
 * Parses `os/arch[/variant]` (Go's names, e.g. `linux/arm64/v8`). Throws
 * ECONFIG naming the value when it is malformed.
 *
 * @example
 * ```ts
 * parsePlatform("linux/arm/v7"); // { os: "linux", architecture: "arm", variant: "v7" }
 * ```
 */
export function parsePlatform(s: string): Platform {
  const parts = s.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(x))) {
    throw new OcigenError("ECONFIG", `platform must be os/arch[/variant] (e.g. linux/arm64/v8), not ${JSON.stringify(s)}`);
  }
  const [os, architecture, variant] = parts;
  return variant ? { os, architecture, variant } : { os, architecture };
}

/**
 * Refuses an image whose config names another platform than `want` (EPLATFORM,
 * naming `what` — the image; "" when the caller's message already does — and
 * both platforms). A config without os/architecture is accepted.
 *
 * @example
 * ```ts
 * checkImagePlatform(img.config, hostPlatform(), "layout busybox tag latest");
 * ```
 */
export function checkImagePlatform(
  config: { os?: string; architecture?: string; variant?: string },
  want: Platform,
  what: string,
): void {
  const got = foreignPlatform(config, want);
  if (got) {
    throw new OcigenError(
      "EPLATFORM",
      `${what ? what + ": " : ""}the image is for ${formatPlatform(got)}, not ${formatPlatform(want)} (choose the platform with --platform or platform =)`,
    );
  }
}

/**
 * The platform an image's config names when it is not `want` (undefined when
 * it matches, or the config names no os/architecture).
 *
 * @example
 * ```ts
 * foreignPlatform({ os: "linux", architecture: "mips64" }, hostPlatform()); // { os: "linux", architecture: "mips64" }
 * ```
 */
export function foreignPlatform(config: { os?: string; architecture?: string; variant?: string }, want: Platform): Platform | undefined {
  if (typeof config.os !== "string" || typeof config.architecture !== "string" || !config.os || !config.architecture) return undefined;
  const got: Platform = { os: config.os, architecture: config.architecture };
  if (typeof config.variant === "string" && config.variant) got.variant = config.variant;
  return platformMatches(got, want) ? undefined : got;
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
  const a = normalizePlatform(p);
  const b = normalizePlatform(host);
  if (a.os !== b.os || a.architecture !== b.architecture) return false;
  if (p.variant && host.variant && a.variant !== b.variant) return false;
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
