// Every JSON document ocigen writes validates against the image-spec JSON
// schemas in ../shared/oci-image-spec-schema (draft-04, each registered under
// its `id`; the references between the files are resolved by file name).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import Ajv from "ajv-draft-04";
import { gzipSync } from "fflate";
import { Layout } from "../src/oci/layout.ts";
import { MediaType } from "../src/oci/types.ts";
import { digestBytes } from "../src/digest/index.ts";
import { makeMultiPlatformLayout, mkTemp, rmTemp, tarFiles } from "../fixtures/layout.ts";
import { cli, ROOT } from "./oci-helpers.ts";

const SCHEMA_DIR = join(ROOT, "..", "shared", "oci-image-spec-schema");
const ID = {
  layout: "https://opencontainers.org/schema/image/layout",
  index: "https://opencontainers.org/schema/image/index",
  manifest: "https://opencontainers.org/schema/image/manifest",
  config: "https://opencontainers.org/schema/image/config",
};

type Validator = ((doc: unknown) => boolean) & { errors?: unknown };

async function loadValidators(): Promise<Record<keyof typeof ID, Validator>> {
  const files: Record<string, Record<string, unknown>> = {};
  for (const f of fs.readdirSync(SCHEMA_DIR)) {
    if (f.endsWith(".json")) files[f] = JSON.parse(fs.readFileSync(join(SCHEMA_DIR, f), "utf8"));
  }
  // deno-lint-ignore no-explicit-any
  const AjvCtor = ((Ajv as any).default ?? Ajv) as typeof Ajv;
  const ajv = new AjvCtor({
    strict: false,
    allErrors: true,
    // "defs-descriptor.json" etc. are referenced relative to several bases; resolve by file name.
    loadSchema: (uri: string) => {
      const name = uri.split("#")[0].split("/").pop() ?? "";
      const s = files[name];
      if (!s) return Promise.reject(new Error(`no schema file for ${uri}`));
      const copy = structuredClone(s);
      delete copy.id;
      return Promise.resolve(copy);
    },
  });
  ajv.addFormat("date-time", /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/);
  ajv.addFormat("uri", /^[A-Za-z][A-Za-z0-9+.-]*:\S*$/);
  for (const s of Object.values(files)) if (typeof s.id === "string") ajv.addSchema(s);
  const out = {} as Record<keyof typeof ID, Validator>;
  for (const [k, id] of Object.entries(ID)) out[k as keyof typeof ID] = (await ajv.compileAsync({ $ref: id })) as Validator;
  return out;
}

test("schemas reject what they should (sanity)", { skip: fs.existsSync(SCHEMA_DIR) ? false : `no ${SCHEMA_DIR}` }, async () => {
  const v = await loadValidators();
  assert.equal(v.index({ schemaVersion: 2, manifests: [{ mediaType: "a/b", digest: "nodigest", size: 1 }] }), false);
  assert.equal(v.manifest({ schemaVersion: 2, config: { mediaType: "a/b", digest: "sha256:" + "a".repeat(64), size: -1 }, layers: [] }), false);
  assert.equal(v.layout({ imageLayoutVersion: "1.0.0" }), true);
});

test("every JSON document ocigen writes validates against the image-spec schemas", { skip: fs.existsSync(SCHEMA_DIR) ? false : `no ${SCHEMA_DIR}` }, async () => {
  const v = await loadValidators();
  const tmp = mkTemp("ocigen-schema-");
  try {
    const D = join(tmp, "l");
    const ok = async (...a: string[]) => {
      const r = await cli(...a);
      assert.equal(r.code, 0, `${a.join(" ")}: ${r.stderr}`);
    };
    await ok("init", "--layout", D);
    // An image with a layer, written through the library.
    const l = await Layout.open(D);
    const tar = tarFiles([{ name: "etc/", dir: true }, { name: "etc/x", data: "x" }]);
    await l.withLock(async () => {
      const layer = await l.writeBlob(gzipSync(tar), MediaType.LayerGzip);
      const cfg = await l.writeJSON({
        created: "2024-01-01T00:00:00Z",
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: [digestBytes(tar)] },
        history: [{ created: "2024-01-01T00:00:00Z", created_by: "test" }],
      }, MediaType.Config);
      await l.setTag("layered", await l.writeJSON({ schemaVersion: 2, mediaType: MediaType.Manifest, config: cfg, layers: [layer] }, MediaType.Manifest));
    });
    await ok(
      "config", "--image", `${D}:layered`, "--tag", "full",
      "--config.user", "1:2", "--config.exposedports", "80/tcp", "--config.env", "A=1", "--config.entrypoint", "/e",
      "--config.cmd", "c", "--config.volume", "/v", "--config.label", "l=1", "--config.workingdir", "/w",
      "--config.stopsignal", "SIGINT", "--author", "a", "--created", "2024-02-02T00:00:00.5+01:00",
      "--architecture", "arm64", "--os", "linux", "--manifest.annotation", "m=1",
      "--history.author", "h", "--history.comment", "c", "--history.created", "2024-02-03T00:00:00Z", "--history.created_by", "cb",
    );
    await ok("config", "--image", `${D}:full`, "--clear", "config.env", "--no-history");
    await ok("new", "--image", `${D}:empty`);
    await ok("config", "--image", `${D}:empty`, "--config.cmd", "/bin/true");
    await ok("tag", "--image", `${D}:full`, "copy");
    await ok("rm", "--image", `${D}:layered`);
    // A multi-platform layout retagged by ocigen (index.json written by ocigen).
    const M = join(tmp, "m");
    makeMultiPlatformLayout(M, "multi", [{ os: "linux", architecture: "amd64" }, { os: "linux", architecture: "arm64" }]);
    await ok("tag", "--image", `${M}:multi`, "again");

    let checked = 0;
    const check = (kind: keyof typeof ID, doc: unknown, what: string, allow: (e: { keyword: string; instancePath: string }) => boolean = () => false) => {
      const good = v[kind](doc);
      const errs = ((v[kind].errors ?? []) as Array<{ keyword: string; instancePath: string }>).filter((e) => !allow(e));
      assert.ok(good || errs.length === 0, `${what} (${kind}): ${JSON.stringify(v[kind].errors)}`);
      checked++;
    };
    for (const dir of [D, M]) {
      check("layout", JSON.parse(fs.readFileSync(join(dir, "oci-layout"), "utf8")), `${dir}/oci-layout`);
      check("index", JSON.parse(fs.readFileSync(join(dir, "index.json"), "utf8")), `${dir}/index.json`);
    }
    for (const h of fs.readdirSync(join(D, "blobs", "sha256"))) {
      const bytes = fs.readFileSync(join(D, "blobs", "sha256", h));
      let doc: Record<string, unknown>;
      try {
        doc = JSON.parse(bytes.toString("utf8"));
      } catch {
        continue; // a layer
      }
      if ("manifests" in doc) check("index", doc, h);
      else if ("layers" in doc) {
        // Deliberate: `new` makes an image with zero layers, as umoci does and as
        // image-spec v1.1 allows ("layers SHOULD have at least one entry"); the
        // schema's minItems: 1 on layers is the only rule such a manifest breaks.
        const empty = Array.isArray(doc.layers) && doc.layers.length === 0;
        check("manifest", doc, h, (e) => empty && e.keyword === "minItems" && e.instancePath === "/layers");
      } else if ("rootfs" in doc) check("config", doc, h);
      else assert.fail(`unexpected JSON blob ${h}`);
    }
    assert.ok(checked >= 14, `checked ${checked} documents`);
    await ok("gc", "--layout", D);
    check("index", JSON.parse(fs.readFileSync(join(D, "index.json"), "utf8")), `${D}/index.json after gc`);
  } finally {
    rmTemp(tmp);
  }
});
