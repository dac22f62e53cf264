import type { Status } from '../../protocol/messages.ts';
import type { AnswererContext } from '../context.ts';

/**
 * The device's card went online (a new connection): its own ICE servers, if it gets any. Offline (its last will, or a
 * clean goodbye): its session is over.
 */
export function handleStatus(ctx: AnswererContext, deviceId: string, card: Status): void {
  if (card.state === 'online') return ctx.deviceIce.online(deviceId);
  ctx.deviceIce.offline(deviceId);
  const session = ctx.sessions.get(deviceId);
  if (session) void session.close('offline');
}
