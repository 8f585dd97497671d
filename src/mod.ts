/**
 * ocigen as a library: open layouts and resolve tags, verify and read blobs,
 * apply layers to a directory, unpack bundles, render systemd units.
 *
 * @module
 */
export * from "./errors.ts";
export { VERSION } from "./version.ts";
// OCI core: digests, layouts, manifests, configs, image edits, gc, locking
export * from "./digest/index.ts";
export * from "./oci/types.ts";
export * from "./oci/digest.ts";
export * from "./oci/refname.ts";
export * from "./oci/platform.ts";
export * from "./oci/canonical.ts";
export * from "./oci/validate.ts";
export * from "./oci/layout.ts";
export * from "./oci/media-type.ts";
export { applyConfigChanges, CLEAR_KEYS, type ConfigChanges, configImage, copyTag, type HistoryOptions as ConfigHistoryOptions, newImage, type NewImageOptions } from "./oci/image.ts";
export { formatStatTable, humanSize, imageStat, type ImageStat, type StatHistoryEntry } from "./oci/stat.ts";
export { gcLayout, type GcResult, reachableBlobs } from "./oci/gc.ts";
export { fsyncDir, writeFileAtomic } from "./fs/atomic.ts";
export { acquireLock, type LockHandle } from "./fs/lock.ts";
// Progress reporting and generator installation
export { clearLine as clearProgressLine, configureProgress, type LayerProgress, layerProgress, type Progress, type ProgressOptions, type ProgressUpdate, start as startProgress, withProgress } from "./progress.ts";
export { installGenerator, type InstallOptions, type InstallResult, uninstallGenerator } from "./install/install.ts";
export { INSTALL_PATHS } from "./install/files.ts";
export { selfCommand } from "./install/self.ts";
// Settings: what the command line takes from the environment, as engine options
export { defaultSettings, type Settings, settingsFromEnv } from "./settings.ts";
// Bundle manifest, repack, insert, recipe builds
export { BUNDLE_MANIFEST_NAME, type BundleManifest, type BundleManifestHeader, readBundleManifest, writeBundleManifest } from "./bundle/manifest.ts";
export { type BundleEntry, comparePaths, type EntryType, scanTree } from "./bundle/scan.ts";
export { type Change, diffTree } from "./bundle/diff.ts";
export { type Compression as LayerCompression, encodeStream, parseCompression } from "./compress/encode.ts";
export { type LayerItem, type LayerWriteOptions, tarStream, writeLayer, writeLayerFromTar, type WrittenLayer } from "./repack/layer-writer.ts";
export { commitLayer, type CommitResult } from "./repack/commit.ts";
export { repackBundle, type RepackOptions, type RepackResult } from "./repack/repack.ts";
export { addTarLayer, type AddLayerOptions, insertPath, insertWhiteout } from "./repack/insert.ts";
export { type BuildOptions, buildFile, type BuiltTarget, runBuild } from "./recipe/build.ts";
export { type BuildSpec, type BuildTarget, parseBuildSpec, readBuildSpec } from "./recipe/spec.ts";
// systemd generator: configuration, discovery, unit rendering, extracts
export { defaultGeneratorConfig, type GeneratorConfig, type LayoutSettings, layoutSettings, loadGeneratorConfig, parseGeneratorConfig } from "./generator/config.ts";
export { type Discovery, discoverLayouts, type FoundLayout } from "./generator/discover.ts";
export { escapeNamePart, UNIT_NAME_MAX, unitBaseName, unitName } from "./generator/naming.ts";
export { checkLineValue, escapeSpecifiers, execLine, execWord, listWord } from "./generator/syntax.ts";
export { type ImageInfo, renderUnit, type UnitInput } from "./generator/unit.ts";
export { imageCommand } from "./generator/service.ts";
export { generate, type GeneratedUnit, type GenerateOptions, type GenerateResult, ocigenCommand } from "./generator/generate.ts";
export { extract, type ExtractOptions, type ExtractResult } from "./generator/extract.ts";
export { gcExtracts, type GcOptions as GcExtractsOptions, type GcResult as GcExtractsResult } from "./generator/gc.ts";
export { DEFAULT_RUN_DIR, DEFAULT_VOLUMES_DIR, safeName, serviceRoot, serviceRunDir, volumeDir, volumeName } from "./generator/state.ts";
export { type AtomicExports, readAtomicExports, renderAtomicTemplate } from "./generator/atomic-template.ts";
export { storeRootfs, unitRootfs } from "./store/paths.ts";
export { openStore, type Store, type StoreOptions } from "./store/index.ts";
// Status and auto-update with rollback
export { gatherStatus, type StatusOptions, type StatusReport, type UnitStatus } from "./status/status.ts";
export { planUnits, update, type UnitUpdate, type UpdateOptions, type UpdateResult } from "./update/update.ts";
export { DEFAULT_STATE_DIR, listPins, type Pin, readPin, readRecord, removePin, type UpdateEvent, type UpdateRecord, writePin } from "./generator/update-state.ts";
export { processRunner, type Runner, type RunResult as CommandResult } from "./update/systemd.ts";
// Unpack engine: byte pipeline, tar, decompression, layer application
export { type ByteSink, CollectSink, concatBytes, pumpStream, pushAll, TeeSink } from "./stream/sink.ts";
export { encodeHeader, padding, padLength, type SparseRegion, type TarEntryHeader, type TarEntryType } from "./tar/header.ts";
export { encodePax, parsePax } from "./tar/pax.ts";
export { type TarHandler, TarParser, type TarParserOptions } from "./tar/parser.ts";
export { tarBytes, TarWriter, type TarWriterEntry, type TarWriterOptions } from "./tar/writer.ts";
export { LayerDecompressStream, type TarEvent, TarStream, UntarStream } from "./web/tar-streams.ts";
export { type Compression as DecoderCompression, crc32, createDecoderFor, type DecoderOptions, GzipDecoder, ZstdDecoder } from "./compress/index.ts";
export { createDecoder } from "./layer/decoder.ts";
export { ZSTD_WINDOW_DEFAULT, ZSTD_WINDOW_LIMIT_MAX, type ZstdDecoderOptions, type ZstdEngine } from "./compress/zstd.ts";
export { type ApplyOptions, ApplyState, LayerApplier } from "./layer/apply.ts";
export { cleanEntryPath, RootResolver } from "./rootfs/resolve.ts";
export { type IdMapping, parseIdMap, toHost } from "./layer/idmap.ts";
export { applyLayer, applyLayers, unpackBundle, type UnpackOptions, unpackRootfs } from "./layer/unpack.ts";
export { convertConfig, type ConvertOptions, resolveUser, type RuntimeSpec } from "./layer/convert.ts";
// WebAssembly inflate kernels and the worker pool
export { describeInflateError, WasmGunzip, wasmCrc32, wasmGunzipSync, type WasmInflateOptions } from "./compress/inflate-wasm.ts";
export { closeIdleWorkers, createGunzip, createHashingGunzip, type HashingDecoder, type InflateMode, WORKER_MIN_BYTES, WorkerGunzip } from "./compress/inflate-worker.ts";
// Bulk extraction and image benchmarks
export { type BulkImage, type BulkMode, type BulkOptions, type BulkResult, defaultJobs, extractAll, formatBulk } from "./bulk/extract-all.ts";
export { type ChainRecord, chainIds, readChainRecord, scanChainRecords, treeFingerprint, type TreeFingerprint } from "./store/chain.ts";
export { copyTree, type CopyStats } from "./store/copy.ts";
export { benchImages, formatImageBench, type ImageBench, type ImageBenchOptions, type ImageBenchResult } from "./bench/image.ts";
export { have } from "./util/which.ts";
