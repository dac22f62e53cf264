import { ProtocolError } from '../../protocol/errors.ts';
import type { Candidate } from '../../protocol/messages.ts';
import type { AnswererContext } from '../context.ts';

export function handleCandidate(ctx: AnswererContext, deviceId: string, message: Candidate): void {
  const session = ctx.sessions.get(deviceId);
  if (session?.sessionId !== message.sessionId) {
    const ref = { sessionId: message.sessionId, seq: message.seq, type: 'candidate' };
    ctx.reject(deviceId, new ProtocolError('TALI_ERR_UNKNOWN_SESSION', 'no live session with this sessionId', ref));
    return;
  }
  session.addCandidate(message);
}
