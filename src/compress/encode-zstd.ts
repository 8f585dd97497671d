/**
 * zstd compression of a byte stream: the `zstd` command line tool, fed
 * through stdin/stdout with backpressure (`zstd -q -c -T1 -LEVEL`,
 * deterministic, the same bytes on Node and Deno), else the runtime's
 * `node:zlib` zstd when it has one (Node >= 22.15, Deno).
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import zlib from "node:zlib";
import { OcigenError } from "../errors.ts";

let zstdCli: boolean | undefined;

/**
 * True when zstd layers can be written (runtime zstd or the `zstd` command).
 *
 * @example
 * ```ts
 * if (!zstdEncodeAvailable()) console.log("install zstd");
 * ```
 */
export function zstdEncodeAvailable(): boolean {
  return zstdCliAvailable() || typeof (zlib as unknown as Record<string, unknown>).createZstdCompress === "function";
}

function zstdCliAvailable(): boolean {
  if (zstdCli === undefined) {
    const r = spawnSync("zstd", ["--version"], { stdio: "ignore" });
    zstdCli = !r.error && r.status === 0;
  }
  return zstdCli;
}

/**
 * Compresses `source` with zstd.
 *
 * @example
 * ```ts
 * for await (const c of zstdCompressStream(chunks())) out.push(c);
 * ```
 */
export async function* zstdCompressStream(source: AsyncIterable<Uint8Array>, level = 3): AsyncGenerator<Uint8Array> {
  const z = zlib as unknown as Record<string, (o?: unknown) => NodeJS.ReadWriteStream & { destroy(e?: Error): void }>;
  if (!zstdCliAvailable() && typeof z.createZstdCompress === "function") {
    const { pipeThroughTransform } = await import("../stream/transform.ts");
    yield* pipeThroughTransform(source, z.createZstdCompress());
    return;
  }
  if (!zstdEncodeAvailable()) {
    throw new OcigenError("ENOTOOL", "Cannot write a zstd layer: this runtime has no zstd encoder and the zstd command is not installed");
  }
  const child = spawn("zstd", ["-q", "-c", "-T1", `-${level}`], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += String(d)));
  const exited = new Promise<number>((res, rej) => {
    child.on("error", rej);
    child.on("close", (code) => res(code ?? 1));
  });
  let pumpError: unknown;
  const stdin = child.stdin!;
  stdin.on("error", () => {}); // EPIPE is reported through the exit status
  const pump = (async () => {
    try {
      for await (const chunk of source) {
        if (!stdin.write(chunk)) await new Promise<void>((res) => stdin.once("drain", res));
      }
      stdin.end();
    } catch (e) {
      pumpError = e;
      child.kill("SIGKILL");
    }
  })();
  for await (const c of child.stdout! as AsyncIterable<Uint8Array>) yield c;
  await pump;
  const code = await exited;
  if (pumpError) throw pumpError;
  if (code !== 0) throw new OcigenError("EIO", `zstd: compression failed (exit ${code}): ${stderr.trim().split("\n")[0]}`);
}
