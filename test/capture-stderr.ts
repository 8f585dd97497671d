// Captures what an in-process CLI run writes to stderr (the generator tests
// call `main` directly and look at its messages).
import process from "node:process";

/**
 * Runs `fn` with `process.stderr.write` captured; returns its value and the
 * text written. stderr is restored even when `fn` throws.
 *
 * @example
 * ```ts
 * const { value, stderr } = await captureStderr(() => main(["generate", dir]));
 * ```
 */
export async function captureStderr<T>(fn: () => Promise<T>): Promise<{ value: T; stderr: string }> {
  const orig = process.stderr.write.bind(process.stderr);
  let buf = "";
  (process.stderr as unknown as { write: (s: string | Uint8Array) => boolean }).write = (s) => {
    buf += typeof s === "string" ? s : new TextDecoder().decode(s);
    return true;
  };
  try {
    return { value: await fn(), stderr: buf };
  } finally {
    (process.stderr as unknown as { write: typeof orig }).write = orig;
  }
}
