/**
 * Build order: every target after its base; bases must be `empty`, another
 * target of the spec, or a tag already in the layout. Cycles and unknown
 * bases are found before anything is built.
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import type { BuildTarget } from "./spec.ts";

/**
 * Orders `targets` so that each comes after the target it is based on
 * (file order otherwise). `existingTags` are the layout's tags.
 * A target whose base is its own name or the name of a later target refers
 * to that target (not to an existing tag of the same name).
 *
 * @example
 * ```ts
 * resolveBuildOrder([{ name: "b", base: "a" }, { name: "a", base: "empty" }] as BuildTarget[], []);
 * // -> [a, b]
 * ```
 */
export function resolveBuildOrder(targets: BuildTarget[], existingTags: Iterable<string>, file = "spec"): BuildTarget[] {
  const byName = new Map(targets.map((t) => [t.name, t]));
  const tags = new Set(existingTags);
  for (const t of targets) {
    if (t.base === "empty" || byName.has(t.base) || tags.has(t.base)) continue;
    throw new OcigenError("EBUILD", `${file}: target ${t.name}: unknown base ${t.base} (not empty, not a target, not a tag of the layout)`);
  }
  const out: BuildTarget[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (t: BuildTarget, chain: string[]) => {
    const s = state.get(t.name);
    if (s === "done") return;
    if (s === "visiting") {
      const from = chain.indexOf(t.name);
      const cycle = [...chain.slice(from), t.name].join(" -> ");
      throw new OcigenError("EBUILD", `${file}: build cycle: ${cycle}`);
    }
    state.set(t.name, "visiting");
    const b = byName.get(t.base);
    if (b) visit(b, [...chain, t.name]);
    state.set(t.name, "done");
    out.push(t);
  };
  for (const t of targets) visit(t, []);
  return out;
}
