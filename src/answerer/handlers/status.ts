import type { Status } from '../../protocol/messages.ts';
import type { AnswererContext } from '../context.ts';

/** The device's card went offline (its last will, or a clean goodbye): its session is over. */
export function handleStatus(ctx: AnswererContext, deviceId: string, card: Status): void {
  if (card.state !== 'offline') return;
  const session = ctx.sessions.get(deviceId);
  if (session) void session.close('offline');
}
