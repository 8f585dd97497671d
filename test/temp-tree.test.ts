// Temporary trees (src/fs/temp-tree.ts): closed (0700) from creation whatever
// the umask, told apart from a live run's by the pid in their names, and
// removed on SIGTERM through signal-exit (checked end to end with a real
// unpack in unpack-signals.test.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { spawn, spawnSync } from "node:child_process";
import { isDeadRunTree, makeTempTree, removeTempTree } from "../src/fs/temp-tree.ts";
import { ROOT } from "./oci-helpers.ts";
import { tmpdir } from "./layer-fixtures.ts";

test("makeTempTree: 0700 whatever the umask; isDeadRunTree knows a live pid from a dead one", () => {
  const dir = tmpdir("ocigen-tt-");
  const old = process.umask(0);
  try {
    const t = makeTempTree(path.join(dir, `.x.tmp-${process.pid}-0123abcd`));
    assert.equal(fs.statSync(t.path).mode & 0o777, 0o700);
    assert.equal(isDeadRunTree(path.basename(t.path)), false, "this process is alive");
    t.release();
    // a pid that cannot exist (above pid_max)
    assert.equal(isDeadRunTree(".x.tmp-4194305-0123abcd"), true);
    assert.equal(isDeadRunTree(".x.tmp-abc-0123abcd"), false, "not our form");
    removeTempTree(t.path);
    assert.equal(fs.existsSync(t.path), false);
  } finally {
    process.umask(old);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a registered tree is removed when the process gets SIGTERM, and the signal still ends it", { timeout: 60000 }, async () => {
  const dir = tmpdir("ocigen-tt-");
  try {
    const tree = path.join(dir, ".t.tmp-1-0123abcd");
    const code = `import { makeTempTree } from ${JSON.stringify(path.join(ROOT, "src/fs/temp-tree.ts"))};
import fs from "node:fs";
const t = makeTempTree(${JSON.stringify(tree)});
fs.mkdirSync(t.path + "/a/b", { recursive: true });
fs.writeFileSync(t.path + "/a/b/f", "x");
console.log("ready");
setInterval(() => {}, 1000);`;
    const p = spawn("node", ["--import", "tsx", "--input-type=module", "-e", code], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((r) => p.stdout!.on("data", (d) => String(d).includes("ready") && r()));
    assert.ok(fs.existsSync(path.join(tree, "a/b/f")));
    p.kill("SIGTERM");
    const [c, sig] = await new Promise<[number | null, string | null]>((r) => p.on("close", (c2, s2) => r([c2, s2])));
    assert.ok(sig === "SIGTERM" || c === 143, `exit ${c} ${sig}`);
    assert.equal(fs.existsSync(tree), false);
  } finally {
    spawnSync("rm", ["-rf", "--", dir]);
  }
});
