/**
 * Verb `build SPEC.yaml [--layout DIR]` (genoci).
 *
 * @module
 */
import process from "node:process";
import { type Command, Option } from "commander";
import { start as startProgress } from "../../progress.ts";
import { buildJson } from "../json.ts";
import { settings } from "../context.ts";
// The builder (and its YAML parser) is imported by the action: only `build` needs it.

/**
 * Registers `build` on the program (and its `raw` command).
 *
 * @example
 * ```ts
 * register(program, program.command("raw"));
 * ```
 */
export function register(program: Command, _raw: Command): void {
  program
    .command("build")
    .description(
      "build images from a genoci YAML spec: per target one new layer, tagged TAG and, when the result differs " +
        "from what TAG named, TAG-YYYY-MM-DD_N; targets whose inputs did not change are skipped",
    )
    .argument("<spec>", "YAML build spec")
    .option("--layout <layout>", "path of the layout to build into (created when missing)", "oci")
    .addOption(new Option("--compress <kind>", "layer compression").choices(["gzip", "zstd", "none", "auto"]).default("gzip"))
    .option("--force", "build targets whose inputs are unchanged too")
    .option("--json", "print what was built as JSON")
    .action(async (spec: string, o: { layout: string; compress: string; force?: boolean; json?: boolean }) => {
      const [{ buildFile }, { parseCompression }] = await Promise.all([
        import("../../recipe/build.ts"),
        import("../../compress/encode.ts"),
      ]);
      // progress (TTY only): targets done/total, the current one named
      const p = startProgress("build");
      const s = settings();
      let built;
      try {
        built = await buildFile(spec, {
          layout: o.layout,
          compression: parseCompression(o.compress),
          isolation: s.isolation,
          hookEnv: s.childEnv,
          sourceDateEpoch: s.sourceDateEpoch,
          gzip: s.gzip,
          onTarget: (name, i, total) => p.update({ itemsDone: i, items: total, note: name }),
          force: Boolean(o.force),
        });
      } finally {
        p.done();
      }
      if (o.json) {
        process.stdout.write(JSON.stringify(buildJson(o.layout, built)) + "\n");
        return;
      }
      for (const b of built) {
        process.stdout.write(
          b.status === "unchanged" ? `${b.name} ${b.manifestDescriptor.digest} unchanged\n` : `${b.tags.join(" ")} ${b.manifestDescriptor.digest}\n`,
        );
      }
    });
}
