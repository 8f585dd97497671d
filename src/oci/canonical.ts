/**
 * Canonical JSON: object keys sorted (code-point order) recursively, no
 * insignificant whitespace. ocigen writes every JSON blob this way, so equal
 * documents get equal digests.
 *
 * @module
 */

/**
 * Serialises `v` canonically.
 *
 * @example
 * ```ts
 * canonicalJSON({ b: 1, a: [true, null] }); // '{"a":[true,null],"b":1}'
 * ```
 */
export function canonicalJSON(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}
