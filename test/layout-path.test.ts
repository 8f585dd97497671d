// layoutPath (src/oci/layout-file.ts) skips path.join's normalising pass for
// plain names: it must give exactly the string path.join gives, for any
// directory and relative name (dots, empty and repeated slashes included).
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { layoutPath } from "../src/oci/layout-file.ts";

const part = fc.constantFrom("", ".", "..", "a", "b.c", ".hidden", "sha256", "x..y", "/", "//");
const pathOf = fc.array(part, { maxLength: 6 }).map((ps) => ps.join("/"));

test("layoutPath gives path.join's string", () => {
  for (const [d, r] of [["/l", "index.json"], ["/l", "blobs/sha256/ab"], ["/", "x"], ["/l/", "x"], ["/l", "../x"], ["l", "x"], ["./l", "x"], ["/a/./l", "x"]]) {
    assert.equal(layoutPath(d, r), join(d, r), `${d} + ${r}`);
  }
  fc.assert(fc.property(fc.oneof(pathOf, pathOf.map((p) => "/" + p)), pathOf, (d, r) => {
    assert.equal(layoutPath(d, r), join(d, r));
  }), { numRuns: 2000 });
});
