/**
 * Types of the OCI image-spec documents ocigen reads and writes
 * (image-spec v1.1: descriptor, manifest, index, config, image layout).
 *
 * @module
 */

/** Media types defined by the OCI image-spec (and the Docker v2 ones we read). */
export const MediaType = {
  Descriptor: "application/vnd.oci.descriptor.v1+json",
  LayoutHeader: "application/vnd.oci.layout.header.v1+json",
  Index: "application/vnd.oci.image.index.v1+json",
  Manifest: "application/vnd.oci.image.manifest.v1+json",
  Config: "application/vnd.oci.image.config.v1+json",
  Layer: "application/vnd.oci.image.layer.v1.tar",
  LayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  LayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  LayerNonDistributable: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  LayerNonDistributableGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  LayerNonDistributableZstd: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  Empty: "application/vnd.oci.empty.v1+json",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  DockerConfig: "application/vnd.docker.container.image.v1+json",
  DockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

/** The annotation holding a tag in `index.json`. */
export const REF_NAME = "org.opencontainers.image.ref.name";

/** A platform, as in an index entry or an image config. */
export interface Platform {
  architecture: string;
  os: string;
  "os.version"?: string;
  "os.features"?: string[];
  variant?: string;
  features?: string[];
}

/** A content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: string;
  platform?: Platform;
  artifactType?: string;
}

/** An image index (also the layout's `index.json`). */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** An image manifest. */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** The execution parameters of an image config. */
export interface ImageRuntimeConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ArgsEscaped?: boolean;
}

/** One history entry of an image config. */
export interface History {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** An image config. */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  "os.version"?: string;
  "os.features"?: string[];
  variant?: string;
  config?: ImageRuntimeConfig;
  rootfs: { type: "layers"; diff_ids: string[] };
  history?: History[];
}
