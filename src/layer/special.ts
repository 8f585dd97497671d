/**
 * Creating device nodes and FIFOs, and setting extended attributes: neither
 * Node nor Deno has these system calls, so they run the standard tools
 * (`mknod`/`mkfifo` from coreutils, `setfattr` from attr) without a shell.
 * Callers pass absolute paths whose parents were resolved inside the root
 * (real directories), and the tools never follow a final symlink here
 * (`mknod`/`mkfifo` create, `setfattr -h`).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { Buffer } from "node:buffer";
import { OcigenError } from "../errors.ts";

function run(cmd: string, args: string[], what: string, input?: Uint8Array, cwd?: string): string {
  const r = spawnSync(cmd, args, { input, cwd, encoding: "buffer", maxBuffer: 64 << 20 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new OcigenError("EIO", `${what}: cannot run ${cmd}: ${code ?? r.error.message}`, { cause: r.error });
  }
  const err = Buffer.from(r.stderr ?? new Uint8Array(0)).toString("utf8").trim();
  if (r.status !== 0 && !input) throw new OcigenError("EIO", `${what}: ${cmd} failed: ${err.split("\n")[0] || `exit ${r.status}`}`);
  return r.status === 0 ? "" : err || `exit ${r.status}`;
}

/**
 * Creates a device node or FIFO at `abs` (which must not exist), mode 0600.
 *
 * @example
 * ```ts
 * mknod("/r/dev/null", "char", 1, 3, "dev/null");
 * ```
 */
export function mknod(abs: string, type: "char" | "block" | "fifo", major: number, minor: number, what: string): void {
  if (type === "fifo") run("mkfifo", ["-m", "600", "--", abs], what);
  else run("mknod", ["-m", "600", "--", abs, type === "char" ? "c" : "b", String(major), String(minor)], what);
}

let setfattrOk: boolean | undefined;

/**
 * True if `setfattr` can be run.
 *
 * @example
 * ```ts
 * if (!haveSetfattr()) console.warn("xattrs will not be applied");
 * ```
 */
export function haveSetfattr(): boolean {
  if (setfattrOk === undefined) {
    const r = spawnSync("setfattr", ["--version"], { stdio: "ignore" });
    setfattrOk = !r.error && r.status === 0;
  }
  return setfattrOk;
}

function escapeName(s: string): string {
  const b = Buffer.from(s, "utf8");
  let out = "";
  for (const c of b) {
    if (c <= 0x20 || c >= 0x7f || c === 0x5c || c === 0x3d || c === 0x22) out += "\\" + c.toString(8).padStart(3, "0");
    else out += String.fromCharCode(c);
  }
  return out;
}

/**
 * One attribute to set on a root-relative path.
 *
 * @example
 * ```ts
 * const x: XattrSet = { rel: "bin/ping", name: "security.capability", value: cap };
 * ```
 */
export interface XattrSet {
  rel: string;
  name: string;
  value: Uint8Array;
}

/**
 * Sets many xattrs in one `setfattr -h --restore` run, in `root` (paths are
 * root-relative, already verified to have only real directories as parents).
 * Returns the error lines `setfattr` printed (empty when all succeeded).
 *
 * @example
 * ```ts
 * const errs = setXattrs("/r", [{ rel: "bin/ping", name: "security.capability", value }]);
 * ```
 */
export function setXattrs(root: string, sets: XattrSet[]): string[] {
  if (sets.length === 0) return [];
  let dump = "";
  for (const s of sets) {
    dump += `# file: ${escapeName(s.rel)}\n${escapeName(s.name)}=0s${Buffer.from(s.value).toString("base64")}\n\n`;
  }
  const err = run("setfattr", ["-h", "--restore=-"], "setfattr", Buffer.from(dump, "utf8"), root);
  return err ? err.split("\n").filter((l) => l.trim()) : [];
}

function unescapeName(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "\\" && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else bytes.push(s.charCodeAt(i) & 0xff);
  }
  return Buffer.from(bytes).toString("utf8");
}

/**
 * Lists the xattr names of root-relative paths (no symlink dereference) in one
 * `getfattr` run. Missing tools or paths give no names.
 *
 * @example
 * ```ts
 * listXattrs("/r", ["etc"]); // Map { "etc" => ["user.a"] }
 * ```
 */
export function listXattrs(root: string, rels: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (rels.length === 0) return out;
  const r = spawnSync("getfattr", ["-h", "-m", "-", "--absolute-names", "--", ...rels.map((p) => (p === "." ? "." : "./" + p))], {
    cwd: root,
    encoding: "buffer",
    maxBuffer: 64 << 20,
  });
  if (r.error || !r.stdout) return out;
  let cur: string[] | null = null;
  for (const line of Buffer.from(r.stdout).toString("latin1").split("\n")) {
    if (line.startsWith("# file: ")) {
      let p = unescapeName(line.slice(8));
      p = p === "." ? "." : p.replace(/^\.\//, "");
      cur = [];
      out.set(p, cur);
    } else if (cur && line && !line.startsWith("#")) cur.push(unescapeName(line.split("=")[0]));
  }
  return out;
}

/**
 * Removes one xattr from root-relative paths (no symlink dereference), ignoring failures.
 *
 * @example
 * ```ts
 * removeXattr("/r", "user.a", ["etc"]);
 * ```
 */
export function removeXattr(root: string, name: string, rels: string[]): void {
  for (let i = 0; i < rels.length; i += 1000) {
    const chunk = rels.slice(i, i + 1000).map((p) => (p === "." ? "." : "./" + p));
    spawnSync("setfattr", ["-h", "-x", name, "--", ...chunk], { cwd: root, stdio: "ignore" });
  }
}
