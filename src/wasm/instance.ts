/**
 * Synchronous loading of the embedded WebAssembly kernels.
 *
 * Each kernel is compiled once per process from the base64 that
 * `.ci/build.mjs` embeds in `src/wasm/generated/<name>.ts`; every user gets its
 * own instance (own linear memory, own state). `WebAssembly.Module` and
 * `WebAssembly.Instance` are synchronous on Node and Deno.
 *
 * @module
 */

import { Buffer } from "node:buffer";

const modules = new Map<string, WebAssembly.Module>();

/**
 * Decodes base64 natively (`node:buffer`, on Node and Deno). A JS loop over
 * `atob`'s characters ran ~30k times at every start, long enough for V8 to
 * optimise it on the side.
 *
 * @example
 * ```ts
 * decodeBase64("AGFzbQ=="); // Uint8Array [0, 97, 115, 109]
 * ```
 */
export function decodeBase64(b64: string): Uint8Array {
  const b = Buffer.from(b64, "base64");
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Host functions a kernel imports (beside `abort`), by name.
 *
 * @example
 * ```ts
 * const env: KernelImports = { log: (n) => (console.log(n), 0) };
 * ```
 */
export type KernelImports = Record<string, (...args: number[]) => number>;

/**
 * The compiled module of the kernel `name` whose bytes are the base64 `b64`:
 * compiled on first use, then cached for the process (a worker thread can be
 * handed the compiled module instead of compiling it again).
 *
 * @example
 * ```ts
 * import { wasmBase64 } from "./generated/inflate.ts";
 * const mod = kernelModule("inflate", wasmBase64);
 * ```
 */
export function kernelModule(name: string, b64: string): WebAssembly.Module {
  let mod = modules.get(name);
  if (!mod) {
    mod = new WebAssembly.Module(decodeBase64(b64) as BufferSource);
    modules.set(name, mod);
  }
  return mod;
}

/**
 * A fresh instance of a compiled kernel module (own memory, own state); a
 * kernel `abort` becomes an Error naming the kernel.
 *
 * @example
 * ```ts
 * const inst = instantiateModule(kernelModule("inflate", wasmBase64), "inflate");
 * ```
 */
export function instantiateModule(mod: WebAssembly.Module, name: string, env: KernelImports = {}): WebAssembly.Instance {
  return new WebAssembly.Instance(mod, {
    env: {
      ...env,
      abort(_msg: number, _file: number, line: number, col: number) {
        throw new Error(`wasm kernel ${name} aborted at ${line}:${col}`);
      },
    },
  });
}

/**
 * Returns a fresh instance of the kernel `name` whose module bytes are the
 * base64 `b64` (compiled once and cached). `env` adds host functions the
 * kernel imports (beside `abort`).
 *
 * @example
 * ```ts
 * import { wasmBase64 } from "./generated/inflate.ts";
 * const inst = instantiateKernel("inflate", wasmBase64);
 * ```
 */
export function instantiateKernel(name: string, b64: string, env: KernelImports = {}): WebAssembly.Instance {
  return instantiateModule(kernelModule(name, b64), name, env);
}

/**
 * A view helper that re-creates its `Uint8Array` when the instance's memory
 * grows (growing detaches the old ArrayBuffer).
 *
 * @example
 * ```ts
 * const mem = new MemoryView(inst.exports.memory as WebAssembly.Memory);
 * mem.u8.set(bytes, ptr);
 * ```
 */
export class MemoryView {
  private buf: ArrayBuffer;
  private view: Uint8Array;
  constructor(private readonly memory: WebAssembly.Memory) {
    this.buf = memory.buffer;
    this.view = new Uint8Array(this.buf);
  }
  /** The current byte view of linear memory. */
  get u8(): Uint8Array {
    if (this.memory.buffer !== this.buf) {
      this.buf = this.memory.buffer;
      this.view = new Uint8Array(this.buf);
    }
    return this.view;
  }
}

/**
 * A 32-bit number as `0x` and eight hex digits (kernel error details such as
 * magic numbers and checksums).
 *
 * @example
 * ```ts
 * hex32(0xfd2fb528); // "0xfd2fb528"
 * ```
 */
export function hex32(n: number): string {
  return "0x" + (n >>> 0).toString(16).padStart(8, "0");
}
