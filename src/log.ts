/**
 * Structured logs through pino: one root logger per process, a child per component, and a child per session
 * carrying deviceId and sessionId. Secrets are never passed to a logger; `redact` is the second line of defence.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      name: 'tali',
      level,
      redact: { paths: ['password', 'secret', '*.password', '*.secret', 'credential', '*.credential'], censor: '[redacted]' },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
