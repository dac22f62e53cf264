/**
 * What the message handlers share: the live sessions by device, and how to reply to a device.
 */
import type { Logger } from 'pino';
import type { ProtocolError } from '../protocol/errors.ts';
import type { Message } from '../protocol/messages.ts';
import type { PeerOptions } from '../webrtc/peer.ts';
import type { DeviceIce } from './device-ice.ts';
import type { CameraSession, SessionOptions } from './session.ts';

export interface AnswererContext {
  readonly sessions: Map<string, CameraSession>;
  readonly log: Logger;
  /** Options of the bridge's peer for a session of this device (fresh TURN credentials each time). */
  peer(deviceId: string): PeerOptions;
  /** Devices' own ICE servers, sent when their card says online. */
  readonly deviceIce: DeviceIce;
  readonly connectTimeoutMs: number;
  readonly mediaTimeoutMs: number;
  readonly maxSessions: number;
  /** This node's ID, named in answers. */
  readonly bridgeId: string;
  /** Publishes on the device's down topic (QoS 1); throws RangeError if the message is over the devices' limit. */
  sendToDevice(deviceId: string, message: Message): void;
  /** Replies with an `error` message and logs the rejection once. */
  reject(deviceId: string, error: ProtocolError): void;
  /** A camera session from the media plane (src/media/): in this thread or in a media worker. */
  createSession(options: SessionOptions): CameraSession;
  /** A new session exists (the answerer re-emits it to the bridge). */
  opened(session: CameraSession): void;
}
