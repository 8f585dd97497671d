/**
 * User/group id maps in umoci's syntax `container:host[:size]` (as for
 * `--uid-map`/`--gid-map`; size defaults to 1), and mapping container ids to
 * host ids.
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
 * Parses `container:host[:size]`. As in umoci, `size` defaults to 1 when
 * omitted (`0:1000` maps container id 0 to host id 1000 only). Throws EINVALID
 * naming the mapping when it does not parse, its size is 0, or its ids
 * overflow.
 *
 * @example
 * ```ts
 * parseIdMap("0:1000:65536"); // { containerID: 0, hostID: 1000, size: 65536 }
 * parseIdMap("0:1000"); // { containerID: 0, hostID: 1000, size: 1 }
 * ```
 */
export function parseIdMap(s: string): IdMapping {
  const bad = (why: string): never => {
    throw new OcigenError("EINVALID", `Cannot parse id map ${JSON.stringify(s)}: ${why}`);
  };
  const m = /^([0-9]+):([0-9]+)(?::([0-9]+))?$/.exec(s.trim());
  if (!m) bad("expected container:host[:size] (decimal ids; size defaults to 1)");
  const r = { containerID: Number(m![1]), hostID: Number(m![2]), size: m![3] === undefined ? 1 : Number(m![3]) };
  if (r.size < 1) bad("size must be at least 1");
  // ids are 32-bit: the last mapped id on either side must fit
  if (r.containerID + r.size - 1 > 0xffffffff || r.hostID + r.size - 1 > 0xffffffff) bad("ids beyond 4294967295");
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
