#!/usr/bin/env node
import { registerApprovals } from './approvals.js';
import { registerAudit } from './audit.js';
import { registerChannels } from './channels.js';
import { registerChat } from './chat.js';
import { BulwarkCommand } from './command.js';
import { registerDoctor } from './doctor.js';
import { registerLeakscan } from './leakscan.js';
import { registerPairing } from './pairing.js';
import { registerRoutine } from './routine.js';
import { registerSandboxCommand } from './sandbox.js';
import { registerSecret } from './secret.js';
import { registerStart } from './start.js';
import { registerLogin, registerStatus } from './status.js';
import { registerWhatsAppLogin } from './whatsapp-login.js';
import { fail } from './common.js';

// `bulwark chat | head` closes our stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') process.exit(0); throw err; });

const program = new BulwarkCommand('bulwark')
  .description('Bulwark — a self-hosted, security-first AI assistant hub')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)');

registerStart(program);
registerChat(program);
registerStatus(program);
registerDoctor(program);
registerLogin(program);
registerSandboxCommand(program);
registerRoutine(program);
registerLeakscan(program);
registerAudit(program);
registerApprovals(program);
registerSecret(program);
registerChannels(program);
registerPairing(program);

// Keep last: adds `login` under the `channels` command, creating it only if no one registered it above.
registerWhatsAppLogin(program);

program.parseAsync(process.argv).catch(fail);
