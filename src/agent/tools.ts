import type { z } from 'zod';
import type { FileRef } from '../channels/contract.js';
import type { Logger } from '../logger.js';

/** What a tool gets to know about the turn that called it. Nothing here is a secret. */
export interface ToolContext {
  conversationId: string;
  /** Aborted when the turn is cancelled (shutdown, turn deadline). */
  signal: AbortSignal;
  logger: Logger;
  /** Files for the reply this turn will send (send_file adds to it); absent where there is no reply (routine runs). */
  replyFiles?: FileRef[] | undefined;
}

/**
 * A tool the model may call. Input is validated with `inputSchema` before `execute` runs, so a
 * malformed tool call from the model becomes an error message for the model, never a crash.
 * The result is serialized to JSON and handed back to the model marked as untrusted data.
 */
export interface AgentTool<I = unknown> {
  name: string;
  description: string;
  inputSchema: z.ZodType<I>;
  execute(input: I, ctx: ToolContext): Promise<unknown>;
}

/** What the loop reports after a tool call: names, outcome and timing, never inputs or outputs. */
export interface ToolCallReport {
  tool: string;
  conversationId: string;
  /** False when the tool threw, or returned `{ ok: false }` (e.g. a sandbox run that failed). */
  ok: boolean;
  /** The typed error kind when the result carries one (`timeout`, `capability`, …). */
  errorKind?: string | undefined;
  ms: number;
}

/** The set of tools one agent has. Later modules (sandbox, memory, approvals) register here. */
export class ToolRegistry {
  private readonly tools = new Map<string, AgentTool<any>>();
  private readonly observers: Array<(call: ToolCallReport) => void> = [];

  /** Registers a listener told about every finished tool call (the audit log is one). */
  onCall(fn: (call: ToolCallReport) => void): this {
    this.observers.push(fn);
    return this;
  }

  /** Called by the agent loop after each tool call; a listener's failure never reaches the turn. */
  reportCall(call: ToolCallReport): void {
    for (const fn of this.observers) {
      try { fn(call); } catch { /* observers must not break turns */ }
    }
  }

  register<I>(tool: AgentTool<I>): this {
    if (!/^[a-z][a-z0-9_]{0,63}$/.test(tool.name)) throw new Error(`invalid tool name "${tool.name}"`);
    if (this.tools.has(tool.name)) throw new Error(`tool "${tool.name}" is already registered`);
    this.tools.set(tool.name, tool);
    return this;
  }

  get(name: string): AgentTool<any> | undefined {
    return this.tools.get(name);
  }

  list(): AgentTool<any>[] {
    return [...this.tools.values()];
  }
}
