// The shortcuts of applying new entries: no chown when a new file, directory
// or symlink already has the owner it should get (this process's ids, in a directory whose group
// this unpack set to this process's gid), and directories the applier made
// resolved without a walk. The final owners must be the ones every file would
// get with its own chown, whatever setgid directories, re-declared groups and
// removed-then-recreated directories say.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { applyTo, tmpdir } from "./layer-fixtures.ts";

const ROOT = typeof process.getuid === "function" && process.getuid() === 0;

for (const tarKernel of [false, true]) {
  test(`files get their own group under setgid, re-declared and recreated directories (${tarKernel ? "tar kernel" : "TypeScript parser"})`, {
    skip: ROOT ? false : "needs root: owners are applied only as root",
  }, () => {
    const dir = tmpdir();
    try {
      const root = path.join(dir, "root");
      fs.mkdirSync(root);
      const e = applyTo(root, [
        [
          { name: "./", type: "dir", mode: 0o755, uid: 0, gid: 0 },
          { name: "a/", type: "dir", mode: 0o2755, uid: 0, gid: 5 },
          { name: "a/b/", type: "dir", mode: 0o755, uid: 0, gid: 0 },
          { name: "a/b/f", data: "f", uid: 0, gid: 0 },
          { name: "a/s", data: "s", uid: 0, gid: 0 }, // in the setgid directory of group 5
          { name: "c/", type: "dir", mode: 0o755, uid: 0, gid: 0 },
          { name: "c/k", data: "k", uid: 0, gid: 0 },
          { name: "c/u", data: "u", uid: 1000, gid: 0 },
          { name: "c/d/", type: "dir", mode: 0o2755, uid: 0, gid: 0 },
          { name: "a/sub/", type: "dir", mode: 0o755, uid: 0, gid: 0 }, // made in a setgid directory of group 5
          { name: "a/sl", type: "symlink", linkname: "s", uid: 0, gid: 0 },
          { name: "c/plain/", type: "dir", mode: 0o755, uid: 0, gid: 0 },
          { name: "c/plainsl", type: "symlink", linkname: "k", uid: 0, gid: 0 },
        ],
        [
          { name: "a/.wh.b", data: "" },
          { name: "c/", type: "dir", mode: 0o2755, uid: 0, gid: 7 }, // re-declared: group 7, setgid
          { name: "c/h", data: "h", uid: 0, gid: 0 },
          { name: "c/d/x", data: "x", uid: 0, gid: 0 },
          { name: "c/e/", type: "dir", mode: 0o755, uid: 0, gid: 0 }, // c is setgid, group 7, now
          { name: "c/esl", type: "symlink", linkname: "h", uid: 0, gid: 0 },
        ],
        [
          { name: "a/b/g", data: "g", uid: 0, gid: 0 }, // a/b is made again, inheriting group 5 from a
        ],
      ], { tarKernel, rootless: false });
      if (e) throw e;
      const own = (p: string) => {
        const st = fs.lstatSync(path.join(root, p));
        return `${st.uid}:${st.gid}`;
      };
      assert.equal(own("a"), "0:5");
      assert.equal(own("a/s"), "0:0");
      assert.equal(fs.existsSync(path.join(root, "a/b/f")), false);
      assert.equal(own("a/b"), "0:5", "recreated under the setgid directory");
      assert.equal(own("a/b/g"), "0:0");
      assert.equal(own("c"), "0:7");
      assert.equal(own("c/h"), "0:0");
      assert.equal(own("c/k"), "0:0");
      assert.equal(own("c/u"), "1000:0");
      assert.equal(own("c/d/x"), "0:0");
      assert.equal(own("a/sub"), "0:0", "a directory made in a setgid directory of another group");
      assert.equal(own("a/sl"), "0:0", "a symlink made in a setgid directory of another group");
      assert.equal(own("c/plain"), "0:0");
      assert.equal(own("c/plainsl"), "0:0");
      assert.equal(own("c/e"), "0:0", "a directory made after its parent became setgid of group 7");
      assert.equal(own("c/esl"), "0:0");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
