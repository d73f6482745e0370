import type { QuickJSHandle } from 'quickjs-emscripten';
import type { Interpreter } from './interpreter.js';

/**
 * Reads a guest value as a host string only if it is a primitive string no longer than `max`
 * characters (checked before copying anything). Reading a primitive string's length runs no guest
 * code, unlike converting an arbitrary value, which could call its toString.
 */
export function readGuestString(interp: Interpreter, handle: QuickJSHandle, max: number): string | undefined {
  const { context } = interp;
  if (context.typeof(handle) !== 'string') return undefined;
  const lengthH = context.getProp(handle, interp.lengthKey);
  const length = context.getNumber(lengthH);
  lengthH.dispose();
  if (!(length <= max)) return undefined;
  return context.getString(handle);
}

/**
 * "Name: message" of an exception the interpreter raised outside guest try/catch (out of memory,
 * stack overflow, interrupted), or null if it is not an object or cannot be read.
 */
export function guestErrorText(interp: Interpreter, handle: QuickJSHandle): string | null {
  const { context } = interp;
  try {
    if (context.typeof(handle) !== 'object') return null;
    const name = context.getProp(handle, 'name');
    const message = context.getProp(handle, 'message');
    const text = `${readGuestString(interp, name, 200) ?? 'Error'}: ${readGuestString(interp, message, 2000) ?? ''}`;
    name.dispose();
    message.dispose();
    return text;
  } catch {
    return null;
  }
}
