import { ProtocolError } from '../../protocol/errors.ts';
import type { Adopt } from '../../protocol/messages.ts';
import { viewerKey, type RelayContext } from '../context.ts';
import type { ViewerOwner } from '../owner.ts';

/**
 * A viewer's new connection takes over one of its sessions (protocol §16.4: the token refresh handover). It must
 * name the session's camera (which the broker checked against the new login's devices) and the secret `connection`
 * its watch carried, so that no other connection of the user, nor one that could read the session's topics before,
 * can take it. The camera's state, said again on the new connection, confirms the move.
 */
export function handleAdopt(ctx: RelayContext, owner: ViewerOwner, message: Adopt): void {
  const viewer = ctx.viewers.get(viewerKey(owner.user, message.sessionId));
  if (viewer === undefined && ctx.clustered) return; // another node may serve it
  if (viewer === undefined || viewer.deviceId !== message.deviceId || viewer.connection === undefined || viewer.connection !== message.connection) {
    throw new ProtocolError('TALI_ERR_UNKNOWN_SESSION', 'no live viewer session with this sessionId, deviceId and connection', {
      sessionId: message.sessionId,
      seq: message.seq,
      type: 'adopt',
    });
  }
  viewer.adopt(owner, ctx.streamState(message.deviceId));
}
