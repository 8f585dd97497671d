/**
 * The command-line flags the benchmarks share: numeric options (`--mb N`),
 * `--json` (the report on stdout, progress silenced) and `--keep`.
 *
 * @module
 */
import process from "node:process";

/**
 * Parses `argv` (default: this process's arguments).
 *
 * @example
 * ```ts
 * const { opt, json, keep, say } = benchFlags();
 * const MB = opt("--mb", 170);
 * say("progress"); // to stderr, unless --json
 * ```
 */
export function benchFlags(argv: string[] = process.argv.slice(2)): {
  opt: (k: string, d: number) => number;
  json: boolean;
  keep: boolean;
  say: (s: string) => void;
} {
  const json = argv.includes("--json");
  return {
    opt: (k, d) => (argv.includes(k) ? Number(argv[argv.indexOf(k) + 1]) : d),
    json,
    keep: argv.includes("--keep"),
    say: (s) => {
      if (!json) console.error(s);
    },
  };
}
