// Bad input: every case gets exit 1, one line on stderr naming the culprit,
// and the layout byte-for-byte unchanged.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { type Breakage, breakLayout, makeLayout, makeMultiPlatformLayout, mkTemp, putBlob, rmTemp, tarFiles, treeHash } from "../fixtures/layout.ts";
import { formatPlatform, hostPlatform } from "../src/oci/platform.ts";
import { cli } from "./oci-helpers.ts";

function build(dir: string) {
  const fx = makeLayout(dir, [{
    tags: ["latest", "v1"],
    layers: [tarFiles([{ name: "etc/", dir: true }, { name: "etc/a", data: "a\n" }]), tarFiles([{ name: "b", data: "b" }])],
  }]);
  putBlob(dir, new TextEncoder().encode("unreferenced"), "application/octet-stream");
  return fx;
}

const short = (d: string) => d.slice(0, 19) + "..";

async function expectFail(dir: string, args: string[], msg: string | RegExp) {
  const before = treeHash(dir);
  const r = await cli(...args);
  assert.equal(r.code, 1, `${args.join(" ")}: exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, "", `${args.join(" ")}: nothing on stdout`);
  const lines = r.stderr.split("\n");
  assert.equal(lines.length, 2, `${args.join(" ")}: one line on stderr: ${JSON.stringify(r.stderr)}`);
  if (typeof msg === "string") assert.equal(lines[0], `ocigen: ${msg}`, args.join(" "));
  else assert.match(lines[0], msg, args.join(" "));
  assert.equal(treeHash(dir), before, `${args.join(" ")}: layout unchanged`);
}

const mutating = (D: string, tag = "latest") => [
  ["tag", "--image", `${D}:${tag}`, "copy"],
  ["config", "--image", `${D}:${tag}`, "--config.user", "1000"],
  ["gc", "--layout", D],
];

describe("bad input: one-line error, layout unchanged", () => {
  test("missing oci-layout", async () => {
    const tmp = mkTemp("ocigen-err-");
    try {
      const D = join(tmp, "l");
      const fx = build(D);
      breakLayout(fx, "no-oci-layout");
      const msg = `${D}: not an OCI image layout (no oci-layout file)`;
      for (const a of [["ls", "--layout", D], ["stat", "--image", D], ["new", "--image", `${D}:n`], ["rm", "--image", `${D}:v1`], ...mutating(D)]) {
        await expectFail(D, a, msg);
      }
      await expectFail(tmp, ["ls", "--layout", join(tmp, "absent")], `${join(tmp, "absent")}: not an OCI image layout (no oci-layout file)`);
    } finally {
      rmTemp(tmp);
    }
  });

  test("broken JSON: index.json, manifest, oci-layout", async () => {
    const tmp = mkTemp("ocigen-err-");
    try {
      const D = join(tmp, "idx");
      breakLayout(build(D), "broken-index-json");
      for (const a of [["ls", "--layout", D], ["stat", "--image", D], ["new", "--image", `${D}:n`], ...mutating(D)]) {
        await expectFail(D, a, new RegExp(`^ocigen: ${D}/index\\.json: broken JSON: `));
      }
      const M = join(tmp, "man");
      breakLayout(build(M), "broken-manifest-json");
      const idx = JSON.parse(fs.readFileSync(join(M, "index.json"), "utf8"));
      for (const a of [["stat", "--image", M], ...mutating(M)]) {
        await expectFail(M, a, new RegExp(`^ocigen: ${M}: manifest ${short(idx.manifests[0].digest)}: broken JSON: `));
      }
      const O = join(tmp, "hdr");
      build(O);
      fs.writeFileSync(join(O, "oci-layout"), '{"imageLayoutVersion": ');
      await expectFail(O, ["ls", "--layout", O], new RegExp(`^ocigen: ${O}/oci-layout: broken JSON: `));
    } finally {
      rmTemp(tmp);
    }
  });

  test("invalid descriptors in index.json", async () => {
    const tmp = mkTemp("ocigen-err-");
    try {
      for (const how of ["bad-descriptor-digest", "negative-size"] as const) {
        const D = join(tmp, how);
        breakLayout(build(D), how);
        const msg = how === "negative-size"
          ? `${D}/index.json: manifests[0].size: -1 is not a non-negative integer`
          : `${D}/index.json: manifests[0].digest: "sha256:${"A".repeat(64)}": sha256 digest must have 64 lowercase hex digits`;
        for (const a of [["ls", "--layout", D], ["stat", "--image", D], ...mutating(D)]) await expectFail(D, a, msg);
      }
    } finally {
      rmTemp(tmp);
    }
  });

  for (const how of ["wrong-digest", "truncated-blob", "padded-blob", "missing-blob"] as const satisfies readonly Breakage[]) {
    test(`blob: ${how}`, async () => {
      const tmp = mkTemp("ocigen-err-");
      try {
        const D = join(tmp, "l");
        const fx = build(D);
        breakLayout(fx, how);
        const c = fx.configs[0];
        const name = `${D}: config ${short(c.digest)}`;
        const msg = {
          "wrong-digest": new RegExp(`^ocigen: ${name}: digest mismatch: content hashes to sha256:[0-9a-f]{12}\\.\\.$`),
          "truncated-blob": `${name}: blob is truncated: ${c.size - 1} bytes, descriptor says ${c.size}`,
          "padded-blob": `${name}: blob is padded: ${c.size + 1} bytes, descriptor says ${c.size}`,
          "missing-blob": `${name}: blob is missing (${D}/blobs/sha256/${c.digest.slice(7)})`,
        }[how];
        for (const a of [["stat", "--image", D], ["stat", "--image", `${D}:v1`, "--json"], ...mutating(D)]) await expectFail(D, a, msg);
      } finally {
        rmTemp(tmp);
      }
    });
  }

  test("gc verifies layers before deleting anything", async () => {
    const tmp = mkTemp("ocigen-err-");
    try {
      const D = join(tmp, "l");
      const fx = build(D);
      const layer = fx.layers[0][1];
      fs.appendFileSync(join(D, "blobs", "sha256", layer.digest.slice(7)), "x");
      await expectFail(D, ["gc", "--layout", D], `${D}: layer ${short(layer.digest)}: blob is padded: ${layer.size + 1} bytes, descriptor says ${layer.size}`);
    } finally {
      rmTemp(tmp);
    }
  });

  test("unknown tag", async () => {
    const tmp = mkTemp("ocigen-err-");
    try {
      const D = join(tmp, "l");
      build(D);
      const msg = `Cannot resolve tag nope in ${D}: no such tag`;
      for (const a of [["stat", "--image", `${D}:nope`], ...mutating(D, "nope")]) {
        if (a[0] !== "gc") await expectFail(D, a, msg);
      }
      await expectFail(D, ["rm", "--image", `${D}:nope`], `Cannot remove tag nope in ${D}: no such tag`);
    } finally {
      rmTemp(tmp);
    }
  });

  test("ambiguous tag", async () => {
    const tmp = mkTemp("ocigen-err-");
    try {
      const D = join(tmp, "l");
      const host = hostPlatform();
      const plats = [{ os: "linux", architecture: "s390x" }, { os: "linux", architecture: "ppc64le" }]
        .filter((p) => p.architecture !== host.architecture);
      plats.push({ os: "linux", architecture: "riscv64" });
      makeMultiPlatformLayout(D, "latest", plats.slice(0, 2));
      const msg = `Cannot resolve tag latest in ${D}: tag is ambiguous (2 manifests, none for ${formatPlatform(host)})`;
      await expectFail(D, ["stat", "--image", D], msg);
      await expectFail(D, ["config", "--image", D, "--config.user", "1"], msg);
    } finally {
      rmTemp(tmp);
    }
  });

  test("invalid tag names", async () => {
    const tmp = mkTemp("ocigen-err-");
    try {
      const D = join(tmp, "l");
      build(D);
      const bad = (t: string) => `Invalid tag ${JSON.stringify(t)}: does not match the OCI ref.name grammar`;
      await expectFail(D, ["tag", "--image", `${D}:latest`, "bad tag"], bad("bad tag"));
      await expectFail(D, ["tag", "--image", `${D}:latest`, "--", "-x"], bad("-x"));
      await expectFail(D, ["new", "--image", `${D}:a..b`], bad("a..b"));
      await expectFail(D, ["config", "--image", `${D}:latest`, "--tag", "a//b", "--config.user", "1"], bad("a//b"));
      await expectFail(D, ["stat", "--image", `${D}:x y`], bad("x y"));
      await expectFail(D, ["rm", "--image", `${D}:ä`], bad("ä"));
    } finally {
      rmTemp(tmp);
    }
  });

  test("bad config flags", async () => {
    const tmp = mkTemp("ocigen-err-");
    try {
      const D = join(tmp, "l");
      build(D);
      await expectFail(D, ["config", "--image", D, "--clear", "bogus"], /^ocigen: Unknown key to --clear: bogus \(one of /);
      await expectFail(D, ["config", "--image", D, "--config.env", "NOEQ"], `Invalid --config.env "NOEQ": must contain '='`);
      await expectFail(D, ["config", "--image", D, "--created", "yesterday"], `Invalid --created "yesterday": expected an RFC 3339 date-time`);
      await expectFail(D, ["init", "--layout", D], `Cannot init layout ${D}: already an OCI layout`);
    } finally {
      rmTemp(tmp);
    }
  });

  test("read-only layout", async () => {
    const tmp = mkTemp("ocigen-err-");
    try {
      fs.chmodSync(tmp, 0o755);
      const D = join(tmp, "l");
      build(D);
      const walk = (p: string) => {
        const st = fs.statSync(p);
        if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(join(p, n));
        fs.chmodSync(p, st.mode & 0o555);
      };
      walk(D);
      // root ignores permission bits: run as nobody then (effective ids only, restored after).
      const root = process.geteuid?.() === 0;
      const asNobody = async <T>(fn: () => Promise<T>): Promise<T> => {
        if (!root) return await fn();
        process.setegid!(65534);
        process.seteuid!(65534);
        try {
          return await fn();
        } finally {
          process.seteuid!(0);
          process.setegid!(0);
        }
      };
      const msg = `Cannot lock layout ${D}: not writable (EACCES)`;
      for (const a of [["new", "--image", `${D}:n`], ["rm", "--image", `${D}:v1`], ...mutating(D)]) {
        await asNobody(() => expectFail(D, a, msg));
      }
      const r = await asNobody(() => cli("ls", "--layout", D));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "latest\nv1\n");
      const s = await asNobody(() => cli("stat", "--image", D));
      assert.equal(s.code, 0, s.stderr);
    } finally {
      fs.chmodSync(tmp, 0o700);
      const walk = (p: string) => {
        fs.chmodSync(p, 0o755);
        if (fs.statSync(p).isDirectory()) for (const n of fs.readdirSync(p)) walk(join(p, n));
      };
      walk(tmp);
      rmTemp(tmp);
    }
  });
});
