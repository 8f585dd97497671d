/**
 * The `user.rootlesscontainers` extended attribute (rootless-containers
 * spec, used by umoci, runc's rootless tooling and others): the owner a file
 * has inside the image, kept on a rootless unpack where it cannot be applied.
 *
 * Its value is the protobuf message
 *
 * ```proto
 * syntax = "proto3";
 * message Resource { uint32 uid = 1; uint32 gid = 2; }
 * ```
 *
 * where `4294967295` (uint32 -1, "noop") means "not recorded: the file's
 * own owner". proto3 leaves out fields that are 0, so a missing field reads
 * as 0. Like umoci, ocigen writes the attribute only for owners other than
 * 0:0, with a 0 id written as noop (`992:0` -> uid 992, gid noop), and drops
 * it from the layers it writes.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** Name of the attribute. */
export const ROOTLESS_XATTR = "user.rootlesscontainers";

/** The "noop" id: keep the file's own owner. */
export const NOOP_ID = 0xffffffff;

function varint(n: number, out: number[]): void {
  let v = n >>> 0;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/**
 * The attribute value for an in-image owner, or undefined for 0:0 (umoci
 * writes none then).
 *
 * @example
 * ```ts
 * encodeRootlessOwner(992, 123); // Uint8Array [0x08, 0xe0, 0x07, 0x10, 0x7b]
 * encodeRootlessOwner(0, 456); // uid noop, gid 456
 * encodeRootlessOwner(0, 0); // undefined
 * ```
 */
export function encodeRootlessOwner(uid: number, gid: number): Uint8Array | undefined {
  if (uid === 0 && gid === 0) return undefined;
  const out: number[] = [0x08];
  varint(uid === 0 ? NOOP_ID : uid, out);
  out.push(0x10);
  varint(gid === 0 ? NOOP_ID : gid, out);
  return new Uint8Array(out);
}

/**
 * Decodes an attribute value: `uid`/`gid` are `undefined` when noop.
 * Throws a plain Error on a malformed message (the caller names the file).
 *
 * @example
 * ```ts
 * decodeRootlessOwner(new Uint8Array([0x08, 0xfb, 0x18, 0x10, 0x8e, 0x12])); // { uid: 3195, gid: 2318 }
 * ```
 */
export function decodeRootlessOwner(value: Uint8Array): { uid?: number; gid?: number } {
  let uid = 0;
  let gid = 0;
  let i = 0;
  const readVarint = (): number => {
    let v = 0;
    let mul = 1;
    for (let n = 0; n < 10; n++) {
      if (i >= value.length) throw new Error("truncated varint");
      const b = value[i++];
      v += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) return v;
    }
    throw new Error("varint too long");
  };
  while (i < value.length) {
    const key = readVarint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      const v = readVarint() % 2 ** 32;
      if (field === 1) uid = v;
      else if (field === 2) gid = v;
    } else if (wire === 2) {
      const len = readVarint();
      i += len;
      if (i > value.length) throw new Error("truncated field");
    } else if (wire === 5) i += 4;
    else if (wire === 1) i += 8;
    else throw new Error(`bad wire type ${wire}`);
  }
  if (i > value.length) throw new Error("truncated field");
  return { uid: uid === NOOP_ID ? undefined : uid, gid: gid === NOOP_ID ? undefined : gid };
}

/**
 * Takes the {@linkcode ROOTLESS_XATTR} off an entry's (base64) xattrs and
 * returns the owner it records; undefined when the entry has none. Throws
 * (leaving the xattrs as they were) when the value does not decode.
 *
 * @example
 * ```ts
 * const e = { xattrs: { "user.rootlesscontainers": "CAU=" } };
 * takeRootlessOwner(e); // { uid: 5 }; e.xattrs is now undefined
 * ```
 */
export function takeRootlessOwner(e: { xattrs?: Record<string, string> }): { uid?: number; gid?: number } | undefined {
  if (!e.xattrs || !(ROOTLESS_XATTR in e.xattrs)) return undefined;
  const { [ROOTLESS_XATTR]: v, ...rest } = e.xattrs;
  const owner = decodeRootlessOwner(Buffer.from(v, "base64"));
  e.xattrs = Object.keys(rest).length ? rest : undefined;
  return owner;
}
