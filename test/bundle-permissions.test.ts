// A bundle written by `ocigen unpack` (as root) is closed to other local users:
// an unprivileged user gets EACCES (not ENOENT: the files are there, the user
// just cannot reach them) executing the image's setuid-root binary, opening its
// device node and reading a 0600 file; root can do all three. Before, the
// store's and bundles' directories were 0755 and any local user could run an
// image's setuid-root binary with euid 0.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { cliProcSync } from "./oci-helpers.ts";
import { makeImage, tmpdir } from "./layer-fixtures.ts";
import { isRoot } from "./repack-util.ts";

const USER = "ocigen-bundle-t";
const skip = isRoot && fs.existsSync("/usr/sbin/useradd") && fs.existsSync("/usr/bin/setpriv")
  ? false
  : process.env.CI
  ? false // in CI this runs as root and must not be skipped
  : "needs root (to unpack device nodes and setuid-root files, and to create an unprivileged user); runs in CI";

/** Creates the test user (kept if it exists); returns its uid/gid. */
function testUser(): { uid: number; gid: number } {
  if (spawnSync("id", ["-u", USER]).status !== 0) {
    const r = spawnSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", USER], { encoding: "utf8" });
    assert.equal(r.status, 0, `useradd: ${r.stderr}`);
  }
  const id = (flag: string) => Number(spawnSync("id", [flag, USER], { encoding: "utf8" }).stdout.trim());
  return { uid: id("-u"), gid: id("-g") };
}

/**
 * What `who` (null: root) gets trying the three: `exec` the setuid binary,
 * `open` the device, `read` the 0600 file. Each runs in a node child started
 * through `setpriv` (util-linux) with the user's ids, so it works the same
 * whichever runtime runs the test.
 */
function attempt(rootfs: string, who: { uid: number; gid: number } | null): Record<"exec" | "open" | "read", string> {
  const js = (body: string) => `try { ${body} } catch (e) { console.log(e.code); }`;
  const open = (p: string, how: string) => js(`require("fs").closeSync(require("fs").openSync(${JSON.stringify(p)}, ${how})); console.log("ok");`);
  const run = (code: string) => {
    const argv = ["/usr/bin/node", "-e", code];
    const r = who
      ? spawnSync("setpriv", [`--reuid=${who.uid}`, `--regid=${who.gid}`, "--clear-groups", "--", ...argv], { encoding: "utf8", cwd: "/" })
      : spawnSync(argv[0], argv.slice(1), { encoding: "utf8", cwd: "/" });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const suid = JSON.stringify(path.join(rootfs, "bin", "suid"));
  return {
    exec: run(js(`const r = require("child_process").spawnSync(${suid}); console.log(r.error ? r.error.code : r.status === 0 ? "ok" : "exit " + r.status);`)),
    open: run(open(path.join(rootfs, "dev", "null"), `"r+"`)),
    read: run(open(path.join(rootfs, "secret"), `"r"`)),
  };
}

test("an unpacked bundle is closed to other local users; root reaches everything", { skip, timeout: 120000 }, () => {
  const dir = tmpdir("ocigen-perm-");
  try {
    fs.chmodSync(dir, 0o755); // the bundle's parent is open to everyone: only the bundle may stop them
    const layout = makeImage(path.join(dir, "layout"), [{
      entries: [
        { name: "bin/", type: "dir", mode: 0o755 },
        { name: "bin/suid", data: new Uint8Array(fs.readFileSync("/bin/true")), mode: 0o4755, uid: 0, gid: 0 },
        { name: "dev/", type: "dir", mode: 0o755 },
        { name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 },
        { name: "secret", data: "only root\n", mode: 0o600, uid: 0, gid: 0 },
      ],
    }]);
    const bundle = path.join(dir, "bundle");
    const r = cliProcSync(["unpack", "--image", layout, bundle]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.statSync(bundle).mode & 0o777, 0o700);
    const rootfs = path.join(bundle, "rootfs");
    assert.equal(fs.statSync(path.join(rootfs, "bin", "suid")).mode & 0o7777, 0o4755, "the setuid bit is there");
    assert.ok(fs.statSync(path.join(rootfs, "dev", "null")).isCharacterDevice(), "the device node is there");

    const user = testUser();
    assert.deepEqual(attempt(rootfs, user), { exec: "EACCES", open: "EACCES", read: "EACCES" }, "as an unprivileged user");
    assert.deepEqual(attempt(rootfs, null), { exec: "ok", open: "ok", read: "ok" }, "as root");
  } finally {
    spawnSync("rm", ["-rf", "--", dir]);
  }
});
