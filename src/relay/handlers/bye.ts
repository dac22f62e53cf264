import type { Bye, Leave } from '../../protocol/messages.ts';
import { viewerKey, type RelayContext } from '../context.ts';

/** A viewer's bye ends that session; a bye for a session already gone is not an error. */
export function handleViewerBye(ctx: RelayContext, viewerId: string, message: Bye): void {
  void ctx.viewers.get(viewerKey(viewerId, message.sessionId))?.close('normal');
}

/**
 * The viewer's last will: the sessions watched over that connection end (all of the viewer's, when the will names no
 * connection), so one closed tab does not end the sessions of the same user's other tabs.
 */
export function handleLeave(ctx: RelayContext, viewerId: string, message: Leave): void {
  for (const viewer of ctx.viewers.values()) {
    if (viewer.viewerId !== viewerId) continue;
    if (message.connection === undefined || viewer.connection === message.connection) void viewer.close('normal');
  }
}
