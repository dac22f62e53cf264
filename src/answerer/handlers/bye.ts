import type { Bye } from '../../protocol/messages.ts';
import type { AnswererContext } from '../context.ts';

/** A bye for a session that is already gone is not an error: both sides may say bye at once. */
export function handleBye(ctx: AnswererContext, deviceId: string, message: Bye): void {
  const session = ctx.sessions.get(deviceId);
  if (session?.sessionId === message.sessionId) void session.close('normal');
}
