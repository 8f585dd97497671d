// The extracts store is closed to other local users: an image's setuid-root
// binary, device node and 0600 file extracted by `ocigen extract` cannot be
// reached by an unprivileged user (EACCES at `.store`, not ENOENT), while
// root reaches all three. The only barrier left on the way is the store's
// own mode: the test opens every directory above it to everyone.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { have, makeImage, tmpdir } from "./layer-fixtures.ts";
import { extract } from "../src/generator/extract.ts";
import { defaultGeneratorConfig } from "../src/generator/config.ts";

const USER = "ocigen-permtest";
const isRoot = process.getuid?.() === 0;
const tools = ["useradd", "userdel", "setpriv"].filter((t) => !have(t));
const why = !isRoot ? "not root (creating a user and device nodes needs root)" : tools.length ? `${tools.join(", ")} not installed` : "";

/** Runs `script` with /bin/sh as `user` (or as root): exit status and stderr. */
function sh(script: string, user?: string): { status: number; err: string } {
  const argv = user ? ["setpriv", `--reuid=${user}`, `--regid=${user}`, "--clear-groups", "/bin/sh", "-c", script] : ["/bin/sh", "-c", script];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", cwd: "/" });
  return { status: r.status ?? -1, err: r.stderr ?? "" };
}

describe("extracts store permissions", { skip: why && !process.env.CI ? why : false }, () => {
  let tmp = "";
  let store = "";
  before(async () => {
    if (why) assert.fail(`store permissions test cannot run in CI: ${why}`);
    spawnSync("userdel", [USER], { stdio: "ignore" });
    const r = spawnSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    tmp = tmpdir("ocigen-perm-");
    fs.chmodSync(tmp, 0o755);
    const layouts = join(tmp, "layouts");
    makeImage(join(layouts, "app"), [{
      entries: [
        { name: "bin/", type: "dir" },
        { name: "bin/suid", type: "file", mode: 0o4755, uid: 0, gid: 0, data: "#!/bin/sh\necho ran\n" },
        { name: "dev/", type: "dir" },
        { name: "dev/null", type: "char", mode: 0o666, devmajor: 1, devminor: 3 },
        { name: "secret", type: "file", mode: 0o600, data: "top secret\n" },
      ],
    }], { config: { Cmd: ["/bin/suid"] } });
    const cfg = { ...defaultGeneratorConfig(), imageLayoutDir: layouts, extractsDir: join(tmp, "extracts") };
    const res = await extract({ config: cfg, name: "app", tag: "latest" });
    store = res.store;
    // Open everything above the store to everyone: only the store's own mode may stop the user.
    fs.chmodSync(cfg.extractsDir, 0o755);
    assert.equal(fs.statSync(join(cfg.extractsDir, ".store")).mode & 0o777, 0o700);
  });
  after(() => {
    spawnSync("userdel", [USER], { stdio: "ignore" });
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test("an unprivileged user gets EACCES, root gets through", () => {
    const st = fs.statSync(join(store, "bin/suid"));
    assert.equal(st.mode & 0o7777, 0o4755, "the setuid bit is in the store");
    assert.ok(fs.statSync(join(store, "dev/null")).isCharacterDevice());
    const cases = {
      exec: `exec ${join(store, "bin/suid")}`,
      device: `: < ${join(store, "dev/null")}`,
      read: `cat ${join(store, "secret")} >/dev/null`,
    };
    for (const [what, script] of Object.entries(cases)) {
      const u = sh(script, USER);
      assert.notEqual(u.status, 0, `${what} as ${USER} must fail`);
      assert.match(u.err, /[Pp]ermission denied/, `${what} as ${USER}: EACCES, not ENOENT: ${u.err}`);
      assert.doesNotMatch(u.err, /[Nn]o such file|nonexistent/);
      const r = sh(script);
      assert.equal(r.status, 0, `${what} as root: ${r.err}`);
    }
  });
});
