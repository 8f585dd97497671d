/**
 * The human form of `ocigen status` (what a terminal gets): one row per
 * unit, then the extracted trees no unit uses and the volumes whose unit is
 * gone, each only when there are any. Digests are shortened to 12 hex
 * digits, sizes are in MB (10^6 bytes).
 *
 * @module
 */
import type { StatusReport, UnitStatus } from "./status.ts";

const short = (d: string | undefined) => (d ? d.replace(/^sha256:/, "").slice(0, 12) : "-");

/**
 * What the UPDATE column says of a unit: pinned, pending, or the last update event.
 *
 * @example
 * ```ts
 * updateWord(unit); // "rolled back from 3f9a2c1d0e4b at 2026-12-06T22:40:01Z: exited (exit status 1) and was restarted by systemd"
 * ```
 */
export function updateWord(u: UnitStatus): string {
  if (u.pin) return `pinned to ${short(u.pin.manifest)}: rolled back from ${short(u.pin.from)} at ${u.pin.at.replace(/\.\d+Z$/, "Z")}: ${u.pin.reason}`;
  if (u.pending) return `pending: tag names ${short(u.nextManifest)}`;
  const e = u.update;
  if (!e) return "-";
  const at = e.at.replace(/\.\d+Z$/, "Z");
  switch (e.action) {
    case "updated":
      return `updated from ${short(e.from)} at ${at}`;
    case "rolled-back":
      return `rolled back from ${short(e.to)} at ${at}`;
    case "unpinned":
      return `unpinned at ${at}`;
    default:
      return `update failed at ${at}: ${e.reason ?? ""}`.trim();
  }
}

function pad(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd()).join("\n") + "\n";
}

/**
 * Renders the report as text tables.
 *
 * @example
 * ```ts
 * process.stdout.write(statusTable(await gatherStatus({ config })));
 * ```
 */
export function statusTable(r: StatusReport): string {
  let out = "";
  if (r.units.length === 0) out += "no generated units\n";
  else {
    const rows = [["UNIT", "STATE", "MANIFEST", "ROOTFS", "PORTS", "UPDATE"]];
    for (const u of r.units) {
      const state = u.state + (u.subState && u.state !== "unknown" ? `/${u.subState}` : "") + (u.restarts ? ` (${u.restarts} restarts)` : "");
      rows.push([u.unit, state, short(u.manifest), u.extracted ? "verified" : "missing", u.ports.join(",") || "-", updateWord(u)]);
    }
    out += pad(rows);
  }
  if (r.unused.length > 0) {
    out += "\nextracted trees no unit uses (ocigen gc-extracts removes them):\n";
    out += pad([["MANIFEST", "MB", "PATH"], ...r.unused.map((t) => [short(t.manifest), (t.unpackedBytes / 1e6).toFixed(1), t.path])]);
  }
  if (r.volumes.length > 0) {
    out += "\nvolumes whose unit is gone (ocigen volume rm UNIT deletes them):\n";
    out += pad([["UNIT", "PATH"], ...r.volumes.map((v) => [v.unit, v.path])]);
  }
  if (!r.systemd) out += "\n(systemd is not running here: unit states are unknown)\n";
  return out;
}
