// Runs the ocigen benchmarks from the sources, as `ocigen bench` does from
// the bundle (`npm run bench`):
//
//   node --import tsx bench/main.ts [--quick] [--factor F] [--runs N] [--only ids] [--json]
//       the speed figures (figures.ts): every figure against its baseline, in one run
//   node --import tsx bench/main.ts --kernels [--full] [--scale MB] [--runs N] [--json] [--no-unpack] [--huge MB]
//       the kernel suite (run.ts)
//   deno run -A bench/main.ts [same flags]
import process from "node:process";
import { formatBench, runBench } from "./run.ts";
import { formatFigures, runFigures } from "./figures.ts";

const args = process.argv.slice(2);
const val = (flag: string) => {
  const i = args.indexOf(flag);
  return i >= 0 ? Number(args[i + 1]) : undefined;
};
const str = (flag: string) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const json = args.includes("--json");
const full = args.includes("--full");
const log = (m: string) => process.stderr.write(m + "\n");
if (args.includes("--kernels")) {
  const res = await runBench({
    scaleMB: val("--scale") ?? (full ? 400 : 48),
    runs: val("--runs") ?? (full ? 3 : 2),
    noUnpack: args.includes("--no-unpack"),
    hugeMB: val("--huge"),
    log,
  });
  process.stdout.write((json ? JSON.stringify(res, null, 2) : formatBench(res)) + "\n");
} else {
  const res = await runFigures({
    quick: args.includes("--quick"),
    factor: val("--factor"),
    runs: val("--runs"),
    only: str("--only")?.split(","),
    dir: str("--dir"),
    log,
  });
  process.stdout.write((json ? JSON.stringify(res, null, 2) : formatFigures(res)) + "\n");
}
