/**
 * The generator config file of the verbs that read it (`generate`,
 * `extract`, `gc-extracts`, `volume`, `status`, `update`): `--config FILE`,
 * else the settings' `generatorConf` (`$OCIGEN_GENERATOR_CONF`), else
 * `/etc/oci-generator.conf`.
 *
 * @module
 */
import { type GeneratorConfig, loadGeneratorConfig } from "../generator/config.ts";
import { settings } from "./context.ts";

/**
 * The generator config a verb's `--config` flag (or its absence) names.
 *
 * @example
 * ```ts
 * const cfg = generatorConfig(o.config);
 * ```
 */
export function generatorConfig(flag: string | undefined): GeneratorConfig {
  return loadGeneratorConfig(flag, settings().generatorConf);
}
