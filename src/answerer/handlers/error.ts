import type { ErrorMessage } from '../../protocol/messages.ts';
import type { AnswererContext } from '../context.ts';

/** A device reporting an error about its session (e.g. it could not apply our answer) ends that session. */
export function handleDeviceError(ctx: AnswererContext, deviceId: string, message: ErrorMessage): void {
  ctx.log.warn({ deviceId, sessionId: message.sessionId, code: message.code, message: message.message }, 'device reported an error');
  const session = ctx.sessions.get(deviceId);
  if (session !== undefined && session.sessionId === message.sessionId) void session.close('error', { notify: false });
}
