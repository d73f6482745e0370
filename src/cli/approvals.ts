import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { config, fail, hubFetch } from './common.js';

/*
 * `bulwark approvals list|show|approve|deny`: through the running hub's API (the hub applies the
 * change, tells the agent, and writes the audit log), with the owner's API token.
 */

interface View {
  id: string; state: string; kind: string; change: string; diff: Record<string, unknown>; reason: string; policy: string | null;
  requester: { kind: string; id: string; conversationId?: string }; decidedBy: string | null; error: string | null; expiresAt: string; createdAt: string;
}

const ID = /^apr_[a-z2-9]{8}$/;

async function call(path: string, init: RequestInit = {}): Promise<any> {
  const r = await hubFetch(config(), path, init);
  const body = await r.json().catch(() => ({})) as { error?: string };
  if (!r.ok) throw new UserError(body.error ?? `the hub answered ${r.status}`, r.status === 404 ? 'see `bulwark approvals list`' : undefined);
  return body;
}

function checkId(id: string): string {
  if (!ID.test(id)) throw new UserError(`"${id}" is not an approval request id.`, 'ids look like apr_k3j9x2mq; see `bulwark approvals list`');
  return id;
}

function show(v: View): string {
  return [
    `${v.id}  ${v.state.toUpperCase()}  ${v.kind}`,
    `  change:    ${v.change}`,
    `  exactly:   ${JSON.stringify(v.diff)}`,
    `  asked by:  ${v.requester.kind} ${v.requester.id}${v.requester.conversationId ? ` in ${v.requester.conversationId}` : ''} at ${v.createdAt}`,
    // The requester's words, marked as theirs: they may try to persuade.
    `  its reason (the requester's own words): ${JSON.stringify(v.reason)}`,
    ...(v.policy ? [`  policy:    ${v.policy}`] : []),
    ...(v.decidedBy ? [`  decided by: ${v.decidedBy}`] : []),
    ...(v.error ? [`  error:     ${v.error}`] : []),
    ...(v.state === 'pending' ? [`  expires:   ${v.expiresAt}`] : []),
  ].join('\n');
}

export function registerApprovals(program: Command): void {
  const cmd = program.command('approvals').description('capability change requests waiting for (or decided by) the owner');

  cmd.command('list')
    .description('requests, newest first (default: pending ones)')
    .option('--all', 'every state, not only pending')
    .option('--state <state>', 'pending, approved, denied, expired, applied or failed')
    .option('--json', 'print JSON')
    .action(async (opts: { all?: boolean; state?: string; json?: boolean }) => {
      const state = opts.all ? '' : (opts.state ?? 'pending');
      const body = await call(`/api/approvals${state ? `?state=${encodeURIComponent(state)}` : ''}`).catch(fail) as { requests: View[] };
      if (opts.json) return void process.stdout.write(`${JSON.stringify(body.requests, null, 2)}\n`);
      if (body.requests.length === 0) return void process.stdout.write(`no ${state || ''} requests\n`.replace('  ', ' '));
      for (const v of body.requests) process.stdout.write(`${v.id}  ${v.state.padEnd(8)} ${v.change}\n`);
    });

  cmd.command('show <id>')
    .description('the exact change, who asked and why')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const v = await call(`/api/approvals/${checkId(id)}`).catch(fail) as View;
      process.stdout.write(`${opts.json ? JSON.stringify(v, null, 2) : show(v)}\n`);
    });

  for (const decision of ['approve', 'deny'] as const) {
    cmd.command(`${decision} <id>`)
      .description(decision === 'approve' ? 'approve and apply the change' : 'deny the change')
      .action(async (id: string) => {
        const out = await call(`/api/approvals/${checkId(id)}/${decision}`, { method: 'POST', body: '{}' }).catch(fail) as { message: string };
        process.stdout.write(`${out.message}\n`);
      });
  }
}
