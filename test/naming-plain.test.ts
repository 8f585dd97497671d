// escapeNamePart's fast path (src/generator/naming.ts): a part made of the
// characters unit names keep, with single dots only between them, comes back
// unchanged; any other part over the same alphabet (a dot at an edge, two in
// a row) is escaped, so it does not.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { escapeNamePart } from "../src/generator/naming.ts";

test("plain parts are kept, parts with edge or doubled dots are escaped", () => {
  for (const s of ["latest", "v1.0.0", "a:5000", "my-app_1", "A.b.C"]) assert.equal(escapeNamePart(s), s);
  for (const [s, want] of [[".x", "\\x2ex"], ["x.", "x\\x2e"], ["a..b", "a.\\x2eb"], ["a b", "a\\x20b"]]) assert.equal(escapeNamePart(s), want);
  const plain = (s: string) => s !== "" && !s.startsWith(".") && !s.endsWith(".") && !s.includes("..");
  fc.assert(fc.property(fc.string({ unit: fc.constantFrom("a", "Z", "9", ":", "_", "-", "."), minLength: 1, maxLength: 12 }), (s) => {
    assert.equal(escapeNamePart(s) === s, plain(s), s);
  }), { numRuns: 3000 });
});
