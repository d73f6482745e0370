import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface HubProcess { child: ChildProcess; pid: number; url: string; stdout: () => string; stderr: () => string; exited: Promise<number | null> }

/** Runs `bulwark start --role ROLE` as its own process (through tsx, from the sources). */
export async function spawnHub(role: string, env: Record<string, string>, timeoutMs = 30_000): Promise<HubProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'start', '--role', role], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`hub (${role}) did not start in ${timeoutMs} ms:\n${out}\n${err}`)), timeoutMs);
    const check = () => {
      const m = /Bulwark is running \(\w+\) at (\S+)/.exec(out);
      if (m) { clearTimeout(t); resolve(m[1]!); }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`hub (${role}) exited with ${code}:\n${out}\n${err}`)); });
  });
  return { child, pid: child.pid!, url, stdout: () => out, stderr: () => err, exited };
}

export interface CliResult { code: number | null; stdout: string; stderr: string }

/** Runs one `bulwark` CLI command from the sources with a clean environment; optional stdin text. */
export function runCli(args: string[], env: Record<string, string>, input?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
      cwd: ROOT,
      env: { HOME: process.env.HOME ?? '', NODE_ENV: 'test', PATH: process.env.PATH ?? '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => { stdout += d; });
    child.stderr!.on('data', (d) => { stderr += d; });
    child.stdin!.end(input ?? '');
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
