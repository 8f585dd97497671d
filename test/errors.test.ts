import { test } from "node:test";
import assert from "node:assert/strict";
import { OcigenError, shortDigest, wrapIo } from "../src/errors.ts";

test("shortDigest keeps the algorithm and 12 hex digits", () => {
  assert.equal(shortDigest("sha256:" + "ab".repeat(32)), "sha256:abababababab..");
  assert.equal(shortDigest("sha256:abc"), "sha256:abc");
});

test("wrapIo names the path and operation and keeps the errno code", () => {
  const cause = Object.assign(new Error("ENOENT: no such file or directory, open '/x'"), { code: "ENOENT" });
  const e = wrapIo(cause, "mkdir parent", "etc/x");
  assert.ok(e instanceof OcigenError);
  assert.equal(e.code, "EIO");
  assert.equal(e.message, "etc/x: mkdir parent: ENOENT (no such file or directory)");
  assert.equal(e.cause, cause);
});
