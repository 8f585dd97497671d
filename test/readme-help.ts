/**
 * The README's verb reference is the CLI's own `--help` text. This module
 * renders it (every visible verb, `raw` sub-verbs included, at 80 columns);
 * `node --import tsx test/readme-help.ts --write` rewrites the block between
 * `<!-- help:begin -->` and `<!-- help:end -->` in README.md, and
 * test/readme.test.ts fails when the two drift apart.
 *
 * @module
 */
import * as fs from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { makeProgram } from "../src/cli/main.ts";

/** README.md of this checkout. */
export const README = join(dirname(fileURLToPath(import.meta.url)), "..", "README.md");

/** Markdown for every visible verb's `--help`. */
export function renderHelpMarkdown(): string {
  const program = makeProgram();
  const out: string[] = [];
  const visit = (cmd: Command, path: string[]) => {
    cmd.configureOutput({ getOutHelpWidth: () => 80, getErrHelpWidth: () => 80 });
    const help = cmd.createHelp();
    for (const sub of help.visibleCommands(cmd)) {
      if (sub.name() === "help") continue;
      const p = [...path, sub.name()];
      sub.configureOutput({ getOutHelpWidth: () => 80, getErrHelpWidth: () => 80 });
      if (sub.commands.length > 0) {
        visit(sub, p);
        continue;
      }
      out.push(`#### \`ocigen ${p.join(" ")}\`\n\n\`\`\`\n${sub.helpInformation().trimEnd()}\n\`\`\`\n`);
    }
  };
  visit(program, []);
  return out.join("\n");
}

/** The README with its help block replaced by `md`. */
export function withHelpBlock(readme: string, md: string): string {
  const begin = "<!-- help:begin -->";
  const end = "<!-- help:end -->";
  const i = readme.indexOf(begin);
  const j = readme.indexOf(end);
  if (i < 0 || j < i) throw new Error("README.md has no help block");
  return readme.slice(0, i + begin.length) + "\n" + md + readme.slice(j);
}

if (process.argv.includes("--write")) {
  const readme = fs.readFileSync(README, "utf8");
  fs.writeFileSync(README, withHelpBlock(readme, renderHelpMarkdown()));
}
