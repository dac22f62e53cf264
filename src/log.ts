/**
 * Structured logs through pino: one root logger per process, a child per component, and a child per session
 * carrying deviceId and sessionId. Secrets are never passed to a logger; `redact` is the second line of defence.
 * On a terminal the lines are made readable by pino-pretty; anywhere else (a file, a pipe, a log collector) they stay
 * one JSON object per line.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      name: 'tali',
      level,
      redact: {
        paths: [
          'password', 'secret', '*.password', '*.secret', 'credential', '*.credential',
          // The TURN secret, and TURN passwords inside ICE server lists (docs/operations.md "TURN").
          'turnSecret', '*.turnSecret', 'iceServers[*].credential', '*.iceServers[*].credential',
        ],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/**
 * Where `tali start` logs: pino-pretty (colours, local times, one field per line) when stdout is a terminal, else
 * undefined (JSON lines on stdout). Synchronous, so that the last lines before an exit are not lost.
 */
export async function terminalDestination(out: NodeJS.WriteStream = process.stdout): Promise<DestinationStream | undefined> {
  if (!out.isTTY) return undefined;
  const { default: pretty } = await import('pino-pretty');
  return pretty({ destination: out, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' });
}
