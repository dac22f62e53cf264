/** Runs `tali …` in-process (src/cli/main.ts) and collects what it printed. */
import { Writable } from 'node:stream';
import { main } from '../../src/cli/main.ts';

export async function tali(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (append: (s: string) => void) => new Writable({ write: (c: Buffer, _e, done) => (append(c.toString()), done()) });
  const code = await main(argv, { stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)) });
  return { code, out, err };
}
