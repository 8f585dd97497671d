/**
 * Host accounts for the ids of generated services.
 *
 * systemd resolves `User=`/`Group=` in the host's NSS, numeric ids
 * included: on a host without `libnss-systemd` (Debian's minimal and
 * container images) a service with `User=1234` fails with 217/USER unless
 * the host knows uid 1234. So before a service starts, every non-root id it
 * runs as that the host cannot resolve gets an account: `ocigen-u<uid>`
 * (home `/`, shell nologin, primary group the service's gid) and
 * `ocigen-g<gid>`, registered with `systemd-sysusers` (names are at most 18
 * characters, no dots: what sysusers accepts). Ids the host already knows
 * are never touched; since sysusers silently picks another id when the one
 * asked for is taken, each registration is checked afterwards.
 * {@linkcode removeHostAccounts} deletes the accounts of ids no unit needs
 * any more (`gc-extracts`).
 *
 * With `root` set (tests, images) the files under that root are read and
 * `systemd-sysusers --root` writes there; else the host's NSS is asked
 * (`getent`), exactly as systemd would.
 *
 * @module
 */
import * as fs from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { OcigenError } from "../errors.ts";
import { parseGroup, parsePasswd } from "../rootfs/users.ts";

/**
 * Name of the account ocigen registers for uid `id`.
 *
 * @example
 * ```ts
 * userName(1000); // "ocigen-u1000"
 * ```
 */
export const userName = (id: number): string => `ocigen-u${id}`;

/**
 * Name of the group ocigen registers for gid `id`.
 *
 * @example
 * ```ts
 * groupName(1000); // "ocigen-g1000"
 * ```
 */
export const groupName = (id: number): string => `ocigen-g${id}`;

/** The text of `ROOT/etc/<db>` (empty when unreadable). */
function hostDb(db: "passwd" | "group", root = "/"): string {
  try {
    return fs.readFileSync(join(root, "etc", db), "utf8");
  } catch {
    return "";
  }
}

/**
 * True if the host resolves `id` in its user (`passwd`) or group database.
 *
 * @example
 * ```ts
 * hostHasId("passwd", 0); // true
 * ```
 */
export function hostHasId(db: "passwd" | "group", id: number, root?: string): boolean {
  if (root) {
    const text = hostDb(db, root);
    return db === "passwd" ? parsePasswd(text).some((e) => e.uid === id) : parseGroup(text).some((e) => e.gid === id);
  }
  const r = spawnSync("getent", [db, String(id)], { stdio: "ignore" });
  if (r.error) throw new OcigenError("EIO", `Cannot ask the host's user database: getent: ${r.error.message}`);
  return r.status === 0;
}

function lookupName(db: "passwd" | "group", name: string, root?: string): number | null {
  if (root) {
    const text = hostDb(db, root);
    const e = db === "passwd" ? parsePasswd(text).find((x) => x.name === name) : parseGroup(text).find((x) => x.name === name);
    return e ? ("uid" in e ? e.uid : e.gid) : null;
  }
  const r = spawnSync("getent", [db, name], { encoding: "utf8" });
  if (r.status !== 0) return null;
  const f = r.stdout.split(":");
  return Number(f[2]);
}

/**
 * Registers host accounts for `uid` and `gid` when the host lacks them (see
 * the module docs). Returns the names registered (empty: nothing to do).
 *
 * @example
 * ```ts
 * ensureHostIds(1000, 1000); // ["ocigen-g1000", "ocigen-u1000"] on a host without them
 * ```
 */
export function ensureHostIds(uid: number, gid: number, root?: string): string[] {
  const lines: string[] = [];
  const names: string[] = [];
  if (gid !== 0 && !hostHasId("group", gid, root)) {
    lines.push(`g ${groupName(gid)} ${gid}`);
    names.push(groupName(gid));
  }
  if (uid !== 0 && !hostHasId("passwd", uid, root)) {
    lines.push(`u ${userName(uid)} ${uid}:${gid} "ocigen image user" / /usr/sbin/nologin`);
    names.push(userName(uid));
  }
  if (lines.length === 0) return [];
  const r = spawnSync("systemd-sysusers", [...(root ? [`--root=${root}`] : []), "-"], {
    input: lines.join("\n") + "\n",
    encoding: "utf8",
    stdio: ["pipe", "pipe", "pipe"],
  });
  if (r.error) throw new OcigenError("EIO", `Cannot register host accounts for ${uid}:${gid}: systemd-sysusers: ${r.error.message}`);
  if (r.status !== 0) throw new OcigenError("EIO", `Cannot register host accounts for ${uid}:${gid}: ${(r.stderr || "").trim()}`);
  for (const n of names) {
    const want = n === userName(uid) ? uid : gid;
    const got = lookupName(n.startsWith("ocigen-u") ? "passwd" : "group", n, root);
    if (got !== want) throw new OcigenError("EIO", `Cannot register host account ${n} for id ${want}: the host gave it ${got ?? "no id"}`);
  }
  return names;
}

/**
 * Removes the accounts ocigen registered (`ocigen-u<id>`, `ocigen-g<id>`)
 * whose ids are not in `keepUids`/`keepGids`. Returns the names removed
 * (or, with `dryRun`, that would be).
 *
 * @example
 * ```ts
 * removeHostAccounts(new Set([1000]), new Set([1000])); // ["ocigen-u1234", ...]
 * ```
 */
export function removeHostAccounts(keepUids: Set<number>, keepGids: Set<number>, dryRun = false, root?: string): string[] {
  const out: string[] = [];
  const rootArgs = root ? ["--root", root] : [];
  for (const e of parsePasswd(hostDb("passwd", root))) {
    if (e.name !== userName(e.uid) || keepUids.has(e.uid)) continue;
    out.push(e.name);
    if (!dryRun) {
      const r = spawnSync("userdel", [...rootArgs, e.name], { encoding: "utf8" });
      if (r.status !== 0) throw new OcigenError("EIO", `Cannot remove host account ${e.name}: ${(r.stderr || r.error?.message || "").trim()}`);
    }
  }
  for (const g of parseGroup(hostDb("group", root))) {
    if (g.name !== groupName(g.gid) || keepGids.has(g.gid)) continue;
    out.push(g.name);
    if (!dryRun) {
      const r = spawnSync("groupdel", [...rootArgs, g.name], { encoding: "utf8" });
      if (r.status !== 0) throw new OcigenError("EIO", `Cannot remove host group ${g.name}: ${(r.stderr || r.error?.message || "").trim()}`);
    }
  }
  return out;
}
