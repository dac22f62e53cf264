import { ProtocolError } from '../../protocol/errors.ts';
import type { Message, Watch } from '../../protocol/messages.ts';
import { viewerKey, type RelayContext } from '../context.ts';
import type { ViewerSession } from '../viewer.ts';

/** A `watch` on the viewer's up topic; what the relay says back goes to its down topic. */
export function handleWatch(ctx: RelayContext, viewerId: string, watch: Watch): void {
  const refused = refusal(ctx, viewerId, watch);
  if (refused) ctx.reject(viewerId, refused);
  else startWatch(ctx, viewerId, watch);
}

/**
 * A watch whose viewer talks to the relay another way (a WHEP resource, src/profiles/whep/): the same checks and
 * path, and what the relay says goes to `send`. Throws the refusal as a ProtocolError.
 */
export function startOwnedWatch(ctx: RelayContext, viewerId: string, watch: Watch, send: (message: Message) => void): ViewerSession {
  const refused = refusal(ctx, viewerId, watch);
  if (refused) throw refused;
  return startWatch(ctx, viewerId, watch, send);
}

function refusal(ctx: RelayContext, viewerId: string, watch: Watch): ProtocolError | undefined {
  const ref = { sessionId: watch.sessionId, seq: watch.seq, type: 'watch' };
  if (ctx.viewers.has(viewerKey(viewerId, watch.sessionId))) {
    return new ProtocolError('TALI_ERR_UNEXPECTED_TYPE', 'this session already watches; use a new sessionId', ref);
  }
  if (ctx.viewers.size >= ctx.maxViewers) {
    return new ProtocolError('TALI_ERR_SESSION_LIMIT', `bridge is at its limit of ${ctx.maxViewers} viewers`, ref);
  }
  return undefined;
}

function startWatch(ctx: RelayContext, viewerId: string, watch: Watch, send?: (message: Message) => void): ViewerSession {
  const viewer = ctx.createViewer(viewerId, watch, send);
  viewer.log.info('watch');
  ctx.stream(watch.deviceId).add(viewer);
  return viewer;
}
