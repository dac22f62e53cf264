import { ProtocolError } from '../../protocol/errors.ts';
import { viewerKey, type RelayContext } from '../context.ts';
import type { ViewerOwner } from '../owner.ts';
import type { Viewer } from '../viewer.ts';

/**
 * The session a message of `owner` is about, if `owner` holds it. A session of another connection is treated as
 * unknown, so that one connection can neither steer nor learn of another's sessions (a token scoped to cam1 and the
 * same user's cam2 watch, issue 11 #13). In a cluster another node may serve it: ignored, not refused.
 */
export function ownSession(
  ctx: RelayContext,
  owner: ViewerOwner,
  message: { sessionId: string; seq: number; type: string },
  options: { quiet?: boolean } = {},
): Viewer | undefined {
  const viewer = ctx.viewers.get(viewerKey(owner.user, message.sessionId));
  if (viewer !== undefined && viewer.ownedBy(owner)) return viewer;
  if (ctx.clustered || options.quiet) return undefined;
  throw new ProtocolError('TALI_ERR_UNKNOWN_SESSION', 'no live viewer session with this sessionId on this connection', {
    sessionId: message.sessionId,
    seq: message.seq,
    type: message.type,
  });
}
