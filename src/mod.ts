/**
 * ocigen as a library: open layouts and resolve tags, verify and read blobs,
 * apply layers to a directory, unpack bundles, render systemd units.
 *
 * @module
 */
export * from "./errors.ts";
export { VERSION } from "./version.ts";
