import { z } from 'zod';
import { AGENT_FILES_DIR, ATTACHMENT_MAX_BYTES, AttachmentRefused, sniff, storeAttachment, type AttachmentSealer } from '../channels/attachments.js';
import { MAX_REPLY_FILES, type FileRef } from '../channels/contract.js';
import type { OutboundGuard } from '../vault/guard.js';
import type { AgentTool } from './tools.js';

/*
 * send_file: the agent's one way to hand the user a file. The threat model assumes the model is
 * tricked, so the tool decides nothing the model could abuse:
 *   - no recipient parameter: a file goes only into the reply of the turn that made it, to the chat
 *     the user wrote from (a routine run has no reply to attach to and is refused);
 *   - the bytes must be an image, a PDF or UTF-8 text (the same check as files people send us); the
 *     name is reduced to a plain file name whose extension matches what the bytes are, so "text" can
 *     not arrive as invoice.html or setup.exe;
 *   - the leak detector reads the whole file (as text and as raw bytes) and a file holding a vault
 *     secret or a well-known credential format is refused, not redacted (redacting would corrupt it);
 *   - at most MAX_REPLY_FILES files of at most 5 MB per reply; stored sealed with the conversation's
 *     data key, like every attachment.
 */

export const SEND_FILE_MAX_BYTES = Math.min(5 * 1024 * 1024, ATTACHMENT_MAX_BYTES);

/** Extensions a text file may keep; anything else gets ".txt" appended. */
const TEXT_EXTENSIONS = new Set(['txt', 'md', 'csv', 'tsv', 'json', 'log', 'yaml', 'yml', 'toml', 'ini', 'xml', 'diff', 'patch', 'sql', 'py', 'ts', 'js', 'sh', 'go', 'rs', 'java', 'c', 'h', 'cpp', 'rb', 'ics', 'vcf']);
const KIND_EXTENSIONS: Record<string, string[]> = {
  'image/jpeg': ['jpg', 'jpeg'], 'image/png': ['png'], 'image/gif': ['gif'], 'image/webp': ['webp'], 'application/pdf': ['pdf'],
};

/** A plain file name with an extension that matches the bytes' kind. */
export function safeFileName(requested: string, mime: string): string {
  // Last path segment only; no control, bidi-override or path characters; no leading dots.
  let name = requested.split(/[\\/]/).pop() ?? '';
  name = name.replace(/[\u0000-\u001f\u007f\u200e\u200f\u202a-\u202e\u2066-\u2069<>:"|?*]/g, '').replace(/^[.\s]+/, '').trim().slice(0, 100);
  if (!name) name = 'file';
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
  if (mime === 'text/plain') return TEXT_EXTENSIONS.has(ext) ? name : `${name}.txt`;
  const allowed = KIND_EXTENSIONS[mime] ?? [];
  return allowed.includes(ext) ? name : `${dot > 0 ? name.slice(0, dot) : name}.${allowed[0] ?? 'bin'}`;
}

const input = z.strictObject({
  name: z.string().min(1).max(200).describe('File name shown to the user, e.g. "report.csv".'),
  content: z.string().min(1).max(Math.ceil(SEND_FILE_MAX_BYTES / 3) * 4 + 4).describe('The file content: text, or base64 when encoding is "base64".'),
  encoding: z.enum(['utf8', 'base64']).default('utf8'),
});
type Input = z.infer<typeof input>;

export const SEND_FILE_PROMPT = `To give the user a file (a CSV, a report, an image you produced), call send_file with a name and the content (text, or base64 with encoding "base64"). It is delivered with your reply, in this chat only. Only images, PDFs and UTF-8 text are accepted, at most ${MAX_REPLY_FILES} files of ${SEND_FILE_MAX_BYTES / 1024 / 1024} MB per reply.`;

export interface SendFileDeps {
  home: string;
  /** Seals the bytes (base64) for the conversation, bound to the attachment id. */
  seal(conversationId: string, context: string, base64: string): Promise<string>;
  /** The leak detector: a finding refuses the file. */
  guard: OutboundGuard;
  /** Told about a refused leak (metrics, log); names only. */
  onLeak?: (conversationId: string, findings: Awaited<ReturnType<OutboundGuard>>['findings']) => void;
}

const refuse = (kind: string, message: string) => ({ ok: false, error: { kind, message } });

export function createSendFileTool(deps: SendFileDeps): AgentTool<Input> {
  const inFlight = new WeakMap<FileRef[], number>();
  async function store(i: Input, conversationId: string, files: FileRef[]): Promise<unknown> {
    if (i.encoding === 'base64' && !/^[A-Za-z0-9+/=\s_-]+$/.test(i.content)) return refuse('invalid', 'the content is not valid base64');
    const bytes = i.encoding === 'base64' ? Buffer.from(i.content, 'base64') : Buffer.from(i.content, 'utf8');
    if (bytes.length === 0) return refuse('invalid', 'the content is empty (or not valid base64)');
    if (bytes.length > SEND_FILE_MAX_BYTES) return refuse('limit', `the file is larger than ${SEND_FILE_MAX_BYTES / 1024 / 1024} MB`);
    const kind = sniff(bytes);
    if (!kind) return refuse('type', 'only images (JPEG, PNG, GIF, WebP), PDF and UTF-8 text files can be sent');
    // Text as the user will read it; binary as its raw bytes (a secret pasted into an image's metadata).
    const scanned = kind.mime === 'text/plain' ? bytes.toString('utf8') : bytes.toString('latin1');
    const leak = await deps.guard(scanned);
    if (leak.findings.length > 0) {
      deps.onLeak?.(conversationId, leak.findings);
      return refuse('leak', 'the file contains a credential or a secret from the vault; it was not sent. Remove it and try again.');
    }
    try {
      const sealer: AttachmentSealer = (context, b64) => deps.seal(conversationId, context, b64);
      const stored = await storeAttachment(deps.home, AGENT_FILES_DIR, bytes, sealer);
      const ref: FileRef = { id: stored.id, name: safeFileName(i.name, stored.mime), mime: stored.mime as FileRef['mime'], bytes: stored.bytes };
      files.push(ref);
      return { ok: true, file: { name: ref.name, type: ref.mime, bytes: ref.bytes }, note: 'It will be sent with your reply.' };
    } catch (err) {
      if (err instanceof AttachmentRefused) return refuse('type', err.reason);
      throw err;
    }
  }

  return {
    name: 'send_file',
    description: 'Send the user a file with your reply (this chat only). Images, PDF and UTF-8 text; the name gets an extension matching the content.',
    inputSchema: input,
    async execute(i, ctx) {
      const files = ctx.replyFiles;
      if (!files) return refuse('unsupported', 'files can only be sent in a reply to a chat message (not from a routine run)');
      // The model may call the tool several times at once (parallel tool calls): a slot is taken
      // before the first await, so the limit holds however the calls interleave.
      const taken = inFlight.get(files) ?? 0;
      if (files.length + taken >= MAX_REPLY_FILES) return refuse('limit', `at most ${MAX_REPLY_FILES} files per reply`);
      inFlight.set(files, taken + 1);
      try {
        return await store(i, ctx.conversationId, files);
      } finally {
        inFlight.set(files, (inFlight.get(files) ?? 1) - 1);
      }
    },
  };
}

/** The line the agent reads in its history for a file it sent. */
export function sentFileLine(f: FileRef): string {
  return `[sent file ${JSON.stringify(f.name)}, ${f.mime}, ${Math.max(1, Math.round(f.bytes / 1024))} KB]`;
}
