import { ProtocolError } from '../../protocol/errors.ts';
import type { Candidate } from '../../protocol/messages.ts';
import { viewerKey, type RelayContext } from '../context.ts';

export function handleViewerCandidate(ctx: RelayContext, viewerId: string, message: Candidate): void {
  const viewer = ctx.viewers.get(viewerKey(viewerId, message.sessionId));
  if (viewer === undefined) {
    if (ctx.clustered) return; // another node may serve it
    const ref = { sessionId: message.sessionId, seq: message.seq, type: 'candidate' };
    ctx.reject(viewerId, new ProtocolError('TALI_ERR_UNKNOWN_SESSION', 'no live viewer session with this sessionId', ref));
    return;
  }
  viewer.addCandidate(message);
}
