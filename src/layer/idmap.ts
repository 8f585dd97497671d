/**
 * User/group id maps in umoci's syntax `container:host:size` (as for
 * `--uid-map`/`--gid-map`), and mapping container ids to host ids.
 *
 * @module
 */
import { OcigenError } from "../errors.ts";

/**
 * One id mapping: `size` ids starting at `containerID` map to ids starting at `hostID`.
 *
 * @example
 * ```ts
 * const m: IdMapping = { containerID: 0, hostID: 100000, size: 65536 };
 * ```
 */
export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/**
 * Parses `container:host:size` (size defaults to 1 if omitted, as `container:host`).
 *
 * @example
 * ```ts
 * parseIdMap("0:1000:65536"); // { containerID: 0, hostID: 1000, size: 65536 }
 * ```
 */
export function parseIdMap(s: string): IdMapping {
  const m = /^([0-9]+):([0-9]+)(?::([0-9]+))?$/.exec(s.trim());
  if (!m) throw new OcigenError("EUSAGE", `Cannot parse id map ${JSON.stringify(s)}: expected container:host:size`);
  const r = { containerID: Number(m[1]), hostID: Number(m[2]), size: m[3] === undefined ? 1 : Number(m[3]) };
  if (!Number.isSafeInteger(r.containerID + r.size) || !Number.isSafeInteger(r.hostID + r.size) || r.size < 1) {
    throw new OcigenError("EUSAGE", `Cannot parse id map ${JSON.stringify(s)}: bad range`);
  }
  return r;
}

/**
 * Maps a container id to a host id. With no mappings the id is unchanged;
 * an id outside every mapping is `undefined`.
 *
 * @example
 * ```ts
 * toHost([{ containerID: 0, hostID: 1000, size: 10 }], 3); // 1003
 * ```
 */
export function toHost(maps: IdMapping[] | undefined, id: number): number | undefined {
  if (!maps || maps.length === 0) return id;
  for (const m of maps) if (id >= m.containerID && id < m.containerID + m.size) return m.hostID + (id - m.containerID);
  return undefined;
}

/**
 * Formats a mapping back to `container:host:size`.
 *
 * @example
 * ```ts
 * formatIdMap({ containerID: 0, hostID: 1000, size: 1 }); // "0:1000:1"
 * ```
 */
export function formatIdMap(m: IdMapping): string {
  return `${m.containerID}:${m.hostID}:${m.size}`;
}
