import type { Bye, Leave } from '../../protocol/messages.ts';
import { viewerKey, type RelayContext } from '../context.ts';

/** A viewer's bye ends that session; a bye for a session already gone is not an error. */
export function handleViewerBye(ctx: RelayContext, viewerId: string, message: Bye): void {
  void ctx.viewers.get(viewerKey(viewerId, message.sessionId))?.close('normal');
}

/** The viewer's last will: every session of this viewer ends. */
export function handleLeave(ctx: RelayContext, viewerId: string, _message: Leave): void {
  for (const viewer of ctx.viewers.values()) if (viewer.viewerId === viewerId) void viewer.close('normal');
}
