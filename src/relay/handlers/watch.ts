import { ProtocolError } from '../../protocol/errors.ts';
import type { Watch } from '../../protocol/messages.ts';
import { viewerKey, type RelayContext } from '../context.ts';

export function handleWatch(ctx: RelayContext, viewerId: string, watch: Watch): void {
  const ref = { sessionId: watch.sessionId, seq: watch.seq, type: 'watch' };
  if (ctx.viewers.has(viewerKey(viewerId, watch.sessionId))) {
    ctx.reject(viewerId, new ProtocolError('TALI_ERR_UNEXPECTED_TYPE', 'this session already watches; use a new sessionId', ref));
    return;
  }
  if (ctx.viewers.size >= ctx.maxViewers) {
    ctx.reject(viewerId, new ProtocolError('TALI_ERR_SESSION_LIMIT', `bridge is at its limit of ${ctx.maxViewers} viewers`, ref));
    return;
  }
  const viewer = ctx.createViewer(viewerId, watch);
  viewer.log.info('watch');
  ctx.stream(watch.deviceId).add(viewer);
}
