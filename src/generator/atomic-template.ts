/**
 * Project Atomic system container templates (`atomic install --system`):
 * an image shipping `/exports/service.template` gets that template rendered
 * as its unit, instead of the unit ocigen would write.
 *
 * Where the template comes from: the generator never extracts layers, and
 * the file can be in any layer, so the template is read from the image's
 * rootfs already extracted in the store for exactly the manifest the tag
 * points at (`EXTRACTS/.store/<alg>/<hex>/rootfs/exports/service.template`,
 * read with symlinks confined to that rootfs, at most 256 KiB). Before the
 * first extraction the image gets the normal ocigen unit, whose extract unit
 * extracts it; the next `systemctl daemon-reload` (or boot) switches to the
 * template. Rendering an image's template means trusting the image: a
 * template can run any command on the host (as with Atomic itself).
 *
 * Syntax: Python `string.Template`, as Atomic used: `$NAME` or `${NAME}`,
 * `$$` for `$`; any other `$` or an unknown variable is an error for that
 * unit only. Variables (Atomic's names): `DESTDIR` (the bundle directory),
 * `NAME` (the unit name without `.service`), `EXEC_START`, `EXEC_STOP`,
 * `EXEC_STOPPOST` (complete command lines: the OCI runtime run, kill and
 * delete on the bundle), `EXEC_STARTPRE` (empty: extraction runs in the
 * companion `ocigen-extract@` unit, see unit.ts), `HOST_UID`, `HOST_GID`, `IMAGE_ID`
 * (config digest, hex), `IMAGE_NAME` (`name:tag`), and — overridable by
 * `/exports/manifest.json` `defaultValues` — `RUN_DIRECTORY` (/run),
 * `STATE_DIRECTORY` (/var/lib), `CONF_DIRECTORY` and `CONFIG_DIRECTORY`
 * (/etc), `UUID` (stable per unit), `PIDFILE`, `ALL_PROCESS_CAPABILITIES`,
 * `RUNTIME`, `ATOMIC` (this ocigen); `defaultValues` may add more.
 *
 * Escaping: the `EXEC_*` values are inserted as they are (ocigen builds them
 * quoted). Every other value is escaped for the line it lands in: on an
 * `Exec*=` line it becomes exactly one argument (quoted, `%` and `$`
 * doubled); in settings that split quoted words (`Environment=`, path
 * lists, ...) it becomes one quoted word (`%` doubled); elsewhere `%` is
 * doubled and control characters are refused.
 * A rendered line may not end in a backslash unless the template's did, so
 * no value can add, join or change a directive. ocigen then adds
 * `Requires=`/`After=` on the extract unit, and `SourcePath=`,
 * `RequiresMountsFor=`, `Slice=oci.slice` when missing. The image always runs under an OCI
 * runtime (runc unless `runtime =` names another), as Atomic's did.
 * `manifest.json` `noContainerService: true` means no unit at all.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { OcigenError } from "../errors.ts";
import { escapeSpecifiers, execLine, execWord, listWord } from "./syntax.ts";
import { readFileInRoot } from "../rootfs/read.ts";

/** Maximum size of `/exports/service.template`. */
export const MAX_TEMPLATE = 256 * 1024;

/** What an extracted rootfs ships for Atomic. */
export interface AtomicExports {
  template: string;
  defaultValues: Record<string, string>;
  noContainerService: boolean;
}

/**
 * Reads `/exports/service.template` and `/exports/manifest.json` from an
 * extracted rootfs; null when there is no template.
 *
 * @example
 * ```ts
 * const ex = readAtomicExports("/var/lib/oci/extracts/.store/sha256/ab/rootfs");
 * ```
 */
export function readAtomicExports(rootfs: string): AtomicExports | null {
  const t = readFileInRoot(rootfs, "/exports/service.template", MAX_TEMPLATE);
  if (t === null) return null;
  const dec = new TextDecoder("utf-8", { fatal: true });
  let template: string;
  try {
    template = dec.decode(t);
  } catch {
    throw new OcigenError("EGENERATE", "/exports/service.template is not UTF-8");
  }
  const defaultValues: Record<string, string> = {};
  let noContainerService = false;
  const m = readFileInRoot(rootfs, "/exports/manifest.json", 1 << 20);
  if (m !== null) {
    let j: unknown;
    try {
      j = JSON.parse(dec.decode(m));
    } catch (e) {
      throw new OcigenError("EGENERATE", `/exports/manifest.json: bad JSON (${(e as Error).message})`);
    }
    if (typeof j !== "object" || j === null) throw new OcigenError("EGENERATE", "/exports/manifest.json is not an object");
    const dv = (j as Record<string, unknown>).defaultValues;
    if (dv !== undefined) {
      if (typeof dv !== "object" || dv === null || Array.isArray(dv)) {
        throw new OcigenError("EGENERATE", "/exports/manifest.json: defaultValues is not an object");
      }
      for (const [k, v] of Object.entries(dv)) {
        if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") {
          throw new OcigenError("EGENERATE", `/exports/manifest.json: defaultValues.${k} is not a string`);
        }
        defaultValues[k] = String(v);
      }
    }
    noContainerService = (j as Record<string, unknown>).noContainerService === true;
  }
  return { template, defaultValues, noContainerService };
}

/** The variables ocigen sets and a template cannot override. */
export const FORCED_VARIABLES = [
  "DESTDIR", "NAME", "EXEC_START", "EXEC_STOP", "EXEC_STARTPRE", "EXEC_STOPPOST", "HOST_UID", "HOST_GID", "IMAGE_ID", "IMAGE_NAME",
] as const;

const COMMAND_VARIABLES = new Set(["EXEC_START", "EXEC_STOP", "EXEC_STARTPRE", "EXEC_STOPPOST"]);

/** Settings whose values systemd splits into quoted words (no environment substitution). */
const UNQUOTING = new Set([
  "Environment", "PassEnvironment", "UnsetEnvironment", "RequiresMountsFor", "BindPaths", "BindReadOnlyPaths", "ReadWritePaths",
  "ReadOnlyPaths", "InaccessiblePaths", "ExecPaths", "NoExecPaths", "TemporaryFileSystem", "ExecSearchPath", "SupplementaryGroups",
  "StateDirectory", "RuntimeDirectory", "CacheDirectory", "LogsDirectory", "ConfigurationDirectory",
]);

/** Capabilities for `$ALL_PROCESS_CAPABILITIES` (Linux 5.x set). */
const ALL_CAPS = [
  "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE",
  "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT",
  "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE",
  "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
  "PERFMON", "BPF", "CHECKPOINT_RESTORE",
].map((c) => `"CAP_${c}"`).join(", ");

/** Inputs for {@linkcode atomicVariables}. */
export interface AtomicContext {
  base: string;
  name: string;
  tag: string;
  bundleDir: string;
  runtime: string;
  containerId: string;
  configDigest: string;
  ocigen: string;
  hostUid: number;
  hostGid: number;
}

/**
 * The variables of a template render (values unescaped; `EXEC_*` are
 * complete command lines).
 *
 * @example
 * ```ts
 * atomicVariables(ctx, { RUN_DIRECTORY: "/srv/run" }).RUN_DIRECTORY; // "/srv/run"
 * ```
 */
export function atomicVariables(ctx: AtomicContext, defaults: Record<string, string>): Record<string, string> {
  const h = createHash("sha256").update(`ocigen-uuid\0${ctx.base}`).digest("hex");
  const uuid = `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
  const overridable: Record<string, string> = {
    RUN_DIRECTORY: "/run",
    STATE_DIRECTORY: "/var/lib",
    CONF_DIRECTORY: "/etc",
    CONFIG_DIRECTORY: "/etc",
    UUID: uuid,
    PIDFILE: `/run/container-${ctx.base}.pid`,
    ALL_PROCESS_CAPABILITIES: ALL_CAPS,
    RUNTIME: ctx.runtime,
    ATOMIC: ctx.ocigen,
  };
  const forced: Record<string, string> = {
    DESTDIR: ctx.bundleDir,
    NAME: ctx.base,
    EXEC_START: execLine([ctx.runtime, "run", "--bundle", ctx.bundleDir, ctx.containerId]),
    EXEC_STARTPRE: "",
    EXEC_STOP: execLine([ctx.runtime, "kill", ctx.containerId, "TERM"]),
    EXEC_STOPPOST: execLine([ctx.runtime, "delete", "--force", ctx.containerId], "-"),
    HOST_UID: String(ctx.hostUid),
    HOST_GID: String(ctx.hostGid),
    IMAGE_ID: ctx.configDigest.slice(ctx.configDigest.indexOf(":") + 1),
    IMAGE_NAME: `${ctx.name}:${ctx.tag}`,
  };
  return { ...overridable, ...defaults, ...forced };
}

const PLACEHOLDER = /\$(?:(\$)|([_a-zA-Z][_a-zA-Z0-9]*)|\{([_a-zA-Z][_a-zA-Z0-9]*)\}|())/g;

/**
 * Adds directives every ocigen unit needs to a rendered template when it
 * lacks them: `SourcePath=` and `RequiresMountsFor=` in `[Unit]` (the
 * section is created if missing), `Slice=` in `[Service]`; `unitAlways`
 * lines are added to `[Unit]` in any case.
 *
 * @example
 * ```ts
 * addMissingDirectives("[Service]\nExecStart=/x\n", ["SourcePath=/l"], ["Slice=oci.slice"]);
 * ```
 */
export function addMissingDirectives(text: string, unitLines: string[], serviceLines: string[], unitAlways: string[] = []): string {
  const lines = text.split("\n");
  const has = (key: string) => lines.some((l) => new RegExp(`^\\s*${key}\\s*=`).test(l));
  const keyOf = (l: string) => l.slice(0, l.indexOf("="));
  const svc = serviceLines.filter((l) => !has(keyOf(l)));
  const si = lines.findIndex((l) => l.trim() === "[Service]");
  if (si >= 0 && svc.length) lines.splice(si + 1, 0, ...svc);
  const unit = [...unitLines.filter((l) => !has(keyOf(l))), ...unitAlways];
  if (unit.length) {
    const ui = lines.findIndex((l) => l.trim() === "[Unit]");
    if (ui >= 0) lines.splice(ui + 1, 0, ...unit);
    else lines.unshift("[Unit]", ...unit, "");
  }
  return lines.join("\n");
}

/**
 * Renders `template` with `vars` (see the module docs for syntax and
 * escaping). Throws EGENERATE naming the template line on an unknown
 * variable, a bad placeholder or a value that cannot be written safely, or
 * when the template has no `[Service]` section.
 *
 * @example
 * ```ts
 * renderAtomicTemplate("[Service]\nExecStart=$EXEC_START\n", vars);
 * ```
 */
export function renderAtomicTemplate(template: string, vars: Record<string, string>): string {
  const lines = template.split("\n");
  const out = lines.map((line, i) => {
    const where = `service.template line ${i + 1}`;
    const key = /^\s*([A-Za-z0-9_-]+)\s*=/.exec(line)?.[1] ?? "";
    const execCtx = key.startsWith("Exec");
    const rendered = line.replace(PLACEHOLDER, (_m, dollar, id1, id2) => {
      if (dollar) return "$";
      const id = id1 ?? id2;
      if (id === undefined) throw new OcigenError("EGENERATE", `${where}: invalid placeholder (use $$ for a literal $)`);
      if (!Object.hasOwn(vars, id)) throw new OcigenError("EGENERATE", `${where}: unknown variable $${id}`);
      const v = vars[id];
      if (COMMAND_VARIABLES.has(id)) return v;
      if (execCtx) return execWord(v, `$${id}`);
      if (UNQUOTING.has(key)) return listWord(v, `$${id}`);
      if (/[\x00-\x1f\x7f]/.test(v)) {
        throw new OcigenError("EGENERATE", `${where}: the value of $${id} contains a control character`);
      }
      return escapeSpecifiers(v);
    });
    if (rendered.endsWith("\\") && !line.endsWith("\\")) {
      throw new OcigenError("EGENERATE", `${where}: a value would end the line with a backslash (line continuation)`);
    }
    return rendered;
  });
  if (!out.some((l) => l.trim() === "[Service]")) throw new OcigenError("EGENERATE", "service.template has no [Service] section");
  return out.join("\n");
}
