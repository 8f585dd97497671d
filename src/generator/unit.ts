/**
 * Rendering the service unit for one tag of one layout (SPEC 4.3).
 *
 * User and group (`User=`/`Group=`): systemd resolves `User=` on the host,
 * even with `RootDirectory=` (a name through the host's NSS; a numeric id
 * must exist in the host's user database too, else the start fails with
 * 217/USER — see get_user_creds() in systemd). So:
 * 1. the generator writes numeric ids only, never an image user name,
 *    resolved from the image's own `/etc/passwd` and `/etc/group` in the
 *    already-extracted rootfs of exactly the manifest the tag points at (a
 *    small confined read; no layer is touched). Before the first extraction
 *    a numeric `uid[:gid]` is written as is (a bare uid gets group 0, as runc
 *    does for a uid not in passwd) and a name as the host's `nobody`
 *    (65534:65534), a fail-safe;
 * 2. the unit passes the image's user and the ids it chose to
 *    `ocigen extract --user SPEC=UID:GID` (in its extract unit), which resolves SPEC in the freshly
 *    extracted rootfs and fails the start (before anything runs) when the
 *    ids differ, telling the operator to `systemctl daemon-reload` (which
 *    re-runs the generator, now finding the extracted rootfs). The same
 *    check catches a tag that moved to an image whose passwd differs;
 * 3. when the host's `/etc/passwd`/`/etc/group` lack those ids, extract adds
 *    nss-systemd drop-in records (`/run/userdb/ocigen-u<uid>.user` and
 *    `<uid>.user`, the same for groups; config `userdbdir`), so systemd can
 *    resolve them when it spawns `ExecStart=` right after.
 *
 * Extraction runs in a companion unit, `ocigen-extract@<unit base>.service`
 * (Type=oneshot, written beside each unit), which the service `Requires=`
 * and is ordered `After=`, so it runs before every start and a failure
 * stops the start. Not `ExecStartPre=+`: every command of a service gets the
 * service's `Environment=`, i.e. the image's Env, and the `+` prefix lifts
 * the sandbox but not the environment — an image setting `LD_PRELOAD`,
 * `NODE_OPTIONS`, `BASH_ENV`, `GLIBC_TUNABLES`, `OPENSSL_CONF`, `PATH`, ...
 * would run its own code as root on the host, e.g. from its extracted rootfs
 * at a predictable path. The companion unit has no image environment at all.
 *
 * @module
 */
import { posix } from "node:path";
import { OcigenError } from "../errors.ts";
import { log } from "../log.ts";
import type { Descriptor, ImageConfig, ImageManifest } from "../oci/types.ts";
import type { LayoutSettings } from "./config.ts";
import { unitRootfs, unitDir } from "./paths.ts";
import { extractUnitName } from "./naming.ts";
import { normalizeSignal } from "./signal.ts";
import { checkExecutable, checkId, checkLineValue, execLine, execWord, isEnvName, listWord } from "./syntax.ts";
import { findInImagePath, isNumericUser, type ResolvedUser, resolveUserInRoot } from "./rootfs.ts";
import { VERSION } from "../version.ts";

/** What the generator knows about one resolved tag (structurally `ResolvedImage` of src/oci/layout.ts). */
export interface ImageInfo {
  manifestDescriptor: Descriptor;
  manifest: ImageManifest;
  config: ImageConfig;
  configDescriptor: Descriptor;
}

/** Everything needed to render one unit. */
export interface UnitInput {
  /** Layout name (path relative to imagelayoutdir). */
  name: string;
  tag: string;
  /** Unit base name (unit name without `.service`). */
  base: string;
  /** Absolute layout directory. */
  layoutDir: string;
  extractsDir: string;
  image: ImageInfo;
  settings: LayoutSettings;
  /** argv prefix running ocigen (absolute executable first). */
  ocigen: readonly string[];
  /** Config file to pass to `extract` (when not the default). */
  configPath?: string;
  /** The store rootfs of this manifest if it is already extracted (for user resolution). */
  extractedRootfs?: string | null;
  /** Receives warnings (default: the logger). */
  warn?: (msg: string) => void;
}

/** The host `nobody` ids used as a fail-safe for unresolved names. */
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
  /** True if the ids were resolved from the image's passwd/group. */
  resolved: boolean;
}

/**
 * Chooses `User=`/`Group=` for image user `spec` (see the module docs).
 * Returns null for an empty spec (root).
 *
 * @example
 * ```ts
 * unitUser("1000:1000", null); // { ids: { uid: 1000, gid: 1000 }, check: "1000:1000=1000:1000", resolved: true }
 * ```
 */
export function unitUser(spec: string | undefined, extractedRootfs: string | null | undefined): UnitUser | null {
  if (spec === undefined || spec === "") return null;
  if (/[\x00-\x20\x7f=]/.test(spec)) throw new OcigenError("EGENERATE", `Bad image user ${JSON.stringify(spec)}`);
  let ids: ResolvedUser;
  let resolved: boolean;
  if (extractedRootfs) {
    ids = resolveUserInRoot(extractedRootfs, spec);
    resolved = true;
  } else if (isNumericUser(spec)) {
    const [u, g] = spec.split(":");
    ids = { uid: Number(u), gid: g === undefined ? 0 : Number(g) };
    resolved = g !== undefined;
  } else {
    ids = { uid: NOBODY, gid: NOBODY };
    resolved = false;
  }
  checkId(ids.uid, `image user ${JSON.stringify(spec)}: uid`);
  checkId(ids.gid, `image user ${JSON.stringify(spec)}: gid`);
  return { ids, check: `${spec}=${ids.uid}:${ids.gid}`, resolved };
}

/**
 * The argv of the extract unit (the `ExecStart=` of `ocigen-extract@BASE.service`)
 * (`--bundle`: also write the runtime-spec `config.json`, runc/crun mode).
 *
 * @example
 * ```ts
 * extractArgv(["/usr/local/bin/ocigen"], "busybox", "latest"); // [..., "extract", "--name", "busybox", "--ref", "latest"]
 * ```
 */
export function extractArgv(
  ocigen: readonly string[],
  name: string,
  tag: string,
  configPath?: string,
  userCheck?: string,
  bundle = false,
): string[] {
  const argv = [...ocigen, "extract"];
  if (configPath) argv.push("--config", configPath);
  argv.push("--name", name, "--ref", tag);
  if (userCheck) argv.push("--user", userCheck);
  if (bundle) argv.push("--bundle");
  return argv;
}

/** A runc-compatible container id for a unit base name. */
export function containerId(base: string): string {
  return base.replace(/[^A-Za-z0-9_.+-]/g, (c) => "_" + c.charCodeAt(0).toString(16).padStart(2, "0"));
}

/** The header comment of every generated unit. */
export function unitHeader(layoutDir: string, tag: string, unit: string): string {
  return `# Generated by ocigen-generator (ocigen ${VERSION}) from the OCI image layout\n` +
    `# ${layoutDir}, tag ${tag}.\n` +
    `# Do not edit: it is regenerated at boot and on daemon-reload. Put changes in\n` +
    `# drop-ins, /etc/systemd/system/${unit}.d/*.conf (systemd.unit(5)).\n`;
}

/**
 * Renders the unit text for `input`.
 *
 * @example
 * ```ts
 * const text = renderUnit(input); // "# Generated by ocigen-generator ...\n[Unit]\n..."
 * ```
 */
export function renderUnit(input: UnitInput): string {
  const { name, tag, base, layoutDir, extractsDir, image, settings } = input;
  const unit = base + ".service";
  const rc = image.config.config ?? {};
  const argv = imageCommand(rc);
  // A plain command name is looked up in the image's PATH inside the extracted rootfs when there is
  // one (as a container runtime would); otherwise systemd's own search path applies.
  if (!argv[0].includes("/") && input.extractedRootfs && settings.runtime === "systemd") {
    const found = findInImagePath(input.extractedRootfs, argv[0], rc.Env ?? undefined);
    if (found) argv[0] = found;
  }
  const lines: string[] = [];
  const add = (k: string, v: string) => lines.push(`${k}=${v}`);
  const runc = settings.runtime !== "systemd";
  const user = runc ? null : unitUser(typeof rc.User === "string" ? rc.User : undefined, input.extractedRootfs);

  const companion = extractUnitName(base);
  lines.push("[Unit]");
  add("Description", checkLineValue(`OCI image ${name}:${tag}`, "Description="));
  add("SourcePath", checkLineValue(layoutDir, "SourcePath="));
  add("RequiresMountsFor", [layoutDir, extractsDir].map((p) => listWord(p, "RequiresMountsFor=")).join(" "));
  add("Requires", companion);
  add("After", companion);
  lines.push("");
  lines.push("[Service]");
  add("Type", "exec");
  add("Slice", "oci.slice");
  if (!runc) {
    for (const e of imageEnvironment(rc.Env, input.warn)) add("Environment", e);
    const wd = imageWorkingDir(rc);
    if (wd) add("WorkingDirectory", checkLineValue(wd, "WorkingDirectory="));
    if (user) {
      add("User", String(user.ids.uid));
      add("Group", String(user.ids.gid));
    }
    add("ExecStart", execLine(argv));
  } else {
    const bundle = unitDir(extractsDir, base);
    const id = containerId(base);
    add("ExecStart", execLine([settings.runtime, "run", "--bundle", bundle, id]));
    add("ExecStopPost", execLine([settings.runtime, "delete", "--force", id], "-"));
  }
  if (typeof rc.StopSignal === "string" && rc.StopSignal !== "") add("KillSignal", normalizeSignal(rc.StopSignal));
  if (!runc) {
    add("RootDirectory", checkLineValue(unitRootfs(extractsDir, base), "RootDirectory="));
    add("MountAPIVFS", "yes");
    add("PrivateTmp", "yes");
    add("ProtectSystem", settings.protectSystem);
    add("ProtectHome", settings.protectHome);
    add("DevicePolicy", "closed");
    add("BindReadOnlyPaths", "/etc/resolv.conf");
  } else {
    add("Delegate", "yes");
  }
  return unitHeader(layoutDir, tag, unit) + lines.join("\n") + "\n";
}

/**
 * The extract argv `renderUnit` pairs with `input` (user check for
 * RootDirectory= units whose image sets a user, `--bundle` for runc/crun).
 *
 * @example
 * ```ts
 * unitExtractArgv(input); // ["/usr/local/bin/ocigen", "extract", "--name", "busybox", "--ref", "latest"]
 * ```
 */
export function unitExtractArgv(input: UnitInput): string[] {
  const rc = input.image.config.config ?? {};
  const runc = input.settings.runtime !== "systemd";
  const user = runc ? null : unitUser(typeof rc.User === "string" ? rc.User : undefined, input.extractedRootfs);
  return extractArgv(input.ocigen, input.name, input.tag, input.configPath, user?.check, runc);
}

/**
 * The companion unit `ocigen-extract@BASE.service` that runs `argv`
 * (`ocigen extract ...`) before unit BASE starts: a oneshot without the
 * image's environment (see the module docs).
 *
 * @example
 * ```ts
 * renderExtractUnit({ name: "busybox", tag: "latest", base: "busybox.ref.latest", layoutDir, extractsDir }, argv);
 * ```
 */
export function renderExtractUnit(
  u: { name: string; tag: string; base: string; layoutDir: string; extractsDir: string },
  argv: readonly string[],
): string {
  const companion = extractUnitName(u.base);
  return unitHeader(u.layoutDir, u.tag, companion) + [
    "[Unit]",
    `Description=${checkLineValue(`Extract OCI image ${u.name}:${u.tag} for ${u.base}.service`, "Description=")}`,
    `SourcePath=${checkLineValue(u.layoutDir, "SourcePath=")}`,
    `RequiresMountsFor=${[u.layoutDir, u.extractsDir].map((p) => listWord(p, "RequiresMountsFor=")).join(" ")}`,
    "",
    "[Service]",
    "Type=oneshot",
    "Slice=oci.slice",
    `ExecStart=${execLine(argv)}`,
    "",
  ].join("\n");
}

/** Re-exported for the Atomic template renderer. */
export { execWord };
