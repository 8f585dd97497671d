import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { Layout } from "../src/oci/layout.ts";
import { parseBuildSpec } from "../src/recipe/spec.ts";
import { resolveBuildOrder } from "../src/recipe/order.ts";
import { shellSplit } from "../src/util/shellsplit.ts";
import { buildFile, dayStamp, nextDatedTag } from "../src/recipe/build.ts";
import { unpackImageTo } from "../src/recipe/apply.ts";
import { detectIsolation } from "../src/recipe/sandbox.ts";
import { resolveInRoot } from "../src/recipe/rootpath.ts";
import { convertConfig } from "../src/layer/convert.ts";
import { dirState, have, makeShellRootfs, run, tmpdir } from "./repack-util.ts";

function isolationSkip(): string | undefined {
  if (detectIsolation()) return undefined;
  if (process.env.CI) throw new Error("no build isolation (bwrap/unshare/chroot) in CI");
  return "no isolation for `run` here (needs bubblewrap, or root for unshare/chroot)";
}

async function unpackTag(layoutDir: string, tag: string, into: string): Promise<void> {
  const layout = await Layout.open(layoutDir);
  fs.mkdirSync(into, { recursive: true });
  await unpackImageTo(layout, await layout.resolve(tag), into);
}

describe("build spec", () => {
  test("shellSplit splits like sh without expansions", () => {
    assert.deepEqual(shellSplit(`/bin/echo "hello world"`), ["/bin/echo", "hello world"]);
    assert.deepEqual(shellSplit(`a 'b c' "d \\"e\\"" f\\ g $HOME`), ["a", "b c", 'd "e"', "f g", "$HOME"]);
    assert.throws(() => shellSplit(`"open`), /unterminated/);
  });

  test("parses every key; copy as string or list", () => {
    const s = parseBuildSpec(
      [
        "a:",
        "  base: empty",
        "  copy: ./x /etc/x",
        "b:",
        "  base: a",
        "  copy:",
        "    - /etc/hosts etc_hosts",
        "    - /etc/hostname etc_hostname",
        "  entrypoint: [/bin/sh, -c, 'echo hi']",
        "  annotations:",
        "    env: { A: '1', B: two }",
        "    org.example.k: v",
        "  pre: echo pre",
        "  post: [echo post1, echo post2]",
      ].join("\n"),
      "t.yaml",
    );
    assert.deepEqual(s.targets[0].copy, [{ src: "./x", dest: "/etc/x" }]);
    assert.equal(s.targets[1].copy.length, 2);
    assert.deepEqual(s.targets[1].entrypoint, ["/bin/sh", "-c", "echo hi"]);
    assert.deepEqual(s.targets[1].env, { A: "1", B: "two" });
    assert.deepEqual(s.targets[1].labels, { "org.example.k": "v" });
    assert.deepEqual(s.targets[1].post, ["echo post1", "echo post2"]);
  });

  test("rejects unknown keys, missing base, bad copy", () => {
    assert.throws(() => parseBuildSpec("a:\n  base: empty\n  bogus: 1\n", "t.yaml"), /t.yaml: target a: unknown key bogus/);
    assert.throws(() => parseBuildSpec("a:\n  run: x\n", "t.yaml"), /base is required/);
    assert.throws(() => parseBuildSpec("a:\n  base: empty\n  copy: onlyone\n", "t.yaml"), /SRC DEST/);
  });

  test("order: bases first; cycles and unknown bases refused", () => {
    const s = parseBuildSpec("c:\n  base: b\nb:\n  base: a\na:\n  base: empty\nd:\n  base: old\n", "t");
    assert.deepEqual(resolveBuildOrder(s.targets, ["old"]).map((t) => t.name), ["a", "b", "c", "d"]);
    assert.throws(() => resolveBuildOrder(s.targets, []), /target d: unknown base old/);
    const cyc = parseBuildSpec("x:\n  base: y\ny:\n  base: z\nz:\n  base: x\n", "t");
    assert.throws(() => resolveBuildOrder(cyc.targets, []), /build cycle: x -> y -> z -> x/);
  });

  test("dated tags count up per day", () => {
    assert.equal(dayStamp(new Date("2024-03-05T23:59:59Z")), "2024-03-05");
    assert.equal(nextDatedTag("web", "2024-03-05", []), "web-2024-03-05_1");
    assert.equal(nextDatedTag("web", "2024-03-05", ["web-2024-03-05_1", "web-2024-03-05_9", "web-2024-03-04_20"]), "web-2024-03-05_10");
  });

  test("resolveInRoot never leaves the root", () => {
    const dir = tmpdir();
    try {
      fs.mkdirSync(path.join(dir, "usr/lib"), { recursive: true });
      fs.symlinkSync("/usr/lib", path.join(dir, "lib"));
      fs.symlinkSync("../../../../etc", path.join(dir, "up"));
      assert.equal(resolveInRoot(dir, "/lib/x.so"), `${dir}/usr/lib/x.so`);
      assert.equal(resolveInRoot(dir, "../../etc/passwd"), `${dir}/etc/passwd`);
      assert.equal(resolveInRoot(dir, "up/passwd"), `${dir}/etc/passwd`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("ocigen build", () => {
  test("cirros-like: base tarball expanded, then a run writing a file; dated tags only for changed results", { skip: isolationSkip() }, async () => {
    const dir = tmpdir("ocigen-build-");
    try {
      const rootSrc = path.join(dir, "cirros-root");
      makeShellRootfs(rootSrc);
      run("tar", ["-C", rootSrc, "-czf", path.join(dir, "cirros.tar.gz"), "."]);
      const spec = path.join(dir, "cirros.yaml");
      fs.writeFileSync(
        spec,
        [
          "hello:",
          "  base: cirros",
          "  run: |",
          '    echo "Hello, world" > /hw',
          '  entrypoint: /bin/echo "hello world"',
          "cirros:",
          "  base: empty",
          "  expand: ./cirros.tar.gz",
        ].join("\n") + "\n",
      );
      const layoutDir = path.join(dir, "oci");
      const now = new Date("2024-03-05T10:00:00Z");
      const built = await buildFile(spec, { layout: layoutDir, now });
      assert.deepEqual(built.map((b) => b.tags), [["cirros", "cirros-2024-03-05_1"], ["hello", "hello-2024-03-05_1"]]);
      const layout = await Layout.open(layoutDir);
      const hello = await layout.resolve("hello");
      assert.equal(hello.manifest.layers.length, 2);
      assert.deepEqual(hello.config.config?.Entrypoint, ["/bin/echo", "hello world"]);
      const dated = await layout.resolve("hello-2024-03-05_1");
      assert.equal(dated.manifestDescriptor.digest, hello.manifestDescriptor.digest);
      const out = path.join(dir, "out");
      await unpackTag(layoutDir, "hello", out);
      assert.equal(fs.readFileSync(path.join(out, "hw"), "utf8"), "Hello, world\n");
      assert.ok(fs.existsSync(path.join(out, "bin/sh")));
      // the run layer holds /hw (and the root dir) only
      const top = hello.manifest.layers[1];
      const list = run("tar", ["-tzf", layout.blobPath(top.digest)]).split("\n").filter(Boolean).sort();
      assert.deepEqual(list, ["./", "hw"]);
      // building again, nothing changed: nothing is built, no tag added
      const index = fs.readFileSync(path.join(layoutDir, "index.json"), "utf8");
      const again = await buildFile(spec, { layout: layoutDir, now });
      assert.deepEqual(again.map((b) => [b.name, b.status, b.tags]), [["cirros", "unchanged", []], ["hello", "unchanged", []]]);
      assert.equal(again[1].manifestDescriptor.digest, hello.manifestDescriptor.digest);
      assert.equal(fs.readFileSync(path.join(layoutDir, "index.json"), "utf8"), index, "index.json untouched");
      // the run script changed: hello is rebuilt on the same cirros (not rebuilt), dated _2; "hello" moves
      fs.writeFileSync(spec, fs.readFileSync(spec, "utf8").replace("Hello, world", "Hello, again"));
      const changed = await buildFile(spec, { layout: layoutDir, now });
      assert.deepEqual(changed.map((b) => [b.name, b.status, b.tags]), [["cirros", "unchanged", []], ["hello", "built", ["hello", "hello-2024-03-05_2"]]]);
      const tags = await layout.listTags();
      assert.deepEqual(tags.sort(), ["cirros", "cirros-2024-03-05_1", "hello", "hello-2024-03-05_1", "hello-2024-03-05_2"]);
      const out2 = path.join(dir, "out2");
      await unpackTag(layoutDir, "hello", out2);
      assert.equal(fs.readFileSync(path.join(out2, "hw"), "utf8"), "Hello, again\n");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the shipped example (fixtures/example/example.yaml) builds as shipped, and a second run changes nothing", async () => {
    const dir = tmpdir("ocigen-build-example-");
    try {
      const spec = path.join(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), "..", "fixtures", "example", "example.yaml");
      const layoutDir = path.join(dir, "oci");
      const now = new Date("2024-03-05T10:00:00Z");
      const built = await buildFile(spec, { layout: layoutDir, now });
      assert.deepEqual(built.map((b) => [b.name, b.status, b.tags]), [
        ["base", "built", ["base", "base-2024-03-05_1"]],
        ["hello", "built", ["hello", "hello-2024-03-05_1"]],
      ]);
      const layout = await Layout.open(layoutDir);
      const hello = await layout.resolve("hello");
      assert.deepEqual(hello.config.config?.Entrypoint, ["/bin/sh", "/usr/bin/hello"]);
      assert.deepEqual(hello.config.config?.Cmd, ["world"]);
      assert.match(String(hello.manifest.annotations?.["org.ocigen.build.inputs"]), /^sha256:[0-9a-f]{64}$/);
      const out = path.join(dir, "out");
      await unpackTag(layoutDir, "hello", out);
      assert.match(fs.readFileSync(path.join(out, "etc/passwd"), "utf8"), /^hello:x:1000:1000:/m);
      assert.ok(fs.statSync(path.join(out, "srv")).isDirectory(), "the pre hook made /srv");
      assert.ok(fs.existsSync(path.join(out, "usr/bin/hello")));
      const index = fs.readFileSync(path.join(layoutDir, "index.json"), "utf8");
      const blobs = fs.readdirSync(path.join(layoutDir, "blobs/sha256")).sort();
      const again = await buildFile(spec, { layout: layoutDir, now: new Date("2024-03-06T10:00:00Z") });
      assert.deepEqual(again.map((b) => b.status), ["unchanged", "unchanged"]);
      assert.equal(fs.readFileSync(path.join(layoutDir, "index.json"), "utf8"), index);
      assert.deepEqual(fs.readdirSync(path.join(layoutDir, "blobs/sha256")).sort(), blobs, "no blob written");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("unchanged targets are skipped (hooks not run); a changed copied file rebuilds its target and what is built on it", async () => {
    const dir = tmpdir("ocigen-build-inputs-");
    try {
      fs.mkdirSync(path.join(dir, "tree"));
      fs.writeFileSync(path.join(dir, "tree", "a"), "a1\n");
      fs.writeFileSync(path.join(dir, "conf"), "c1\n");
      const spec = path.join(dir, "s.yaml");
      fs.writeFileSync(spec, [
        "base:",
        "  base: empty",
        "  pre: echo base >> ran.log",
        "  copy: tree /tree",
        "app:",
        "  base: base",
        "  pre: echo app >> ran.log",
        "  copy: conf /etc/conf",
        "",
      ].join("\n"));
      const layoutDir = path.join(dir, "oci");
      const now = new Date("2024-03-05T10:00:00Z");
      const ran = () => fs.readFileSync(path.join(dir, "ran.log"), "utf8").trim().split("\n");
      await buildFile(spec, { layout: layoutDir, now });
      assert.deepEqual(ran(), ["base", "app"]);
      const layout = await Layout.open(layoutDir);
      const app1 = (await layout.resolve("app")).manifestDescriptor.digest;
      // nothing changed
      const r2 = await buildFile(spec, { layout: layoutDir, now });
      assert.deepEqual(r2.map((b) => b.status), ["unchanged", "unchanged"]);
      assert.deepEqual(ran(), ["base", "app"], "no hook ran");
      // app's own file changed: base untouched, app rebuilt and dated
      fs.writeFileSync(path.join(dir, "conf"), "c2\n");
      const r3 = await buildFile(spec, { layout: layoutDir, now });
      assert.deepEqual(r3.map((b) => [b.status, b.dated]), [["unchanged", undefined], ["built", "app-2024-03-05_2"]]);
      assert.deepEqual(ran(), ["base", "app", "app"]);
      // a file inside base's copied tree changed: base rebuilt, so app too (its base moved)
      fs.writeFileSync(path.join(dir, "tree", "a"), "a2\n");
      const r4 = await buildFile(spec, { layout: layoutDir, now });
      assert.deepEqual(r4.map((b) => [b.status, b.dated]), [["built", "base-2024-03-05_2"], ["built", "app-2024-03-05_3"]]);
      // --force: built although unchanged
      const r5 = await buildFile(spec, { layout: layoutDir, now, force: true });
      assert.deepEqual(r5.map((b) => b.status), ["built", "built"]);
      assert.notEqual((await layout.resolve("app")).manifestDescriptor.digest, app1);
      const tags = (await layout.listTags()).sort();
      assert.deepEqual(tags.filter((t) => t.startsWith("app")), ["app", "app-2024-03-05_1", "app-2024-03-05_2", "app-2024-03-05_3", "app-2024-03-05_4"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("copy lists, annotations env reaching the runtime config, pre/post hooks", async () => {
    const dir = tmpdir("ocigen-build-");
    try {
      fs.mkdirSync(path.join(dir, "files/tree/sub"), { recursive: true });
      fs.writeFileSync(path.join(dir, "files/a.conf"), "a=1\n");
      fs.writeFileSync(path.join(dir, "files/tree/sub/x"), "x\n");
      fs.symlinkSync("sub/x", path.join(dir, "files/tree/link"));
      const spec = path.join(dir, "app.yaml");
      fs.writeFileSync(
        spec,
        [
          "app:",
          "  base: empty",
          '  pre: echo pre > "$ROOTFS/pre-marker"; touch "$ROOTFS/remove-me"',
          "  copy:",
          "    - files/a.conf /etc/app/a.conf",
          "    - files/tree /opt/",
          "    - files/a.conf ../../../escape.conf",
          "  entrypoint: [/app, --serve]",
          "  annotations:",
          "    env:",
          "      APP_MODE: production",
          "      GREETING: hello world",
          "    org.opencontainers.image.title: App",
          '  post: rm "$ROOTFS/remove-me"; echo "$OCIGEN_TARGET" > "$ROOTFS/post-marker"',
        ].join("\n") + "\n",
      );
      const layoutDir = path.join(dir, "oci");
      await buildFile(spec, { layout: layoutDir });
      const layout = await Layout.open(layoutDir);
      const img = await layout.resolve("app");
      assert.ok(img.config.config?.Env?.includes("APP_MODE=production"));
      assert.ok(img.config.config?.Env?.includes("GREETING=hello world"));
      assert.equal(img.config.config?.Labels?.["org.opencontainers.image.title"], "App");
      assert.equal(img.manifest.annotations?.["org.opencontainers.image.title"], "App");
      const rt = convertConfig(img.config);
      assert.ok(rt.process?.env?.includes("APP_MODE=production"), JSON.stringify(rt.process?.env));
      assert.deepEqual(rt.process?.args, ["/app", "--serve"]);
      const out = path.join(dir, "out");
      await unpackTag(layoutDir, "app", out);
      assert.equal(fs.readFileSync(path.join(out, "etc/app/a.conf"), "utf8"), "a=1\n");
      assert.equal(fs.readFileSync(path.join(out, "opt/tree/sub/x"), "utf8"), "x\n");
      assert.equal(fs.readlinkSync(path.join(out, "opt/tree/link")), "sub/x");
      assert.equal(fs.readFileSync(path.join(out, "escape.conf"), "utf8"), "a=1\n");
      assert.ok(!fs.existsSync(path.join(dir, "escape.conf")));
      assert.equal(fs.readFileSync(path.join(out, "pre-marker"), "utf8"), "pre\n");
      assert.equal(fs.readFileSync(path.join(out, "post-marker"), "utf8"), "app\n");
      assert.ok(!fs.existsSync(path.join(out, "remove-me")));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("expand: gzip, xz, zstd, bzip2 and plain tarballs; install a .deb", async () => {
    const dir = tmpdir("ocigen-build-");
    try {
      const src = path.join(dir, "t");
      const specLines = ["pkgs:", "  base: empty", "  expand:"];
      const kinds: Array<[string, string[]]> = [
        ["plain.tar", []],
        ["g.tar.gz", ["-z"]],
        ["x.tar.xz", ["-J"]],
        ["b.tar.bz2", ["-j"]],
        ["z.tar.zst", ["--zstd"]],
      ];
      for (const [name, flag] of kinds) {
        if (name.endsWith("zst") && !have("zstd")) continue;
        fs.rmSync(src, { recursive: true, force: true });
        fs.mkdirSync(path.join(src, "data"), { recursive: true });
        fs.writeFileSync(path.join(src, "data", name), name);
        run("tar", ["-C", src, "-c", ...flag, "-f", path.join(dir, name), "data"]);
        specLines.push(`    - ${name}`);
      }
      let deb = false;
      if (have("dpkg-deb")) {
        const pk = path.join(dir, "pkg");
        fs.mkdirSync(path.join(pk, "DEBIAN"), { recursive: true });
        fs.mkdirSync(path.join(pk, "usr/share/hello"), { recursive: true });
        fs.writeFileSync(path.join(pk, "usr/share/hello/greeting"), "hi from deb\n");
        fs.writeFileSync(
          path.join(pk, "DEBIAN/control"),
          "Package: hello-ocigen\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.com>\nDescription: test\n",
        );
        run("dpkg-deb", ["--build", "--root-owner-group", pk, path.join(dir, "hello.deb")]);
        specLines.push("  install: hello.deb");
        deb = true;
      }
      fs.writeFileSync(path.join(dir, "s.yaml"), specLines.join("\n") + "\n");
      await buildFile(path.join(dir, "s.yaml"), { layout: path.join(dir, "oci") });
      const out = path.join(dir, "out");
      await unpackTag(path.join(dir, "oci"), "pkgs", out);
      for (const [name] of kinds) {
        if (name.endsWith("zst") && !have("zstd")) continue;
        assert.equal(fs.readFileSync(path.join(out, "data", name), "utf8"), name);
      }
      if (deb) assert.equal(fs.readFileSync(path.join(out, "usr/share/hello/greeting"), "utf8"), "hi from deb\n");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a failing target leaves the layout exactly as it was", async () => {
    const dir = tmpdir("ocigen-build-");
    try {
      fs.writeFileSync(path.join(dir, "f"), "content\n");
      const layoutDir = path.join(dir, "oci");
      fs.writeFileSync(path.join(dir, "ok.yaml"), "ok:\n  base: empty\n  copy: f /f\n");
      await buildFile(path.join(dir, "ok.yaml"), { layout: layoutDir });
      const before = dirState(layoutDir);
      fs.writeFileSync(path.join(dir, "f"), "changed\n");
      fs.writeFileSync(path.join(dir, "bad.yaml"), "ok:\n  base: empty\n  copy: f /f\n  post: exit 3\n");
      await assert.rejects(buildFile(path.join(dir, "bad.yaml"), { layout: layoutDir }), /target ok.*post hook.*exit 3/);
      assert.deepEqual(dirState(layoutDir), before);
      // a second target fails (a .wh. name is refused while diffing) after the first one committed:
      // the first stays, the second changes nothing and leaves no unreferenced blob
      fs.writeFileSync(
        path.join(dir, "two.yaml"),
        "first:\n  base: ok\n  copy: f /g\nsecond:\n  base: first\n  post: touch \"$ROOTFS/.wh.bad\"\n",
      );
      await assert.rejects(buildFile(path.join(dir, "two.yaml"), { layout: layoutDir }), /second.*\.wh\./);
      const layout = await Layout.open(layoutDir);
      const tags = await layout.listTags();
      assert.ok(tags.includes("first") && !tags.includes("second"));
      const { gcLayout } = await import("../src/oci/gc.ts");
      const g = await gcLayout(layout);
      assert.deepEqual(g.removed, [], "no unreferenced blobs left behind");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the build verb: ocigen build SPEC --layout DIR prints the tags", async () => {
    const dir = tmpdir("ocigen-build-");
    try {
      fs.writeFileSync(path.join(dir, "f"), "x");
      fs.writeFileSync(path.join(dir, "s.yaml"), "one:\n  base: empty\n  copy: f /f\n  cmd: /f --x\n");
      const { main } = await import("../src/cli/main.ts");
      const saved = process.exitCode;
      process.exitCode = undefined;
      const write = process.stdout.write.bind(process.stdout);
      let out = "";
      (process.stdout as { write: unknown }).write = (c: string | Uint8Array) => {
        out += String(c);
        return true;
      };
      let code: number;
      try {
        code = await main(["node", "ocigen", "build", path.join(dir, "s.yaml"), "--layout", path.join(dir, "oci"), "--compress", "zstd"]);
      } finally {
        (process.stdout as { write: unknown }).write = write;
        process.exitCode = saved;
      }
      assert.equal(code, 0);
      assert.match(out, /^one one-\d{4}-\d{2}-\d{2}_1 sha256:[0-9a-f]{64}\n$/);
      const img = await (await Layout.open(path.join(dir, "oci"))).resolve("one");
      assert.deepEqual(img.config.config?.Cmd, ["/f", "--x"]);
      assert.equal(img.manifest.layers[0].mediaType, "application/vnd.oci.image.layer.v1.tar+zstd");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("clear errors: no isolation for run, missing package tools, unknown package type", async () => {
    const dir = tmpdir("ocigen-build-");
    const saved = { path: process.env.PATH };
    try {
      makeShellRootfs(path.join(dir, "r"));
      run("tar", ["-C", path.join(dir, "r"), "-cf", path.join(dir, "r.tar"), "."]);
      fs.writeFileSync(path.join(dir, "run.yaml"), "x:\n  base: empty\n  expand: r.tar\n  run: echo hi > /hi\n");
      await assert.rejects(buildFile(path.join(dir, "run.yaml"), { layout: path.join(dir, "oci"), isolation: "none" }), /Cannot build target x: Cannot run the run script: no isolation available/);
      fs.writeFileSync(path.join(dir, "p.rpm"), "not really an rpm");
      fs.writeFileSync(path.join(dir, "rpm.yaml"), "y:\n  base: empty\n  install: p.rpm\n");
      process.env.PATH = path.join(dir, "empty-path");
      await assert.rejects(buildFile(path.join(dir, "rpm.yaml"), { layout: path.join(dir, "oci") }), /rpm2cpio is not installed/);
      process.env.PATH = saved.path;
      fs.writeFileSync(path.join(dir, "p.zip"), "PK");
      fs.writeFileSync(path.join(dir, "zip.yaml"), "z:\n  base: empty\n  install: p.zip\n");
      await assert.rejects(buildFile(path.join(dir, "zip.yaml"), { layout: path.join(dir, "oci") }), /not a \.deb or \.rpm package/);
      // no target was built: the layout these builds would have created does not exist
      assert.equal(fs.existsSync(path.join(dir, "oci")), false);
    } finally {
      process.env.PATH = saved.path;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a cycle is refused before any work", async () => {
    const dir = tmpdir("ocigen-build-");
    try {
      const marker = path.join(dir, "marker");
      fs.writeFileSync(
        path.join(dir, "cyc.yaml"),
        `ok:\n  base: empty\n  pre: touch ${JSON.stringify(marker)}\na:\n  base: b\nb:\n  base: a\n`,
      );
      await assert.rejects(buildFile(path.join(dir, "cyc.yaml"), { layout: path.join(dir, "oci") }), /build cycle: a -> b -> a/);
      assert.ok(!fs.existsSync(marker), "no target ran");
      assert.ok(!fs.existsSync(path.join(dir, "oci")), "no layout created");
      fs.writeFileSync(path.join(dir, "unk.yaml"), `ok:\n  base: empty\n  pre: touch ${JSON.stringify(marker)}\nz:\n  base: nope\n`);
      await assert.rejects(buildFile(path.join(dir, "unk.yaml"), { layout: path.join(dir, "oci") }), /unknown base nope/);
      assert.ok(!fs.existsSync(marker));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
