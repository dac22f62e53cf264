/**
 * What goes wrong at start more than anything else, said in one line with a stable code and what to do: a port in
 * use or not allowed (TALI_ERR_LISTEN), a data directory that cannot be made or written (TALI_ERR_DATA_DIR). Anything
 * else is not turned into one of these: it keeps its own message (and stack) for a bug report.
 */
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import type { BridgeConfig } from './config/config.ts';
import { TaliError } from './errors.ts';

type SystemError = NodeJS.ErrnoException & { port?: number; address?: string };

/** The listen error as a TaliError, when it is one a person can fix; otherwise the error itself. */
export function listenError(err: unknown, config: BridgeConfig): unknown {
  const e = err as SystemError;
  if (e?.code !== 'EADDRINUSE' && e?.code !== 'EACCES') return err;
  const port = e.port ?? 0;
  const flag = port === config.httpPort ? '--http-port' : port === config.mqttsPort ? '--mqtts-port' : '--mqtt-port';
  const what = flag === '--http-port' ? 'HTTP (dashboard, /mqtt)' : flag === '--mqtts-port' ? 'MQTT over TLS' : 'MQTT';
  const where = `port ${port} (${what}) on ${e.address ?? config.host}`;
  const other = port > 0 && port < 65535 ? port + 1 : 0;
  const hint =
    e.code === 'EADDRINUSE'
      ? `another program (another tali?) listens there: stop it, or pick free ports, e.g. npm start -- ${flag} ${other} (0 picks any free port)`
      : `this user may not listen there${port < 1024 ? ' (ports below 1024 need privileges)' : ''}: pick another, e.g. npm start -- ${flag} ${port < 1024 ? port + 8000 : other}`;
  return new TaliError('TALI_ERR_LISTEN', `${where}: ${e.code === 'EADDRINUSE' ? 'in use' : 'not allowed'} (${e.code}). Hint: ${hint}`);
}

/** Makes the data directory if needed and checks that it can be written, before anything listens or is written. */
export async function prepareDataDir(dataDir: string): Promise<void> {
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await access(dataDir, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw dataDirError(err, dataDir);
  }
}

export function dataDirError(err: unknown, dataDir: string): unknown {
  const code = (err as SystemError)?.code;
  const hints: Record<string, string> = {
    EACCES: 'this user may not write there: fix its permissions, or use another with --data-dir DIR',
    EPERM: 'this user may not write there: fix its permissions, or use another with --data-dir DIR',
    EROFS: 'it is on a read-only file system: use another with --data-dir DIR',
    EEXIST: 'a file (not a directory) has that name: move it away, or use another with --data-dir DIR',
    ENOTDIR: 'part of the path is a file, not a directory: use another with --data-dir DIR',
    ENOSPC: 'the disk is full',
  };
  if (code === undefined || !(code in hints)) return err;
  return new TaliError('TALI_ERR_DATA_DIR', `data directory ${dataDir}: cannot be made or written (${code}). Hint: ${hints[code]}`);
}
