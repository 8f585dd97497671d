/**
 * Confinement, network, restart and resource lines of a generated service:
 * a pure function of the image config and the per-image settings.
 *
 * Defaults mirror what Docker and Podman give every container, in systemd's
 * own terms (systemd 252 and newer, `RootDirectory=` over the service's
 * overlay root with `MountAPIVFS=yes`):
 * - capabilities: `CapabilityBoundingSet=` is Docker's default set
 *   ({@linkcode DOCKER_CAPABILITIES}), plus `AddCapability=`, minus
 *   `DropCapability=` (Quadlet's keys); a non-root image user also gets the
 *   added ones as `AmbientCapabilities=` (as Podman does), so that e.g.
 *   `AddCapability=CAP_NET_BIND_SERVICE` lets it bind port 80.
 *   `PrivateDevices=yes` makes systemd drop CAP_MKNOD and CAP_SYS_RAWIO from
 *   that set: Docker's device cgroup allows no new device nodes either.
 * - `NoNewPrivileges=yes` (Podman's `--security-opt no-new-privileges`),
 *   `NoNewPrivileges=no` per image lets setuid binaries gain privileges.
 *   systemd implies no_new_privs for a non-root service that has any
 *   seccomp-based option (system-call filter, LockPersonality=, Protect
 *   Clock/KernelModules/KernelLogs=, RestrictNamespaces/Realtime/SUIDSGID=,
 *   RestrictAddressFamilies=, PrivateDevices=), so for a non-root image user
 *   `NoNewPrivileges=no` also leaves those out (ProtectKernelTunables= and
 *   ProtectHostname= too: systemd 252 counts them; the capability bounding
 *   set, the read-only cgroups and ProtectProc= stay).
 * - `SystemCallFilter=` in the spirit of Docker's default seccomp profile:
 *   systemd's `@system-service` allow list, plus `chroot` (Docker grants
 *   CAP_SYS_CHROOT), minus what Docker's profile denies and that list allows
 *   (`@keyring`, `kcmp`, `name_to_handle_at`, `userfaultfd`); denied calls
 *   fail with EPERM (`SystemCallErrorNumber=EPERM`), as in Docker. What
 *   `@system-service` already leaves out and Docker denies too: `@mount`,
 *   `@module`, `@clock`, `@reboot`, `@swap`, `@raw-io`, `@obsolete`,
 *   `@cpu-emulation`, `@debug` (ptrace, perf). Per image,
 *   `SystemCallFilter=` adds calls or groups (`~NAME` denies more) and
 *   `SeccompProfile=unconfined` drops the filter.
 * - kernel and host: `ProtectKernelTunables/Modules/Logs=yes`,
 *   `ProtectControlGroups=yes`, `ProtectClock=yes`, `ProtectHostname=yes`,
 *   `ProtectProc=invisible`, `PrivateDevices=yes`, `PrivateMounts=yes`,
 *   `RestrictNamespaces=yes`, `LockPersonality=yes`, `RestrictRealtime=yes`,
 *   `RestrictSUIDSGID=yes`, `RestrictAddressFamilies=` (unix, inet, inet6,
 *   netlink, packet: what Docker's containers use).
 * - network: the host's (Quadlet `Network=host`) with the host's
 *   `/etc/hosts` and `/etc/hostname` bound read-only into the root (beside
 *   resolv.conf); `Network=none` gives `PrivateNetwork=yes` (loopback only).
 *   Images with `ExposedPorts` (or `NetworkOnline=yes`) are ordered after
 *   `network-online.target` and want it.
 * - restarts: `Restart=on-failure`, `RestartSec=2s`, at most 5 starts in
 *   60 s (`StartLimitBurst=`/`StartLimitIntervalSec=`), then the unit stays
 *   failed; `TimeoutStopSec=10s` (docker stop's grace period); `Type=notify`
 *   with `NotifyAccess=main` when the image label `org.ocigen.notify=true`
 *   or `Notify=yes` says the image speaks sd_notify (the notify socket is
 *   bound into the root); `SyslogIdentifier=` is `LAYOUT:TAG`, so
 *   `journalctl -t LAYOUT:TAG` finds the image's output.
 * - resources: `Memory=`, `CPUQuota=`, `TasksMax=` become `MemoryMax=`,
 *   `CPUQuota=`, `TasksMax=`.
 * Under runc/crun the runtime confines the container itself: only the
 * restart, stop, journal, network ordering and resource lines apply.
 *
 * @module
 */
import type { ImageConfig } from "../oci/types.ts";
import { BOOL } from "./ini.ts";

/**
 * Docker's (Moby's) default capability set, which Podman also starts from.
 *
 * @example
 * ```ts
 * DOCKER_CAPABILITIES.includes("CAP_NET_BIND_SERVICE"); // true
 * ```
 */
export const DOCKER_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
  "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
];

/** Every capability Linux defines (capabilities(7)), for checking setting values. */
const ALL_CAPABILITIES = new Set([
  "CAP_AUDIT_CONTROL", "CAP_AUDIT_READ", "CAP_AUDIT_WRITE", "CAP_BLOCK_SUSPEND", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
  "CAP_KILL", "CAP_LEASE", "CAP_LINUX_IMMUTABLE", "CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE", "CAP_MKNOD", "CAP_NET_ADMIN",
  "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_RAW", "CAP_PERFMON", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
  "CAP_SETUID", "CAP_SYSLOG", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_CHROOT", "CAP_SYS_MODULE", "CAP_SYS_NICE",
  "CAP_SYS_PACCT", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG",
  "CAP_WAKE_ALARM",
]);

/**
 * The default system-call filter: an allow list, then what it denies again.
 *
 * @example
 * ```ts
 * `SystemCallFilter=${DEFAULT_SYSCALL_ALLOW.join(" ")}`; // "SystemCallFilter=@system-service chroot"
 * ```
 */
export const DEFAULT_SYSCALL_ALLOW = ["@system-service", "chroot"];
/**
 * Calls `@system-service` allows that Docker's default seccomp profile denies.
 *
 * @example
 * ```ts
 * DEFAULT_SYSCALL_DENY.includes("@keyring"); // true
 * ```
 */
export const DEFAULT_SYSCALL_DENY = ["@keyring", "kcmp", "name_to_handle_at", "userfaultfd"];

/**
 * The image label that says the image speaks sd_notify.
 *
 * @example
 * ```ts
 * config.config?.Labels?.[NOTIFY_LABEL] === "true"; // Type=notify
 * ```
 */
export const NOTIFY_LABEL = "org.ocigen.notify";

/**
 * What the per-image settings say about confinement, network, restarts and resources (only what they set).
 *
 * @example
 * ```ts
 * const s: SandboxSettings = { addCapabilities: ["CAP_NET_BIND_SERVICE"], memory: "512M" };
 * ```
 */
export interface SandboxSettings {
  /** `AddCapability=`: capabilities added to Docker's set (`ALL` for every one). */
  addCapabilities?: string[];
  /** `DropCapability=`: capabilities removed (`ALL` for every one). */
  dropCapabilities?: string[];
  /** `NoNewPrivileges=`: default yes. */
  noNewPrivileges?: boolean;
  /** `SeccompProfile=`: `default` or `unconfined` (no system-call filter). */
  seccomp?: "default" | "unconfined";
  /** `SystemCallFilter=`: calls or groups allowed besides the default, `~NAME` denied too. */
  systemCalls?: string[];
  /** `Network=`: `host` (default) or `none` (PrivateNetwork=yes). */
  network?: "host" | "none";
  /** `NetworkOnline=`: order after network-online.target (default: when the image exposes ports). */
  networkOnline?: boolean;
  /** `Memory=` -> MemoryMax=. */
  memory?: string;
  /** `CPUQuota=`. */
  cpuQuota?: string;
  /** `TasksMax=`. */
  tasksMax?: string;
  /** `Restart=` (default on-failure). */
  restart?: string;
  /** `RestartSec=` (default 2s). */
  restartSec?: string;
  /** `StartLimitBurst=` (default 5). */
  startLimitBurst?: string;
  /** `StartLimitIntervalSec=` (default 60s). */
  startLimitIntervalSec?: string;
  /** `TimeoutStopSec=` (default 10s). */
  timeoutStopSec?: string;
  /** `Notify=`: Type=notify (default: the image label `org.ocigen.notify`). */
  notify?: boolean;
}

/**
 * The settings keys of `[Image]` this module parses.
 *
 * @example
 * ```ts
 * SANDBOX_KEYS.includes("AddCapability"); // true
 * ```
 */
export const SANDBOX_KEYS: readonly string[] = [
  "AddCapability", "DropCapability", "NoNewPrivileges", "SeccompProfile", "SystemCallFilter", "Network", "NetworkOnline",
  "Memory", "CPUQuota", "TasksMax", "Restart", "RestartSec", "StartLimitBurst", "StartLimitIntervalSec", "TimeoutStopSec", "Notify",
];

const RESTART = ["no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always"];
const TIMESPAN = /^(infinity|([0-9]+(\.[0-9]+)? ?(us|usec|ms|msec|s|sec|seconds?|m|min|minutes?|h|hr|hours?|d|days?)? ?)+)$/;
const SYSCALL = /^~?@?[a-z0-9_-]+(:[A-Za-z0-9]+)?$/;

function capability(word: string, key: string): string {
  const c = word.toUpperCase();
  if (c === "ALL") return c;
  const name = c.startsWith("CAP_") ? c : `CAP_${c}`;
  if (!ALL_CAPABILITIES.has(name)) throw new Error(`${key}= ${JSON.stringify(word)} is not a capability (e.g. CAP_NET_BIND_SERVICE)`);
  return name;
}

/**
 * Parses one `[Image]` key of {@linkcode SANDBOX_KEYS} into `cur` (returned).
 * Lists (capabilities, system calls) add up, an empty value clears them.
 * Throws a plain Error with the reason; the caller names file and line.
 *
 * @example
 * ```ts
 * parseSandboxKey({}, "AddCapability", "CAP_NET_BIND_SERVICE").addCapabilities; // ["CAP_NET_BIND_SERVICE"]
 * parseSandboxKey({}, "Memory", "lots"); // throws: Memory= must be ...
 * ```
 */
export function parseSandboxKey(cur: SandboxSettings, key: string, value: string): SandboxSettings {
  const out: SandboxSettings = { ...cur };
  const v = value.trim();
  const words = v === "" ? [] : v.split(/\s+/);
  const bool = () => {
    const b = BOOL[v.toLowerCase()];
    if (b === undefined) throw new Error(`${key}= must be yes or no, not ${JSON.stringify(value)}`);
    return b;
  };
  const pattern = (re: RegExp, what: string) => {
    if (!re.test(v)) throw new Error(`${key}= must be ${what}, not ${JSON.stringify(value)}`);
    return v;
  };
  switch (key) {
    case "AddCapability":
      out.addCapabilities = v === "" ? [] : [...(cur.addCapabilities ?? []), ...words.map((w) => capability(w, key))];
      break;
    case "DropCapability":
      out.dropCapabilities = v === "" ? [] : [...(cur.dropCapabilities ?? []), ...words.map((w) => capability(w, key))];
      break;
    case "NoNewPrivileges":
      out.noNewPrivileges = bool();
      break;
    case "SeccompProfile":
      if (v !== "default" && v !== "unconfined") throw new Error(`SeccompProfile= must be default or unconfined, not ${JSON.stringify(value)}`);
      out.seccomp = v;
      break;
    case "SystemCallFilter":
      for (const w of words) if (!SYSCALL.test(w)) throw new Error(`SystemCallFilter= ${JSON.stringify(w)} is not a system call or @group`);
      out.systemCalls = v === "" ? [] : [...(cur.systemCalls ?? []), ...words];
      break;
    case "Network":
      if (v !== "host" && v !== "none") throw new Error(`Network= must be host or none, not ${JSON.stringify(value)}`);
      out.network = v;
      break;
    case "NetworkOnline":
      out.networkOnline = bool();
      break;
    case "Memory":
      out.memory = pattern(/^([0-9]+[KMGT]?|[0-9]+(\.[0-9]+)?%|infinity)$/, "bytes with an optional K, M, G or T suffix, a percentage or infinity");
      break;
    case "CPUQuota":
      out.cpuQuota = pattern(/^[0-9]+(\.[0-9]+)?%$/, "a percentage (e.g. 50% or 200%)");
      break;
    case "TasksMax":
      out.tasksMax = pattern(/^([0-9]+|[0-9]+(\.[0-9]+)?%|infinity)$/, "a number, a percentage or infinity");
      break;
    case "Restart":
      if (!RESTART.includes(v)) throw new Error(`Restart= must be one of ${RESTART.join(", ")}, not ${JSON.stringify(value)}`);
      out.restart = v;
      break;
    case "RestartSec":
    case "StartLimitIntervalSec":
    case "TimeoutStopSec": {
      const t = pattern(TIMESPAN, "a time span (e.g. 5s, 1min 30s, infinity)");
      if (key === "RestartSec") out.restartSec = t;
      else if (key === "StartLimitIntervalSec") out.startLimitIntervalSec = t;
      else out.timeoutStopSec = t;
      break;
    }
    case "StartLimitBurst":
      out.startLimitBurst = pattern(/^[0-9]{1,9}$/, "a number");
      break;
    case "Notify":
      out.notify = bool();
      break;
    default:
      throw new Error(`unknown key ${key}=`);
  }
  return out;
}

/**
 * `upper` over `base`: single values of `upper` win; lists add up unless
 * `upper` cleared them (an empty list).
 *
 * @example
 * ```ts
 * mergeSandbox({ addCapabilities: ["CAP_KILL"] }, { addCapabilities: ["CAP_NET_ADMIN"] }).addCapabilities; // ["CAP_KILL", "CAP_NET_ADMIN"]
 * ```
 */
export function mergeSandbox(base: SandboxSettings | undefined, upper: SandboxSettings | undefined): SandboxSettings | undefined {
  if (!upper) return base;
  if (!base) return upper;
  const list = (a?: string[], b?: string[]) => (b === undefined ? a : b.length === 0 ? [] : [...(a ?? []), ...b]);
  return {
    ...base,
    ...upper,
    addCapabilities: list(base.addCapabilities, upper.addCapabilities),
    dropCapabilities: list(base.dropCapabilities, upper.dropCapabilities),
    systemCalls: list(base.systemCalls, upper.systemCalls),
  };
}

/**
 * Input of {@linkcode sandboxLines}.
 *
 * @example
 * ```ts
 * const i: SandboxInput = { config, uid: 0, systemd: true, identifier: "busybox:latest" };
 * ```
 */
export interface SandboxInput {
  /** The image config. */
  config: ImageConfig;
  /** What the settings say (undefined: defaults). */
  settings?: SandboxSettings;
  /** The uid the service runs as (0 when the image names no user). */
  uid: number;
  /** False under runc/crun (the runtime confines the container). */
  systemd: boolean;
  /** `LAYOUT:TAG`, the journal identifier. */
  identifier: string;
}

/**
 * What {@linkcode sandboxLines} returns.
 *
 * @example
 * ```ts
 * const p: SandboxPlan = sandboxLines(input);
 * p.exposedPorts; // ["80/tcp"]
 * ```
 */
export interface SandboxPlan {
  /** `Type=` of the service (`exec` or `notify`). */
  type: "exec" | "notify";
  /** Lines for `[Unit]` (`KEY=VALUE`). */
  unit: string[];
  /** Lines for `[Service]` (`KEY=VALUE`). */
  service: string[];
  /** The image's exposed ports (`80/tcp`...), sorted, for status listings. */
  exposedPorts: string[];
  /** The capability bounding set (before systemd's own implied drops). */
  capabilities: string[];
}

/**
 * The image's `ExposedPorts` keys (`PORT/PROTO`, protocol defaulting to tcp), sorted.
 *
 * @example
 * ```ts
 * exposedPorts({ config: { ExposedPorts: { "80": {}, "53/udp": {} } } } as never); // ["53/udp", "80/tcp"]
 * ```
 */
export function exposedPorts(config: ImageConfig): string[] {
  const p = config.config?.ExposedPorts;
  if (!p || typeof p !== "object") return [];
  const out = new Set<string>();
  for (const k of Object.keys(p)) {
    const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(k.trim());
    if (m) out.add(`${m[1]}${m[2] ? `-${m[2]}` : ""}/${(m[3] ?? "tcp").toLowerCase()}`);
  }
  return [...out].sort((a, b) => parseInt(a) - parseInt(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The capability bounding set: Docker's, plus added, minus dropped (`ALL` in
 * either means every capability).
 *
 * @example
 * ```ts
 * capabilitySet({ dropCapabilities: ["CAP_NET_RAW"] }).includes("CAP_NET_RAW"); // false
 * ```
 */
export function capabilitySet(s: SandboxSettings | undefined): string[] {
  let caps = new Set(DOCKER_CAPABILITIES);
  for (const c of s?.addCapabilities ?? []) {
    if (c === "ALL") caps = new Set(ALL_CAPABILITIES);
    else caps.add(c);
  }
  for (const c of s?.dropCapabilities ?? []) {
    if (c === "ALL") caps.clear();
    else caps.delete(c);
  }
  return [...caps].sort();
}

/**
 * The confinement, network, restart and resource lines of one service (see
 * the module docs for each default and why).
 *
 * @example
 * ```ts
 * const p = sandboxLines({ config, uid: 0, systemd: true, identifier: "busybox:latest" });
 * p.service.includes("NoNewPrivileges=yes"); // true
 * ```
 */
export function sandboxLines(input: SandboxInput): SandboxPlan {
  const s = input.settings ?? {};
  const labels = input.config.config?.Labels ?? {};
  const label = typeof labels[NOTIFY_LABEL] === "string" ? labels[NOTIFY_LABEL].toLowerCase() : undefined;
  // under runc/crun the runtime would have to pass the socket on: notify only under systemd's own sandbox
  const notify = input.systemd && (s.notify ?? (label !== undefined && BOOL[label] === true));
  const ports = exposedPorts(input.config);
  const unit: string[] = [];
  const service: string[] = [];
  const add = (k: string, v: string) => service.push(`${k}=${v}`);

  if (s.networkOnline ?? ports.length > 0) unit.push("Wants=network-online.target", "After=network-online.target");
  unit.push(`StartLimitIntervalSec=${s.startLimitIntervalSec ?? "60s"}`, `StartLimitBurst=${s.startLimitBurst ?? "5"}`);

  // blanks and control characters (possible in layout names) become "_": one word for `journalctl -t`
  add("SyslogIdentifier", input.identifier.replace(/[\x00-\x20\x7f]/g, "_").replaceAll("%", "%%"));
  add("Restart", s.restart ?? "on-failure");
  add("RestartSec", s.restartSec ?? "2s");
  add("TimeoutStopSec", s.timeoutStopSec ?? "10s");
  if (notify) add("NotifyAccess", "main");
  if (s.memory) add("MemoryMax", s.memory);
  if (s.cpuQuota) add("CPUQuota", s.cpuQuota);
  if (s.tasksMax) add("TasksMax", s.tasksMax);
  if (s.network === "none") add("PrivateNetwork", "yes");

  const capabilities = capabilitySet(s);
  if (input.systemd) {
    // the host's view of names, beside resolv.conf (bound by the unit renderer)
    add("BindReadOnlyPaths", "-/etc/hosts -/etc/hostname"); // "-": a host without them (minimal images) still starts
    if (notify) add("BindPaths", "/run/systemd/notify");
    add("CapabilityBoundingSet", capabilities.join(" "));
    const asked = s.addCapabilities ?? [];
    const added = asked.includes("ALL") ? capabilities : capabilities.filter((c) => asked.includes(c));
    if (input.uid !== 0 && added.length > 0) add("AmbientCapabilities", added.join(" "));
    const nnp = s.noNewPrivileges ?? true;
    add("NoNewPrivileges", nnp ? "yes" : "no");
    add("PrivateMounts", "yes");
    add("ProtectControlGroups", "yes");
    add("ProtectProc", "invisible");
    // systemd turns these into no_new_privs for a non-root service: leave them out when setuid must work
    if (nnp || input.uid === 0) {
      add("ProtectKernelTunables", "yes");
      add("ProtectHostname", "yes");
      add("PrivateDevices", "yes");
      add("ProtectKernelModules", "yes");
      add("ProtectKernelLogs", "yes");
      add("ProtectClock", "yes");
      add("RestrictNamespaces", "yes");
      add("LockPersonality", "yes");
      add("RestrictRealtime", "yes");
      add("RestrictSUIDSGID", "yes");
      add("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET");
      if (s.seccomp !== "unconfined") {
        const extra = s.systemCalls ?? [];
        add("SystemCallFilter", [...DEFAULT_SYSCALL_ALLOW, ...extra.filter((c) => !c.startsWith("~"))].join(" "));
        const allowed = new Set(extra.filter((c) => !c.startsWith("~")));
        const deny = [...DEFAULT_SYSCALL_DENY.filter((c) => !allowed.has(c)), ...extra.filter((c) => c.startsWith("~")).map((c) => c.slice(1))];
        if (deny.length > 0) add("SystemCallFilter", "~" + deny.join(" "));
        add("SystemCallErrorNumber", "EPERM");
      }
    }
  }
  return { type: notify ? "notify" : "exec", unit, service, exposedPorts: ports, capabilities };
}
