import { BYE_REASONS, type Bye, type ByeReason } from '../../protocol/messages.ts';
import type { AnswererContext } from '../context.ts';

/**
 * A bye for a session that is already gone is not an error: both sides may say bye at once. The device's reason
 * is kept for logs and metrics when it is one of ours; anything else counts as "normal".
 */
export function handleBye(ctx: AnswererContext, deviceId: string, message: Bye): void {
  const session = ctx.sessions.get(deviceId);
  if (session?.sessionId !== message.sessionId) return;
  const reason = (BYE_REASONS as readonly string[]).includes(message.reason ?? '') ? (message.reason as ByeReason) : 'normal';
  void session.close(reason, { notify: false });
}
