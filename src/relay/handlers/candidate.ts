import type { Candidate } from '../../protocol/messages.ts';
import type { RelayContext } from '../context.ts';
import type { ViewerOwner } from '../owner.ts';
import { ownSession } from './own-session.ts';

export function handleViewerCandidate(ctx: RelayContext, owner: ViewerOwner, message: Candidate): void {
  ownSession(ctx, owner, message)?.addCandidate(message);
}
