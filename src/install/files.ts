/**
 * What `ocigen install-generator` puts on a system: the paths (relative to
 * the install prefix, laid out as on the target root) and the contents of
 * the default config, the `oci.slice` unit and the wrapper script used when
 * no single binary is available.
 *
 * @module
 */
import { VERSION } from "../version.ts";

/**
 * Installed paths, relative to the prefix (`/` on a real system).
 *
 * `/usr/local` because ocigen is installed by the administrator, not the
 * distribution; systemd searches `/usr/local/lib/systemd/system-generators/`
 * and `/usr/local/lib/systemd/system/` (see systemd.generator(7),
 * systemd.unit(5)), and an administrator's `/etc/systemd/system/oci.slice`
 * or `oci.slice.d/` drop-ins override the slice installed here.
 *
 * @example
 * ```ts
 * import { join } from "node:path";
 * join("/", INSTALL_PATHS.binary); // "/usr/local/bin/ocigen"
 * ```
 */
export const INSTALL_PATHS = {
  /** The program (single binary, or a wrapper script running Node or Deno). */
  binary: "usr/local/bin/ocigen",
  /** The generator link systemd runs at boot and on daemon-reload. */
  generator: "usr/local/lib/systemd/system-generators/ocigen-generator",
  /** Target of the generator link, relative to its directory (works under any prefix). */
  generatorTarget: "../../../bin/ocigen",
  /** The slice every generated service runs in (`Slice=oci.slice`). */
  slice: "usr/local/lib/systemd/system/oci.slice",
  /** `ocigen update` as a service, started by the timer below (src/update/update.ts). */
  updateService: "usr/local/lib/systemd/system/ocigen-update.service",
  /** The timer that runs `ocigen update` (disabled until `systemctl enable --now ocigen-update.timer`). */
  updateTimer: "usr/local/lib/systemd/system/ocigen-update.timer",
  /** The generator's config: written only when absent, never removed once changed. */
  config: "etc/oci-generator.conf",
  /** The bundled program the wrapper script runs (Node or Deno installs, not the single binary). */
  bundle: "usr/local/lib/ocigen/ocigen.mjs",
  /** The generator's own bundle (generation only: faster boots), run by the wrapper through the generator link. */
  generatorBundle: "usr/local/lib/ocigen/ocigen-generator.mjs",
  /** Where a runtime that lived only in the checkout (node_modules/deno) is copied. */
  libDir: "usr/local/lib/ocigen",
  /** What install did, for uninstall (see src/install/manifest.ts). */
  manifest: "usr/local/lib/ocigen/install-manifest.json",
} as const;

/**
 * The default `/etc/oci-generator.conf` (systemd INI style, SPEC 4.1): the
 * defaults spelt out, with comments.
 *
 * @example
 * ```ts
 * defaultConfig().includes("imagelayoutdir = /var/lib/oci/layouts"); // true
 * ```
 */
export function defaultConfig(): string {
  return `# /etc/oci-generator.conf: configuration of the ocigen systemd generator.
# Written by \`ocigen install-generator\` because no such file existed.
# Edit freely: \`ocigen uninstall-generator\` keeps this file once it changed.
# Keys left out keep the defaults shown here. After a change run
# \`systemctl daemon-reload\` to regenerate the units.

[system]
# Every directory below this one holding an \`oci-layout\` file is a layout;
# its name is its path relative to this directory (myorg.com/myapp), and each
# of its tags becomes one service (com.myorg.myapp.ref.TAG.service).
imagelayoutdir = /var/lib/oci/layouts
# Where the services' root filesystems are extracted before they start
# (content-addressed by manifest digest, verified, renamed into place).
extractsdir = /var/lib/oci/extracts
# How services run: systemd (RootDirectory= with systemd's sandboxing),
# runc, crun, or the absolute path of a runc-compatible runtime.
#runtime = systemd
# Write multi-user.target.wants/ links so every service starts at boot
# (units made by a generator cannot be \`systemctl enable\`d).
#enable = no
# Image label that may enable (true) or disable (false) one image's service.
#enablelabel = org.ocigen.enable
#wantedby = multi-user.target
# Each service's root is writable (its own layer, dropped at stop);
# protectsystem = strict makes it read-only (like ReadOnly=yes).
#protectsystem = no
#protecthome = no
# Where each service's root is mounted, and where its volumes persist.
#rundir = /run/ocigen
#volumesdir = /var/lib/ocigen/volumes
# Where \`ocigen update\` keeps rollback pins and update records.
#statedir = /var/lib/ocigen/state
# The program units run for \`ocigen extract\` (default: this ocigen).
#ocigen = /usr/local/bin/ocigen
# Per-image settings files, LAYOUT.image and LAYOUT:TAG.image (tags, volumes,
# environment, [Service] lines...; see the README). Empty: none.
#settingsdir = /etc/ocigen
# The platform picked from multi-platform images (default: this host's).
#platform = linux/arm64/v8
# Render an image's Atomic /exports/service.template instead of the normal
# unit. The template can run host commands: only for images you trust.
#atomictemplates = no

# Per-layout overrides of enable, runtime, platform, protectsystem, protecthome:
#[layout myorg.com/myapp]
#enable = yes
`;
}

/**
 * The `oci.slice` unit. Resource limits for all image services go into
 * drop-ins (`/etc/systemd/system/oci.slice.d/*.conf`), not into this file.
 *
 * @example
 * ```ts
 * sliceUnit().startsWith("# oci.slice"); // true
 * ```
 */
export function sliceUnit(): string {
  return `# oci.slice: installed by \`ocigen install-generator\` (ocigen ${VERSION}).
# The services the ocigen generator makes from OCI image layouts run here
# (Slice=oci.slice). Put limits in drop-ins, e.g.
# /etc/systemd/system/oci.slice.d/limits.conf with [Slice] MemoryMax=4G.

[Unit]
Description=Services from OCI image layouts (ocigen)
Documentation=man:systemd.slice(5)
Before=slices.target

[Slice]
`;
}

/**
 * A POSIX shell script that runs ocigen with a JavaScript runtime: installed
 * as the program when no single binary is available. Invoked through the
 * generator link it runs `ocigen generate` — with `generator`, the
 * generator's own bundle (which loads only what generation needs), else the
 * program's `generate`. `OCIGEN_SELF` tells ocigen its own installed path
 * (used in generated units).
 *
 * @param runtime absolute argv prefix that runs ocigen, e.g.
 *   `["/usr/bin/node", "/opt/ocigen/dist/ocigen.mjs"]`
 * @param selfPath the installed path of the script on the target root
 * @param generator absolute argv prefix that runs the generator's bundle, e.g.
 *   `["/usr/bin/node", "/opt/ocigen/dist/ocigen-generator.mjs"]`
 * @example
 * ```ts
 * wrapperScript(["/usr/bin/node", "/opt/ocigen/dist/ocigen.mjs"], "/usr/local/bin/ocigen");
 * ```
 */
export function wrapperScript(runtime: readonly string[], selfPath: string, generator?: readonly string[]): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const cmd = runtime.map(q).join(" ");
  const gen = generator ? `${generator.map(q).join(" ")} "$@"` : `${cmd} generate "$@"`;
  return `#!/bin/sh
# ocigen ${VERSION}: installed by \`ocigen install-generator\`.
# Runs ocigen with a JavaScript runtime; through the generator link
# (system-generators/ocigen-generator) it runs \`ocigen generate\`.
OCIGEN_SELF=${q(selfPath)}
export OCIGEN_SELF
case "\${0##*/}" in
  ocigen-generator) exec ${gen} ;;
esac
exec ${cmd} "$@"
`;
}

/**
 * `ocigen-update.service`: one `ocigen update` run (roll out moved tags,
 * roll back what fails). Started by {@linkcode updateTimerUnit}, or by hand.
 *
 * @example
 * ```ts
 * updateServiceUnit().includes("ExecStart=/usr/local/bin/ocigen update"); // true
 * ```
 */
export function updateServiceUnit(): string {
  return `# ocigen-update.service: installed by \`ocigen install-generator\` (ocigen ${VERSION}).
# Rolls out OCI image tags that moved to the services generated from them,
# and rolls back (pins) any service that fails on its new content.

[Unit]
Description=Roll out moved OCI image tags to their services (ocigen update)
Documentation=man:systemd.generator(7)
Wants=local-fs.target
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/${INSTALL_PATHS.binary} update
`;
}

/**
 * `ocigen-update.timer`: runs `ocigen-update.service` every 15 minutes once
 * enabled (`systemctl enable --now ocigen-update.timer`); installed disabled,
 * like Podman's `podman-auto-update.timer`.
 *
 * @example
 * ```ts
 * updateTimerUnit().includes("OnUnitInactiveSec=15min"); // true
 * ```
 */
export function updateTimerUnit(): string {
  return `# ocigen-update.timer: installed by \`ocigen install-generator\` (ocigen ${VERSION}).
# Enable with: systemctl enable --now ocigen-update.timer
# Change the interval in a drop-in: /etc/systemd/system/ocigen-update.timer.d/*.conf

[Unit]
Description=Roll out moved OCI image tags every 15 minutes (ocigen update)

[Timer]
OnBootSec=5min
OnUnitInactiveSec=15min
RandomizedDelaySec=60

[Install]
WantedBy=timers.target
`;
}
