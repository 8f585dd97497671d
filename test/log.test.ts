import { test } from "node:test";
import assert from "node:assert/strict";
import { oneLine } from "../src/log.ts";

test("oneLine: control characters cannot start a new line or reach the terminal", () => {
  assert.equal(oneLine("entry a\nocigen: all good\x1b[2J"), "entry a\\nocigen: all good\\x1b[2J");
});

test("oneLine: a hostile 400 KB entry name gives a bounded message that keeps both ends", () => {
  const name = "a/" + "b".repeat(400_000) + "/etc/passwd";
  const msg = oneLine(`Cannot unpack layer sha256:ab..: entry ${name} escapes the root`);
  assert.ok(msg.length < 1000, `length ${msg.length}`);
  assert.match(msg, /^Cannot unpack layer sha256:ab\.\.: entry a\/bbb/);
  assert.match(msg, /\.\.\.\[400013 chars\]\.\.\./);
  assert.match(msg, /\/etc\/passwd escapes the root$/);
  assert.equal(oneLine("short words stay as they are"), "short words stay as they are");
});
