import { ProtocolError } from '../../protocol/errors.ts';
import type { Message, Watch } from '../../protocol/messages.ts';
import { viewerKey, type RelayContext } from '../context.ts';
import type { ViewerOwner } from '../owner.ts';
import type { Viewer } from '../viewer.ts';

/**
 * A new viewer session for `owner`, or a ProtocolError saying why not: a session ID in use, a camera the bridge does
 * not know (a watch of a name that is no device would otherwise wait, holding a session), the node's or the user's
 * limit. Who may watch which camera was decided before (the broker's access rules).
 */
export function handleWatch(ctx: RelayContext, owner: ViewerOwner, watch: Watch): Viewer {
  const ref = { sessionId: watch.sessionId, seq: watch.seq, type: 'watch' };
  if (ctx.viewers.has(viewerKey(owner.user, watch.sessionId))) {
    throw new ProtocolError('TALI_ERR_UNEXPECTED_TYPE', 'this session already watches; use a new sessionId', ref);
  }
  if (!ctx.known(watch.deviceId)) throw new ProtocolError('TALI_ERR_UNKNOWN_DEVICE', `no device named ${watch.deviceId}`, ref);
  if (ctx.viewers.size >= ctx.maxViewers) {
    throw new ProtocolError('TALI_ERR_SESSION_LIMIT', `bridge is at its limit of ${ctx.maxViewers} viewers`, ref);
  }
  let mine = 0;
  for (const viewer of ctx.viewers.values()) if (viewer.viewerId === owner.user) mine++;
  if (mine >= ctx.maxViewersPerUser) {
    throw new ProtocolError('TALI_ERR_SESSION_LIMIT', `${owner.user} is at its limit of ${ctx.maxViewersPerUser} viewer sessions (maxViewersPerUser)`, ref);
  }
  const viewer = ctx.createViewer(owner, watch);
  viewer.log.info('watch');
  ctx.stream(watch.deviceId).add(viewer);
  return viewer;
}
