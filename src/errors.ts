/**
 * An error the user can act on: what failed and what to do. The CLI prints `message` and `fix`
 * without a stack trace.
 */
export class UserError extends Error {
  constructor(message: string, readonly fix?: string) {
    super(message);
    this.name = 'UserError';
  }
}
