/**
 * What a service runs, read from the image config and the layout's settings
 * before any unit text is written: the command (Entrypoint + Cmd, or `Exec=`,
 * a relative executable resolved against WorkingDir as container runtimes
 * do), the environment entries systemd accepts, the numeric user and group
 * (see "Users" in src/generator/unit.ts), and the volumes with their paths
 * inside the container checked and normalized. Bad image data is EGENERATE
 * naming the field.
 *
 * @module
 */
import { posix } from "node:path";
import { OcigenError } from "../errors.ts";
import { log } from "../log.ts";
import type { ImageConfig } from "../oci/types.ts";
import { isNumericUser, MAX_ID, type ResolvedUser, resolveUserInRoot } from "../rootfs/users.ts";
import type { VolumeSetting } from "./config.ts";
import { checkExecutable, checkId, isEnvName, listWord } from "./syntax.ts";

/** The host `nobody` ids used as a fail-safe until the image's user is resolved. */
export const NOBODY = 65534;

/**
 * The command (Entrypoint + Cmd) of an image, with a relative executable
 * path resolved against WorkingDir as container runtimes do. Throws
 * EGENERATE when there is no command.
 *
 * @example
 * ```ts
 * imageCommand({ Entrypoint: ["/bin/sh", "-c"], Cmd: ["echo hi"] }); // ["/bin/sh", "-c", "echo hi"]
 * ```
 */
export function imageCommand(rc: ImageConfig["config"]): string[] {
  const ep = rc?.Entrypoint ?? [];
  const cmd = rc?.Cmd ?? [];
  if (!Array.isArray(ep) || !Array.isArray(cmd) || [...ep, ...cmd].some((a) => typeof a !== "string")) {
    throw new OcigenError("EGENERATE", "Entrypoint/Cmd are not lists of strings");
  }
  const argv = [...ep, ...cmd];
  if (argv.length === 0) throw new OcigenError("EGENERATE", "no command: the image config has neither Entrypoint nor Cmd");
  const exe = argv[0];
  if (exe.includes("/") && !exe.startsWith("/")) {
    argv[0] = posix.join(imageWorkingDir(rc) ?? "/", exe);
  } else if (exe.startsWith("/")) {
    argv[0] = posix.normalize(exe);
  }
  checkExecutable(argv[0]);
  return argv;
}

/**
 * The image WorkingDir as an absolute normalized path, or undefined.
 *
 * @example
 * ```ts
 * imageWorkingDir({ WorkingDir: "app/" }); // "/app"
 * ```
 */
export function imageWorkingDir(rc: ImageConfig["config"]): string | undefined {
  const w = rc?.WorkingDir;
  if (typeof w !== "string" || w === "") return undefined;
  let p = posix.normalize("/" + w);
  if (p.length > 1) p = p.replace(/\/+$/, "");
  return p;
}

/**
 * `Environment=` values from the image Env (`K=V` each). Entries without
 * `=` or with names systemd refuses are skipped with a warning.
 *
 * @example
 * ```ts
 * imageEnvironment(["PATH=/usr/bin", "MSG=a b"]); // ["PATH=/usr/bin", '"MSG=a b"']
 * ```
 */
export function imageEnvironment(env: unknown, warn: (msg: string) => void = log.warn): string[] {
  if (env === undefined || env === null) return [];
  if (!Array.isArray(env)) throw new OcigenError("EGENERATE", "Env is not a list");
  const out: string[] = [];
  for (const e of env) {
    if (typeof e !== "string") throw new OcigenError("EGENERATE", "Env holds a non-string");
    const i = e.indexOf("=");
    if (i <= 0 || !isEnvName(e.slice(0, i))) {
      warn(`environment entry ${JSON.stringify(e)} skipped: not NAME=VALUE with a valid name`);
      continue;
    }
    out.push(listWord(e, `Env ${e.slice(0, i)}`));
  }
  return out;
}

/** The ids written into the unit and the `--user` check passed to extract. */
export interface UnitUser {
  ids: ResolvedUser;
  /** `SPEC=UID:GID` for `extract --user`. */
  check: string;
  /** True if the ids were resolved from the image's passwd/group (or are fully numeric). */
  resolved: boolean;
}

/** The uid systemd refuses besides (uid_t)-1 (it is "nobody" of 16-bit ids). */
export const SYSTEMD_INVALID_ID = 65535;

/**
 * Chooses `User=`/`Group=` for image user `spec` (see the module docs).
 * Returns null for an empty spec (root). A spec the image cannot resolve (or
 * with ids systemd refuses) gets the fail-safe 65534:65534 here; the
 * companion unit fails the start with the reason. A numeric id outside
 * 0..4294967294 fails the image here (EGENERATE).
 *
 * @example
 * ```ts
 * unitUser("1000:1000", null); // { ids: { uid: 1000, gid: 1000 }, check: "1000:1000=1000:1000", resolved: true }
 * ```
 */
export function unitUser(spec: string | undefined, extractedRootfs: string | null | undefined): UnitUser | null {
  if (spec === undefined || spec === "") return null;
  if (/[\x00-\x20\x7f=]/.test(spec)) throw new OcigenError("EGENERATE", `Bad image user ${JSON.stringify(spec)}`);
  // A numeric id out of range (or a name that does not resolve) gets the
  // fail-safe ids below and `extract --user` fails the start naming the user
  // and the image (SPEC 4.4): the unit itself stays one systemd accepts.
  let ids: ResolvedUser = { uid: NOBODY, gid: NOBODY };
  let resolved = false;
  try {
    if (extractedRootfs) {
      const r = resolveUserInRoot(extractedRootfs, spec);
      ids = { uid: r.uid, gid: r.gid };
      resolved = true;
    } else if (isNumericUser(spec) && spec.includes(":")) {
      const [u, g] = spec.split(":").map(Number);
      if (u <= MAX_ID && g <= MAX_ID) {
        ids = { uid: u, gid: g };
        resolved = true;
      }
    }
  } catch {
    // unresolvable or out of range: the fail-safe; `extract` fails the start saying why
  }
  if (ids.uid === SYSTEMD_INVALID_ID || ids.gid === SYSTEMD_INVALID_ID) {
    ids = { uid: NOBODY, gid: NOBODY };
    resolved = false;
  }
  checkId(ids.uid, `image user ${JSON.stringify(spec)}: uid`);
  checkId(ids.gid, `image user ${JSON.stringify(spec)}: gid`);
  return { ids, check: `${spec}=${ids.uid}:${ids.gid}`, resolved };
}

/**
 * Checks an absolute path inside the container (a volume or tmpfs path) and
 * returns it normalized; `what` names it in errors.
 *
 * @example
 * ```ts
 * containerPath("/data/", "volume"); // "/data"
 * ```
 */
export function containerPath(p: string, what: string): string {
  if (typeof p !== "string" || !p.startsWith("/")) throw new OcigenError("EGENERATE", `${what} ${JSON.stringify(p)} is not an absolute path`);
  let n = posix.normalize(p);
  if (n.length > 1) n = n.replace(/\/+$/, "");
  if (n === "/") throw new OcigenError("EGENERATE", `${what} ${JSON.stringify(p)} is the root directory`);
  if (!/^[A-Za-z0-9_.@+\/-]+$/.test(n)) {
    throw new OcigenError("EGENERATE", `${what} ${JSON.stringify(p)} holds characters ocigen does not bind (use letters, digits and _.@+-/)`);
  }
  return n;
}

/** One volume of a service: a persistent per-service directory (no `host`) or a host directory. */
export interface PlannedVolume {
  path: string;
  host?: string;
  readOnly: boolean;
}

/**
 * The volumes of a service: the image config's `Volumes` (per-service,
 * read-write), then the settings' `Volume=` entries (a setting for the same
 * path replaces the image's), sorted by path.
 *
 * @example
 * ```ts
 * serviceVolumes({ Volumes: { "/data": {} } }, []); // [{ path: "/data", readOnly: false }]
 * ```
 */
export function serviceVolumes(rc: ImageConfig["config"], extra: readonly VolumeSetting[]): PlannedVolume[] {
  const byPath = new Map<string, PlannedVolume>();
  const vols = rc?.Volumes;
  if (vols !== undefined && vols !== null) {
    if (typeof vols !== "object" || Array.isArray(vols)) throw new OcigenError("EGENERATE", "Volumes is not an object");
    for (const p of Object.keys(vols)) {
      const path = containerPath(p, "image volume");
      byPath.set(path, { path, readOnly: false });
    }
  }
  for (const v of extra) {
    const path = containerPath(v.path, "Volume=");
    const pv: PlannedVolume = { path, readOnly: v.readOnly };
    if (v.host !== undefined) pv.host = containerPath(v.host, "Volume= host directory");
    byPath.set(path, pv);
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The `--volume` word of a planned volume: `PATH`, `PATH:ro`, `HOST:PATH[:ro]` (as `docker run -v`).
 *
 * @example
 * ```ts
 * volumeSpec({ path: "/data", readOnly: false }); // "/data"
 * ```
 */
export function volumeSpec(v: PlannedVolume): string {
  return (v.host ? `${v.host}:` : "") + v.path + (v.readOnly ? ":ro" : "");
}

/**
 * Parses a `--volume` word (see {@linkcode volumeSpec}).
 *
 * @example
 * ```ts
 * parseVolumeSpec("/srv/www:/usr/share/nginx/html:ro"); // { host: "/srv/www", path: "/usr/share/nginx/html", readOnly: true }
 * ```
 */
export function parseVolumeSpec(spec: string): PlannedVolume {
  const parts = spec.split(":");
  let readOnly = false;
  if (parts.length > 1 && (parts[parts.length - 1] === "ro" || parts[parts.length - 1] === "rw")) readOnly = parts.pop() === "ro";
  if (parts.length === 1) return { path: containerPath(parts[0], "volume"), readOnly };
  if (parts.length === 2) return { host: containerPath(parts[0], "volume host directory"), path: containerPath(parts[1], "volume"), readOnly };
  throw new OcigenError("EGENERATE", `Bad volume ${JSON.stringify(spec)}: expected PATH, PATH:ro or HOST:PATH[:ro]`);
}

/**
 * The command of `Exec=` (already split into words), a relative executable
 * resolved against WorkingDir as for the image's own command.
 *
 * @example
 * ```ts
 * commandWith({ WorkingDir: "/app" }, ["./run", "-v"]); // ["/app/run", "-v"]
 * ```
 */
export function commandWith(rc: ImageConfig["config"], exec: readonly string[]): string[] {
  return imageCommand({ WorkingDir: rc?.WorkingDir, Entrypoint: [...exec], Cmd: [] });
}
