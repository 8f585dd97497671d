// Runs the ocigen benchmark suite (see run.ts) from the sources:
//
//   node --import tsx bench/main.ts [--full] [--scale MB] [--runs N] [--json] [--no-unpack] [--huge MB]
//   deno run -A bench/main.ts [same flags]
//
// `npm run bench` runs the same suite through the CLI (`ocigen bench --full`).
import process from "node:process";
import { formatBench, runBench } from "./run.ts";

const args = process.argv.slice(2);
const val = (flag: string) => {
  const i = args.indexOf(flag);
  return i >= 0 ? Number(args[i + 1]) : undefined;
};
const json = args.includes("--json");
const full = args.includes("--full");
const res = await runBench({
  scaleMB: val("--scale") ?? (full ? 400 : 48),
  runs: val("--runs") ?? (full ? 3 : 2),
  noUnpack: args.includes("--no-unpack"),
  hugeMB: val("--huge"),
  log: (m) => process.stderr.write(m + "\n"),
});
process.stdout.write((json ? JSON.stringify(res, null, 2) : formatBench(res)) + "\n");
