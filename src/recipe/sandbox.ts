/**
 * Running a build script inside a rootfs with the best isolation available:
 *
 * 1. `bwrap` (bubblewrap): rootfs bound at `/`, fresh `/dev` and `/proc`,
 *    new PID/IPC/UTS namespaces, dies with ocigen;
 * 2. `unshare --mount --pid --ipc --uts --fork --root=ROOTFS` (root only);
 * 3. `chroot ROOTFS` (root only).
 *
 * Probed once per process (a trial run of `true`), unless the caller forces
 * a method (the settings' `isolation`, `OCIGEN_ISOLATION`). No shell ever sees a file
 * name: every command is an argv array; the script itself is passed as one
 * argument to `/bin/sh -c` inside the rootfs.
 *
 * @module
 */
import fs from "node:fs";
import process from "node:process";
import { spawn, spawnSync } from "node:child_process";
import { OcigenError } from "../errors.ts";

/** An isolation method. */
export type Isolation = "bwrap" | "unshare" | "chroot";

/** The isolation asked for: probed (`auto`), one method, or `none` (run scripts are refused). */
export type IsolationChoice = Isolation | "auto" | "none";

let probed: Isolation | null | undefined;

function works(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: "ignore", timeout: 10_000 });
  return !r.error && r.status === 0;
}

/**
 * The best isolation method that works here, or null. `choice` (`bwrap`,
 * `unshare`, `chroot`, `none`) overrides the probe.
 *
 * @example
 * ```ts
 * detectIsolation(); // "bwrap"
 * detectIsolation("none"); // null
 * ```
 */
export function detectIsolation(choice: IsolationChoice = "auto"): Isolation | null {
  const forced = choice;
  if (forced === "bwrap" || forced === "unshare" || forced === "chroot") return forced;
  if (forced === "none") return null;
  if (probed !== undefined) return probed;
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  if (works("bwrap", ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--", "true"])) probed = "bwrap";
  else if (isRoot && works("unshare", ["--mount", "--pid", "--fork", "--root=/", "true"])) probed = "unshare";
  else if (isRoot && works("chroot", ["/", "true"])) probed = "chroot";
  else probed = null;
  return probed;
}

/**
 * The environment a build script gets (nothing of ocigen's own environment).
 *
 * @example
 * ```ts
 * BUILD_ENV.PATH; // "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
 * ```
 */
export const BUILD_ENV: Record<string, string> = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/root",
  TERM: "dumb",
  LANG: "C.UTF-8",
};

/**
 * Capabilities a build script keeps under bwrap when ocigen runs as root.
 *
 * @example
 * ```ts
 * BUILD_CAPS.includes("CAP_SYS_ADMIN"); // false
 * ```
 */
export const BUILD_CAPS: readonly string[] = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
  "CAP_SETPCAP", "CAP_SETFCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE",
];

function isRootNow(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/**
 * The argv that runs `argv` inside `rootfs` with `method`.
 *
 * @example
 * ```ts
 * sandboxArgv("bwrap", "/b/rootfs", ["/bin/sh", "-c", "echo hi"]);
 * // ["bwrap", "--bind", "/b/rootfs", "/", ...]
 * ```
 */
export function sandboxArgv(method: Isolation, rootfs: string, argv: string[]): string[] {
  switch (method) {
    case "bwrap":
      return [
        "bwrap",
        "--bind", rootfs, "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        // as root bwrap keeps every capability: CAP_SYS_ADMIN (mount), CAP_MKNOD (raw host disks, no
        // device cgroup here), CAP_SYS_MODULE, CAP_DAC_READ_SEARCH (open_by_handle_at), ... would let a
        // hostile image's /bin/sh leave the sandbox. Keep what package managers need (Docker's defaults
        // without MKNOD and NET_RAW: the network namespace is the host's).
        ...(isRootNow() ? ["--cap-drop", "ALL", ...BUILD_CAPS.flatMap((c) => ["--cap-add", c])] : []),
        "--die-with-parent",
        "--chdir", "/",
        "--",
        ...argv,
      ];
    case "unshare":
      return ["unshare", "--mount", "--pid", "--ipc", "--uts", "--fork", `--root=${rootfs}`, "--wd=/", ...argv];
    case "chroot":
      return ["chroot", rootfs, ...argv];
  }
}

/**
 * Runs `script` with `/bin/sh -c` inside `rootfs`. Output goes to ocigen's
 * stderr. Throws EBUILD naming the script as `what` (e.g. `the run script of
 * target cirros`) when it fails (`<what> failed (exit 3, isolation bwrap)`),
 * when the rootfs has no `/bin/sh`, or when no isolation is available
 * (`Cannot run <what>: ...`).
 *
 * @example
 * ```ts
 * await runInRootfs("/tmp/rootfs", "echo hello > /hw", "the run script of target cirros");
 * ```
 */
export async function runInRootfs(rootfs: string, script: string, what: string, isolation: IsolationChoice = "auto"): Promise<void> {
  const method = detectIsolation(isolation);
  if (!method) {
    throw new OcigenError(
      "EBUILD",
      `Cannot run ${what}: no isolation available (install bubblewrap, or run as root for unshare/chroot)`,
    );
  }
  let sh: fs.Stats | undefined;
  try {
    sh = fs.lstatSync(rootfs + "/bin/sh");
  } catch { /* missing */ }
  if (!sh) throw new OcigenError("EBUILD", `Cannot run ${what}: the rootfs has no /bin/sh`);
  // bwrap creates missing mount points (/dev, /proc): remove the ones it made
  const made = ["dev", "proc"].filter((d) => !fs.existsSync(`${rootfs}/${d}`));
  const argv = sandboxArgv(method, rootfs, ["/bin/sh", "-c", script]);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(argv[0], argv.slice(1), { env: BUILD_ENV, stdio: ["ignore", "pipe", "pipe"] });
      child.stdout!.on("data", (d) => process.stderr.write(d));
      child.stderr!.on("data", (d) => process.stderr.write(d));
      child.on("error", (e) => reject(new OcigenError("EBUILD", `Cannot run ${what} with ${method}: ${e.message}`)));
      child.on("close", (code, sig) => {
        if (code === 0) resolve();
        else reject(new OcigenError("EBUILD", `${what} failed (${sig ? `signal ${sig}` : `exit ${code}`}, isolation ${method})`));
      });
    });
  } finally {
    for (const d of made) {
      try {
        fs.rmdirSync(`${rootfs}/${d}`);
      } catch { /* not empty or gone: keep */ }
    }
  }
}
