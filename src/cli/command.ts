import { Command, type HelpContext } from 'commander';

/**
 * Commander (14) answers `--help` before it looks at the command name, so `bulwark NOPE --help`
 * printed the top-level help and exited 0, as if NOPE existed. Every command made from this class
 * (subcommands come from `createCommand`) refuses an unknown name first, with commander's own
 * "unknown command" error and its "Did you mean" suggestion, exit 1.
 */
export class BulwarkCommand extends Command {
  override createCommand(name?: string): Command {
    return new BulwarkCommand(name);
  }

  override outputHelp(context?: HelpContext): void;
  /** @deprecated commander's old callback form, kept so the override matches both signatures. */
  override outputHelp(cb: (str: string) => string): void;
  override outputHelp(arg?: HelpContext | ((str: string) => string)): void {
    this.refuseUnknownCommand();
    if (typeof arg === 'function') super.outputHelp(arg);
    else super.outputHelp(arg);
  }

  private refuseUnknownCommand(): void {
    if (this.commands.length === 0) return; // A leaf: its operands are arguments, not command names.
    const [first, second] = this.args;
    // `bulwark help NOPE` asks for the help of the second word.
    const name = first === 'help' ? second : first;
    if (name === undefined || name.startsWith('-') || name === 'help') return;
    if (this.commands.some((c) => c.name() === name || c.aliases().includes(name))) return;
    const commander = this as unknown as { unknownCommand?: () => void };
    if (first !== 'help' && typeof commander.unknownCommand === 'function') commander.unknownCommand();
    this.error(`error: unknown command '${name}'`, { code: 'commander.unknownCommand' });
  }
}
