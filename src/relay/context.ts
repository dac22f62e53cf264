/**
 * What the viewer message handlers share.
 */
import type { Logger } from 'pino';
import type { Watch } from '../protocol/messages.ts';
import type { CameraStream } from './camera-stream.ts';
import type { ViewerOwner } from './owner.ts';
import type { StreamState, Viewer } from './viewer.ts';

export interface RelayContext {
  readonly log: Logger;
  /** Live viewer sessions by `${viewerId}/${sessionId}`. */
  readonly viewers: Map<string, Viewer>;
  readonly maxViewers: number;
  /** Sessions one user may have on this node, over all its connections. */
  readonly maxViewersPerUser: number;
  /** Whether the bridge knows this device (registered, or it has a card). */
  known(deviceId: string): boolean;
  /** The stream of a camera, created on first use. */
  stream(deviceId: string): CameraStream;
  /** A camera's stream state as viewers see it (`waiting` when the relay has no stream for it). */
  streamState(deviceId: string): StreamState;
  createViewer(owner: ViewerOwner, watch: Watch): Viewer;
  /** Cluster mode: other nodes serve some viewer sessions, so an unknown session is not an error here. */
  readonly clustered: boolean;
}

export function viewerKey(viewerId: string, sessionId: string): string {
  return `${viewerId}/${sessionId}`;
}
