/**
 * Rendering the service unit for one tag of one layout (SPEC 4.3, 4.4), and
 * its companion unit.
 *
 * Two units per tag:
 * - `BASE.service` runs the image's command in its own root,
 *   `RootDirectory=RUNDIR/<name>/root` (see state.ts): a real directory, an
 *   overlay of the shared, read-only store rootfs of exactly the manifest the
 *   tag pointed at when the unit was generated, with a writable layer of its
 *   own that is dropped when the service stops (podman run --rm). systemd
 *   refuses a symlinked root (226/NAMESPACE), and the mount points it creates
 *   (dev/, proc/, sys/, etc/resolv.conf, volume paths) land in that layer,
 *   never in the store. `ReadOnly=yes` makes the root read-only
 *   (`ProtectSystem=strict` inside it); `/tmp` and `/var/tmp` are always
 *   private (`PrivateTmp=`), `/run` is the writable layer's (a private tmpfs
 *   when read-only). Each image `Volumes` path and each per-service
 *   `Volume=PATH` is bound from its persistent directory (`BindPaths=`),
 *   host volumes `Volume=HOST:PATH[:ro]` from the host.
 * - `ocigen-extract@BASE.service` (Type=oneshot, RemainAfterExit=yes) runs
 *   `ocigen extract --service ...` as root before the service
 *   (`BindsTo=` + `After=`): verify and extract the manifest into the store
 *   (a no-op when there), seed missing volume directories, register host
 *   accounts for the service's ids, mount the overlay. Its `ExecStop=`
 *   (`ocigen extract --release`) unmounts it and drops the writable layer;
 *   `PartOf=` the service makes a stop or restart of the service stop or
 *   restart it too (so each start begins from the image's content), and
 *   `StopWhenUnneeded=yes` stops it when the service ends on its own.
 *   It is a separate unit, not `ExecStartPre=+`: every command of a service
 *   gets the service's `Environment=`, i.e. the image's Env, and the `+`
 *   prefix lifts the sandbox but not the environment — an image setting
 *   `LD_PRELOAD`, `NODE_OPTIONS`, `BASH_ENV`, `GLIBC_TUNABLES`, `PATH`, ...
 *   would run its own code as root on the host. The companion has none.
 *
 * Users (`User=`/`Group=`): systemd resolves `User=` on the host, even with
 * `RootDirectory=`, and even a numeric id must resolve in the host's NSS
 * (else 217/USER). So units carry numeric ids only, resolved from the
 * image's own passwd/group in the store rootfs of the tag's manifest; the
 * companion registers host accounts for ids the host lacks (hostusers.ts).
 * Before the first extraction a numeric `uid:gid` is written as is and
 * anything else as 65534:65534, a fail-safe; the companion then resolves
 * the user in the fresh rootfs and, when the ids differ, runs
 * `systemctl daemon-reload` (the generator now finds the rootfs) before the
 * queued start proceeds with the new unit text — no manual step. A user the
 * image cannot resolve fails the companion, hence the start, with an error
 * naming the user and the image.
 *
 * @module
 */
import { posix } from "node:path";
import { OcigenError } from "../errors.ts";
import { log } from "../log.ts";
import type { Descriptor, ImageConfig, ImageManifest } from "../oci/types.ts";
import type { LayoutSettings, VolumeSetting } from "./config.ts";
import { unitDir } from "../store/paths.ts";
import { extractUnitName } from "./naming.ts";
import { normalizeSignal, signalNumber } from "./signal.ts";
import { checkExecutable, checkId, checkLineValue, execLine, execWord, isEnvName, listWord, unitIdText } from "./syntax.ts";
import { findInImagePath } from "../rootfs/read.ts";
import { DEFAULT_RUN_DIR, DEFAULT_VOLUMES_DIR, serviceRoot, volumeDir } from "./state.ts";
import { commandWith, containerPath, imageCommand, imageEnvironment, imageWorkingDir, type PlannedVolume, serviceVolumes, type UnitUser, unitUser, volumeSpec } from "./service.ts";
import { sandboxLines } from "./sandbox.ts";
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
  /** Parent of the services' roots (state.ts; default /run/ocigen). */
  runDir?: string;
  /** Parent of the services' volumes (state.ts; default /var/lib/ocigen/volumes). */
  volumesDir?: string;
  image: ImageInfo;
  settings: LayoutSettings;
  /** argv prefix running ocigen (absolute executable first). */
  ocigen: readonly string[];
  /** Config file to pass to `extract` (when not the default). */
  configPath?: string;
  /** The store rootfs of this manifest if it is already extracted (for user and PATH resolution). */
  extractedRootfs?: string | null;
  /** Receives warnings (default: the logger). */
  warn?: (msg: string) => void;
}

/** What a service runs, computed once for the unit and its companion. */
interface ServicePlan {
  argv: string[];
  user: UnitUser | null;
  volumes: PlannedVolume[];
  tmpfs: { path: string; options?: string }[];
  /** The unit was rendered without the rootfs and needs it (a plain command name): reload after extracting. */
  reload: boolean;
}

function planService(input: UnitInput): ServicePlan {
  const { settings } = input;
  const rc = input.image.config.config ?? {};
  const argv = settings.exec && settings.exec.length > 0 ? commandWith(rc, settings.exec) : imageCommand(rc);
  const systemd = settings.runtime === "systemd";
  let reload = false;
  // A plain command name is looked up in the image's PATH inside the extracted rootfs (as a container
  // runtime would); before the first extraction, the companion reloads systemd once it is there.
  if (!argv[0].includes("/") && systemd) {
    const found = input.extractedRootfs ? findInImagePath(input.extractedRootfs, argv[0], imageEnvList(rc.Env, settings)) : null;
    if (found) argv[0] = found;
    else if (!input.extractedRootfs) reload = true;
  }
  const spec = settings.user ?? (typeof rc.User === "string" ? rc.User : undefined);
  const user = unitUser(spec, input.extractedRootfs);
  const tmpfs = settings.tmpfs.map((t) => ({ path: containerPath(t.path, "Tmpfs="), options: t.options }));
  return { argv, user, volumes: serviceVolumes(rc, settings.volumes), tmpfs, reload };
}

/** The image Env with the settings' `Environment=` applied (for the PATH lookup). */
function imageEnvList(env: unknown, settings: LayoutSettings): string[] {
  const out = Array.isArray(env) ? env.filter((e): e is string => typeof e === "string") : [];
  for (const [k, v] of settings.environment) out.push(`${k}=${v}`);
  return out;
}

/**
 * The argv of the companion unit's `ExecStart=`: `ocigen extract --service`
 * with the manifest the unit was generated for and what it needs to prepare
 * (user check, volumes, read-only root, runc bundle).
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
  service?: { manifest: string; volumes: PlannedVolume[]; tmpfs?: { path: string; options?: string }[]; readOnly: boolean; reload: boolean; env?: [string, string][]; exec?: string[] },
): string[] {
  const argv = [...ocigen, "extract"];
  if (configPath) argv.push("--config", configPath);
  argv.push("--name", name, "--ref", tag);
  if (service) argv.push("--manifest", service.manifest, "--service");
  if (userCheck) argv.push("--user", userCheck);
  if (service) {
    for (const v of service.volumes) argv.push("--volume", volumeSpec(v));
    if (service.readOnly) argv.push("--read-only");
    if (service.reload) argv.push("--reload");
    if (bundle) {
      for (const t of service.tmpfs ?? []) argv.push("--tmpfs", t.options ? `${t.path}:${t.options}` : t.path);
      for (const [k, v] of service.env ?? []) argv.push("--env", `${k}=${v}`);
      for (const w of service.exec ?? []) argv.push("--exec", w);
    }
  }
  if (bundle) argv.push("--bundle");
  return argv;
}

/**
 * The argv of the companion unit's `ExecStop=`: unmount the service's root
 * and drop its writable layer.
 *
 * @example
 * ```ts
 * releaseArgv(["/usr/local/bin/ocigen"], "busybox", "latest"); // [..., "extract", "--name", "busybox", "--ref", "latest", "--release"]
 * ```
 */
export function releaseArgv(ocigen: readonly string[], name: string, tag: string, configPath?: string): string[] {
  const argv = [...ocigen, "extract"];
  if (configPath) argv.push("--config", configPath);
  argv.push("--name", name, "--ref", tag, "--release");
  return argv;
}

/**
 * A runc-compatible container id for a unit base name.
 *
 * @example
 * ```ts
 * containerId("app.ref.tag\\x2bbuild"); // "app.ref.tag_5cx2bbuild"
 * ```
 */
export function containerId(base: string): string {
  return base.replace(/[^A-Za-z0-9_.+-]/g, (c) => "_" + c.charCodeAt(0).toString(16).padStart(2, "0"));
}

/**
 * The header comment of every generated unit.
 *
 * @example
 * ```ts
 * unitHeader("/var/lib/oci/layouts/busybox", "latest", "busybox.ref.latest.service");
 * ```
 */
export function unitHeader(layoutDir: string, tag: string, unit: string): string {
  return `# Generated by ocigen-generator (ocigen ${VERSION}) from the OCI image layout\n` +
    `# ${layoutDir}, tag ${tag}.\n` +
    `# Do not edit: it is regenerated at boot and on daemon-reload. Put changes in\n` +
    `# drop-ins, /etc/systemd/system/${unit}.d/*.conf (systemd.unit(5)).\n`;
}

const OFF = new Set(["no", "false"]);

/**
 * Renders the unit text for `input` (see the module docs).
 *
 * @example
 * ```ts
 * const text = renderUnit(input); // "# Generated by ocigen-generator ...\n[Unit]\n..."
 * ```
 */
export function renderUnit(input: UnitInput): string {
  return renderPlanned(input, planService(input));
}

/**
 * {@linkcode renderUnit} and {@linkcode unitExtractArgv} of one input, from
 * one plan of its service (which may read the rootfs: its users, its PATH).
 *
 * @example
 * ```ts
 * const { text, extract } = renderUnitAndArgv(input);
 * const companion = renderExtractUnit(input, extract);
 * ```
 */
export function renderUnitAndArgv(input: UnitInput): { text: string; extract: string[] } {
  const plan = planService(input);
  return { text: renderPlanned(input, plan), extract: extractArgvOf(input, plan) };
}

function renderPlanned(input: UnitInput, plan: ServicePlan): string {
  const { name, tag, base, layoutDir, extractsDir, image, settings } = input;
  const unit = base + ".service";
  const rc = image.config.config ?? {};
  const lines: string[] = [];
  const add = (k: string, v: string) => lines.push(`${k}=${v}`);
  const runc = settings.runtime !== "systemd";
  const companion = extractUnitName(base);
  const mounts = [layoutDir, extractsDir];
  if (plan.volumes.some((v) => !v.host)) mounts.push(input.volumesDir ?? DEFAULT_VOLUMES_DIR);
  lines.push("[Unit]");
  add("Description", checkLineValue(`OCI image ${name}:${tag}`, "Description="));
  add("SourcePath", checkLineValue(layoutDir, "SourcePath="));
  add("RequiresMountsFor", mounts.map((p) => listWord(p, "RequiresMountsFor=")).join(" "));
  add("BindsTo", companion);
  add("After", companion);
  const sandbox = sandboxLines({ config: image.config, settings: settings.sandbox, uid: plan.user?.ids.uid ?? 0, systemd: !runc, identifier: `${name}:${tag}` });
  lines.push(...sandbox.unit, "");
  lines.push("[Service]");
  add("Type", sandbox.type);
  add("Slice", "oci.slice");
  if (!runc) {
    for (const e of imageEnvironment(rc.Env, input.warn)) add("Environment", e);
    for (const [k, v] of settings.environment) {
      if (!isEnvName(k)) throw new OcigenError("EGENERATE", `Environment= name ${JSON.stringify(k)} is not valid`);
      add("Environment", listWord(`${k}=${v}`, `Environment ${k}`));
    }
    const wd = imageWorkingDir(rc);
    if (wd) add("WorkingDirectory", checkLineValue(wd, "WorkingDirectory="));
    if (plan.user) {
      add("User", unitIdText(plan.user.ids.uid, "User="));
      add("Group", unitIdText(plan.user.ids.gid, "Group="));
    }
    add("ExecStart", execLine(plan.argv));
  } else {
    const bundle = unitDir(extractsDir, base);
    const id = containerId(base);
    add("ExecStart", execLine([settings.runtime, "run", "--bundle", bundle, id]));
    // The container's first process is PID 1 of its namespace: the kernel drops every signal it has no
    // handler for (a shell ignores SIGTERM), so stop as `docker stop` does: the stop signal through the
    // runtime, up to 10 s, then SIGKILL. The runtime then exits 128+signal: a clean stop.
    const sig: string = typeof rc.StopSignal === "string" && rc.StopSignal !== "" ? normalizeSignal(rc.StopSignal) : "SIGTERM";
    const q = (w: string) => `'${w}'`; // runtime paths and ids are checked: no quote inside
    if (/'/.test(settings.runtime + id)) throw new OcigenError("EGENERATE", `runtime ${JSON.stringify(settings.runtime)} holds a quote`);
    add("ExecStop", execLine(["/bin/sh", "-c",
      `${q(settings.runtime)} kill ${q(id)} ${sig.slice(3)} 2>/dev/null; i=0; while [ $i -lt 10 ] && ${q(settings.runtime)} state ${q(id)} >/dev/null 2>&1; do sleep 1; i=$((i+1)); done; ${q(settings.runtime)} kill ${q(id)} KILL 2>/dev/null; true`]));
    add("ExecStopPost", execLine([settings.runtime, "delete", "--force", id], "-"));
    add("SuccessExitStatus", [...new Set([137, 143, 128 + signalNumber(sig)])].join(" "));
  }
  if (!runc && typeof rc.StopSignal === "string" && rc.StopSignal !== "") add("KillSignal", normalizeSignal(rc.StopSignal));
  if (!runc) {
    add("RootDirectory", checkLineValue(serviceRoot(input.runDir ?? DEFAULT_RUN_DIR, base), "RootDirectory="));
    add("MountAPIVFS", "yes");
    add("PrivateTmp", "yes");
    if (settings.readOnly) {
      add("ProtectSystem", "strict");
      add("TemporaryFileSystem", "/run:mode=0755");
    } else if (!OFF.has(settings.protectSystem)) add("ProtectSystem", settings.protectSystem);
    if (!OFF.has(settings.protectHome)) add("ProtectHome", settings.protectHome);
    add("DevicePolicy", "closed");
    add("BindReadOnlyPaths", "/etc/resolv.conf");
    for (const v of plan.volumes) {
      const src = v.host ?? volumeDir(input.volumesDir ?? DEFAULT_VOLUMES_DIR, base, v.path);
      add(v.readOnly ? "BindReadOnlyPaths" : "BindPaths", checkLineValue(`${src}:${v.path}`, "BindPaths="));
    }
    for (const t of plan.tmpfs) {
      add("TemporaryFileSystem", checkLineValue(t.options ? `${t.path}:${t.options}` : t.path, "TemporaryFileSystem="));
    }
  } else {
    add("Delegate", "yes");
  }
  lines.push(...sandbox.service);
  for (const l of settings.serviceLines) {
    if (!/^[A-Za-z][A-Za-z0-9]*=/.test(l)) throw new OcigenError("EGENERATE", `[Service] line ${JSON.stringify(l)} is not KEY=VALUE`);
    lines.push(checkLineValue(l, "[Service] line").replaceAll("%%", "%"));
  }
  return unitHeader(layoutDir, tag, unit) + lines.join("\n") + "\n";
}

/**
 * The argv of the companion's `ExecStart=` that `renderUnit` pairs with `input`.
 *
 * @example
 * ```ts
 * unitExtractArgv(input); // ["/usr/local/bin/ocigen", "extract", "--name", "busybox", "--ref", "latest", "--manifest", "sha256:…", "--service"]
 * ```
 */
export function unitExtractArgv(input: UnitInput): string[] {
  return extractArgvOf(input, planService(input));
}

function extractArgvOf(input: UnitInput, plan: ServicePlan): string[] {
  const runc = input.settings.runtime !== "systemd";
  const check = plan.user ? (runc ? plan.user.check.slice(0, plan.user.check.lastIndexOf("=")) : plan.user.check) : undefined;
  return extractArgv(input.ocigen, input.name, input.tag, input.configPath, check, runc, {
    manifest: input.image.manifestDescriptor.digest,
    volumes: plan.volumes,
    tmpfs: plan.tmpfs,
    readOnly: input.settings.readOnly,
    reload: plan.reload || (!runc && plan.user !== null && !plan.user.resolved),
    env: input.settings.environment,
    exec: input.settings.exec,
  });
}

/**
 * The companion unit `ocigen-extract@BASE.service` (see the module docs):
 * runs `argv` (`ocigen extract --service ...`) before unit BASE starts and
 * `stop` (`ocigen extract --release`) after it stops.
 *
 * @example
 * ```ts
 * renderExtractUnit({ name: "busybox", tag: "latest", base: "busybox.ref.latest", layoutDir, extractsDir }, argv, stop);
 * ```
 */
export function renderExtractUnit(
  u: { name: string; tag: string; base: string; layoutDir: string; extractsDir: string; volumesDir?: string },
  argv: readonly string[],
  stop?: readonly string[],
): string {
  const companion = extractUnitName(u.base);
  const mounts = [u.layoutDir, u.extractsDir];
  // it seeds the service's volumes: their directory must be mounted too
  if (u.volumesDir && argv.includes("--volume")) mounts.push(u.volumesDir);
  return unitHeader(u.layoutDir, u.tag, companion) + [
    "[Unit]",
    `Description=${checkLineValue(`Root filesystem of OCI image ${u.name}:${u.tag} for ${u.base}.service`, "Description=")}`,
    `SourcePath=${checkLineValue(u.layoutDir, "SourcePath=")}`,
    `RequiresMountsFor=${mounts.map((p) => listWord(p, "RequiresMountsFor=")).join(" ")}`,
    `PartOf=${u.base}.service`,
    "StopWhenUnneeded=yes",
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    "Slice=oci.slice",
    `ExecStart=${execLine(argv)}`,
    ...(stop ? [`ExecStop=${execLine(stop)}`] : []),
    "",
  ].join("\n");
}

/** Re-exported for the Atomic template renderer. */
export { execWord };
