import type { Bye } from '../../protocol/messages.ts';
import type { RelayContext } from '../context.ts';
import type { ViewerOwner } from '../owner.ts';
import { ownSession } from './own-session.ts';

/** A viewer's bye ends that session; a bye for a session already gone is not an error. */
export function handleViewerBye(ctx: RelayContext, owner: ViewerOwner, message: Bye): void {
  void ownSession(ctx, owner, message, { quiet: true })?.close('normal');
}

/**
 * A viewer connection ended (its will, or the bridge's broker saying so for it): the sessions it owns end, those
 * of the same user's other connections (tabs) do not.
 */
export function handleLeave(ctx: RelayContext, owner: ViewerOwner): void {
  for (const viewer of [...ctx.viewers.values()]) viewer.ownerLeft(owner);
}
