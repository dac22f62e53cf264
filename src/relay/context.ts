/**
 * What the viewer message handlers share.
 */
import type { Logger } from 'pino';
import type { ProtocolError } from '../protocol/errors.ts';
import type { Message, Watch } from '../protocol/messages.ts';
import type { CameraStream } from './camera-stream.ts';
import type { ViewerSession } from './viewer.ts';

export interface RelayContext {
  readonly log: Logger;
  /** Live viewer sessions by `${viewerId}/${sessionId}`. */
  readonly viewers: Map<string, ViewerSession>;
  readonly maxViewers: number;
  /** The stream of a camera, created on first use. */
  stream(deviceId: string): CameraStream;
  /** `send`: where the relay's messages to this viewer go (default: its down topic). */
  createViewer(viewerId: string, watch: Watch, send?: (message: Message) => void): ViewerSession;
  reject(viewerId: string, error: ProtocolError): void;
  /** Cluster mode: other nodes serve some viewer sessions, so an unknown session is not an error here. */
  readonly clustered: boolean;
}

export function viewerKey(viewerId: string, sessionId: string): string {
  return `${viewerId}/${sessionId}`;
}
