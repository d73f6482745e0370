import type { z } from 'zod';
import type { Logger } from '../logger.js';

/** What a tool gets to know about the turn that called it. Nothing here is a secret. */
export interface ToolContext {
  conversationId: string;
  /** Aborted when the turn is cancelled (shutdown, turn deadline). */
  signal: AbortSignal;
  logger: Logger;
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

/** The set of tools one agent has. Later modules (sandbox, memory, approvals) register here. */
export class ToolRegistry {
  private readonly tools = new Map<string, AgentTool<any>>();

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
