import type { Command } from "commander";

/** Registers this group's verbs (not yet implemented). */
export function register(_program: Command, _raw: Command): void {}
