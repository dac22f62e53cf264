import { ProtocolError } from '../../protocol/errors.ts';
import type { Offer } from '../../protocol/messages.ts';
import type { AnswererContext } from '../context.ts';

/** A new offer replaces the device's live session (the old one gets bye "replaced"). */
export async function handleOffer(ctx: AnswererContext, deviceId: string, offer: Offer): Promise<void> {
  if (offer.seq !== 1) {
    // docs/protocol.md §5.1: the offer opens its session, so it is the device's seq 1 in it.
    const ref = { sessionId: offer.sessionId, seq: offer.seq, type: 'offer' };
    ctx.reject(deviceId, new ProtocolError('TALI_ERR_INVALID_MESSAGE', 'an offer opens a new session: its seq must be 1', ref));
    return;
  }
  const current = ctx.sessions.get(deviceId);
  if (current?.sessionId === offer.sessionId) {
    const ref = { sessionId: offer.sessionId, seq: offer.seq, type: 'offer' };
    ctx.reject(deviceId, new ProtocolError('TALI_ERR_UNEXPECTED_TYPE', 'this session already has an offer; use a new sessionId', ref));
    return;
  }
  if (current === undefined && ctx.sessions.size >= ctx.maxSessions) {
    const ref = { sessionId: offer.sessionId, seq: offer.seq, type: 'offer' };
    ctx.reject(deviceId, new ProtocolError('TALI_ERR_SESSION_LIMIT', `bridge is at its limit of ${ctx.maxSessions} sessions`, ref));
    return;
  }
  if (current) void current.close('replaced');

  const session = ctx.createSession({
    deviceId,
    sessionId: offer.sessionId,
    peer: ctx.peer(deviceId),
    connectTimeoutMs: ctx.connectTimeoutMs,
    mediaTimeoutMs: ctx.mediaTimeoutMs,
    logger: ctx.log,
    send: (message) => ctx.sendToDevice(deviceId, message),
    bridgeId: ctx.bridgeId,
  });
  ctx.sessions.set(deviceId, session);
  session.once('closed', () => {
    if (ctx.sessions.get(deviceId) === session) ctx.sessions.delete(deviceId);
  });
  session.log.info('offer received');
  ctx.opened(session);
  const refused = await session.open(offer);
  if (refused) ctx.reject(deviceId, refused);
}
