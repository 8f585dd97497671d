import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const decl = join(repo, "dist", "types", "src", "mod.d.ts");

test("a TypeScript project with stock NodeNext settings type-checks against the package's declarations",
  { skip: fs.existsSync(decl) ? false : "dist/types is missing: run npm run build" }, () => {
  const dir = fs.mkdtempSync(join(os.tmpdir(), "ocigen-consumer-"));
  try {
    fs.mkdirSync(join(dir, "node_modules"));
    fs.symlinkSync(repo, join(dir, "node_modules", "ocigen"));
    fs.symlinkSync(join(repo, "node_modules", "@types"), join(dir, "node_modules", "@types"));
    fs.writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    fs.writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
      compilerOptions: { strict: true, module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", noEmit: true, types: ["node"] },
    }));
    const good = `import { Layout, unpackRootfs, OcigenError, renderUnit, applyLayers } from "ocigen";
const l: Layout = await Layout.open("/x");
const img = await l.resolve("latest");
await unpackRootfs(l, img, "/r", {});
const code: string = new OcigenError("ENOTAG", "m").code;
console.log(code, typeof renderUnit, typeof applyLayers);
`;
    fs.writeFileSync(join(dir, "a.ts"), good);
    const tsc = join(repo, "node_modules", "typescript", "bin", "tsc");
    const r = spawnSync(process.execPath, [tsc, "-p", dir], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    // and the declarations really constrain: a wrong call is rejected
    fs.writeFileSync(join(dir, "a.ts"), good + `await Layout.open(42);\n`);
    const bad = spawnSync(process.execPath, [tsc, "-p", dir], { encoding: "utf8" });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stdout, /a\.ts.*Argument of type 'number'/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
