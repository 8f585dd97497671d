/**
 * Conversion of an OCI image config to an OCI runtime-spec `config.json`
 * (image-spec conversion.md), on umoci's default template:
 *
 * - `process.args` = `Entrypoint` + `Cmd` (`["sh"]` when both are empty,
 *   umoci's template); `process.env` = `Env` (plus
 *   `TERM=xterm` as umoci's terminal default and `HOME` from the user's passwd
 *   entry when found and not set); `process.cwd` = `WorkingDir` (default `/`);
 * - `process.user`: `User` (`user`, `uid`, `user:group`, `uid:gid`, ...)
 *   resolved in the rootfs's own `/etc/passwd` and `/etc/group`, read through
 *   the chroot-style resolver (so symlinks in the rootfs cannot make us read
 *   host files); supplementary groups from `/etc/group` membership; a name
 *   that cannot be resolved is an error, or (without a rootfs, when the
 *   caller asks for umoci's `raw runtime-config` behaviour) a warning and 0:0;
 * - `Volumes` become tmpfs mounts (as umoci);
 * - annotations: `Labels`, then `org.opencontainers.image.{os,architecture,
 *   author,created,exposedPorts,stopSignal}`.
 *
 * @module
 */
import process from "node:process";
import type { ImageConfig } from "../oci/types.ts";
import { readFileInRoot } from "../rootfs/read.ts";
import { MAX_DB_BYTES, parseGroup, parsePasswd, type ResolvedUser, resolveUser as resolveImageUser } from "../rootfs/users.ts";

/**
 * A runtime-spec mount.
 *
 * @example
 * ```ts
 * const m: RuntimeMount = { destination: "/data", type: "tmpfs", source: "none" };
 * ```
 */
export interface RuntimeMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

/**
 * The subset of the OCI runtime-spec ocigen writes (a plain JSON object).
 *
 * @example
 * ```ts
 * const spec: RuntimeSpec = convertConfig(config);
 * spec.process.args;
 * ```
 */
export interface RuntimeSpec {
  ociVersion: string;
  process: {
    terminal?: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities?: Record<string, string[]>;
    rlimits?: Array<{ type: string; hard: number; soft: number }>;
    noNewPrivileges?: boolean;
  };
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts: RuntimeMount[];
  annotations?: Record<string, string>;
  linux?: Record<string, unknown>;
  [k: string]: unknown;
}

/**
 * Options of {@linkcode convertConfig}.
 *
 * @example
 * ```ts
 * convertConfig(config, { rootfs: "/b/rootfs", rootless: false } satisfies ConvertOptions);
 * ```
 */
export interface ConvertOptions {
  /** Absolute rootfs path, to resolve user/group names (omit: numeric ids only). */
  rootfs?: string;
  /** `root.path` in the spec (default `"rootfs"`). */
  rootPath?: string;
  /**
   * Rootless spec, as umoci's: user namespace with these mappings (default: container
   * root is the calling user), no network namespace (the host's resolv.conf bound), no cgroup mount.
   */
  rootless?: boolean;
  uidMappings?: Array<{ containerID: number; hostID: number; size: number }>;
  gidMappings?: Array<{ containerID: number; hostID: number; size: number }>;
  /**
   * Without `rootfs`, a `User` naming a user or group cannot be resolved:
   * by default that is an error; with this set it is `warn`ed and the
   * process runs as 0:0, as `umoci raw runtime-config` does.
   */
  unresolvedUserAsRoot?: { warn: (message: string) => void };
}

const CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/**
 * Reads a small file of the rootfs, resolving symlinks inside the root; null if absent/not a file.
 *
 * @example
 * ```ts
 * readRootfsFile("/b/rootfs", "/etc/passwd"); // text, or null
 * ```
 */
export function readRootfsFile(rootfs: string, path: string): string | null {
  try {
    const b = readFileInRoot(rootfs, path, MAX_DB_BYTES, "EUNPACK");
    return b ? new TextDecoder().decode(b) : null;
  } catch {
    return null; // loops, non-regular or oversized files: treat as absent
  }
}

/** The resolved user of a container process (see src/rootfs/users.ts). */
export type { ResolvedUser };

/**
 * Resolves an image config `User` in the rootfs's /etc/passwd and /etc/group
 * (read safely inside the root; without a rootfs, numeric ids only).
 *
 * @example
 * ```ts
 * resolveUser("/b/rootfs", "nobody:nogroup"); // { uid: 65534, gid: 65534, ... }
 * ```
 */
export function resolveUser(rootfs: string | undefined, user: string | undefined): ResolvedUser {
  const passwd = rootfs ? parsePasswd(readRootfsFile(rootfs, "/etc/passwd")) : [];
  const groups = rootfs ? parseGroup(readRootfsFile(rootfs, "/etc/group")) : [];
  return resolveImageUser(user ?? "", passwd, groups, "EUNPACK");
}

/**
 * Converts an image config to a runtime-spec config (umoci's template).
 *
 * @example
 * ```ts
 * const spec = convertConfig(image.config, { rootfs: "/b/rootfs" });
 * spec.process.args; // Entrypoint + Cmd
 * ```
 */
export function convertConfig(image: ImageConfig, opts: ConvertOptions = {}): RuntimeSpec {
  const c = image.config ?? {};
  let user: ResolvedUser;
  try {
    user = resolveUser(opts.rootfs, c.User);
  } catch (e) {
    if (opts.rootfs !== undefined || !opts.unresolvedUserAsRoot) throw e;
    opts.unresolvedUserAsRoot.warn(`${(e as Error).message} without a rootfs: the process runs as 0:0`);
    user = { uid: 0, gid: 0 };
  }
  const env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"];
  const setEnv = (kv: string) => {
    const k = kv.includes("=") ? kv.slice(0, kv.indexOf("=")) : kv;
    const i = env.findIndex((e) => e === k || e.startsWith(k + "="));
    if (i >= 0) env[i] = kv;
    else env.push(kv);
  };
  for (const e of c.Env ?? []) setEnv(e);
  if (user.home && !env.some((e) => e.startsWith("HOME="))) env.push(`HOME=${user.home}`);
  // umoci's template runs `sh` when the image names no command
  const args = [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
  if (args.length === 0) args.push("sh");
  const mounts: RuntimeMount[] = [
    { destination: "/proc", type: "proc", source: "proc" },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", ...(opts.rootless ? [] : ["gid=5"])],
    },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    opts.rootless
      ? { destination: "/sys", type: "bind", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"] }
      : { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
  ];
  if (!opts.rootless) {
    mounts.push({ destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] });
  }
  for (const v of Object.keys(c.Volumes ?? {}).sort()) {
    mounts.push({ destination: v, type: "tmpfs", source: "none", options: ["rw", "nosuid", "nodev", "noexec", "relatime"] });
  }
  // rootless: the host's network is shared (no network namespace), so is its resolver config (as umoci)
  if (opts.rootless) mounts.push({ destination: "/etc/resolv.conf", type: "bind", source: "/etc/resolv.conf", options: ["rbind", "ro"] });
  const annotations: Record<string, string> = { ...(c.Labels ?? {}) };
  if (image.architecture) annotations["org.opencontainers.image.architecture"] = image.architecture;
  if (image.author) annotations["org.opencontainers.image.author"] = image.author;
  if (image.created) annotations["org.opencontainers.image.created"] = image.created;
  const ports = Object.keys(c.ExposedPorts ?? {}).sort();
  if (ports.length) annotations["org.opencontainers.image.exposedPorts"] = ports.join(",");
  if (image.os) annotations["org.opencontainers.image.os"] = image.os;
  if (c.StopSignal) annotations["org.opencontainers.image.stopSignal"] = c.StopSignal;
  const namespaces: Array<{ type: string }> = [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }];
  const linux: Record<string, unknown> = {
    resources: { devices: [{ allow: false, access: "rwm" }] },
    namespaces,
    maskedPaths: [
      "/proc/kcore",
      "/proc/latency_stats",
      "/proc/timer_list",
      "/proc/timer_stats",
      "/proc/sched_debug",
      "/sys/firmware",
      "/proc/scsi",
    ],
    readonlyPaths: ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
  };
  if (opts.rootless) {
    // as umoci's rootless conversion: an unprivileged user cannot set up a network
    // namespace; without explicit maps, container root is the invoking user
    namespaces.splice(namespaces.findIndex((n) => n.type === "network"), 1);
    namespaces.push({ type: "user" });
    delete linux.resources;
    const self = (id: number | undefined) => [{ containerID: 0, hostID: id ?? 0, size: 1 }];
    linux.uidMappings = opts.uidMappings?.length ? opts.uidMappings : self(process.geteuid?.());
    linux.gidMappings = opts.gidMappings?.length ? opts.gidMappings : self(process.getegid?.());
  }
  const userOut: RuntimeSpec["process"]["user"] = { uid: user.uid, gid: user.gid };
  if (user.additionalGids?.length) userOut.additionalGids = user.additionalGids;
  return {
    ociVersion: "1.0.0",
    process: {
      terminal: true,
      user: userOut,
      args,
      env,
      cwd: c.WorkingDir || "/",
      capabilities: { bounding: CAPS, effective: CAPS, inheritable: CAPS, permitted: CAPS, ambient: CAPS },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: opts.rootPath ?? "rootfs" },
    hostname: "ocigen-default",
    mounts,
    annotations,
    linux,
  };
}
