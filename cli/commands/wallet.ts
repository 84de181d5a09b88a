import type { Command } from "commander";
import type { CommandContext } from "../main.js";

/** Placeholder while the command group is being written. */
export function registerWallet(_program: Command, _ctx: CommandContext): void {}
