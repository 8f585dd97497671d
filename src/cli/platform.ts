/**
 * The `--platform os/arch[/variant]` option of the verbs that pick an image
 * for a platform (`unpack`, `raw unpack`, `extract`).
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import { hostPlatform, parsePlatform } from "../oci/platform.ts";
import type { Platform } from "../oci/types.ts";

/**
 * Parses a `--platform` value; the host's platform when absent. A bad value
 * is a usage error.
 *
 * @example
 * ```ts
 * platformOption("linux/arm64/v8"); // { os: "linux", architecture: "arm64", variant: "v8" }
 * platformOption(undefined);        // hostPlatform()
 * ```
 */
export function platformOption(v: string | undefined): Platform {
  if (v === undefined) return hostPlatform();
  try {
    return parsePlatform(v);
  } catch (e) {
    throw new OcigenError("EUSAGE", `--platform: ${(e as Error).message}`);
  }
}
