/**
 * How `<tali-player>` gets a camera's media: a transport turns (bridge, device, credential) into MediaStreams and a
 * coarse state; the element does the rest (video, overlay, events). `mqtt` (./mqtt-transport.ts) is the viewer SDK
 * over MQTT/WebSocket; `whep` (./whep-transport.ts) is an HTTP POST of the offer to the bridge's WHEP endpoint, then
 * PATCHes of its trickled candidates. The element picks one by its `transport` attribute. Browser only.
 */
import type { TypedEmitter } from '../client/emitter.ts';
import type { WatchSession } from '../viewer/watch-session.ts';

/** What a transport knows; the element adds `playing` (a frame was painted) and `idle`. */
export type TransportState = 'connecting' | 'waiting' | 'offline' | 'reconnecting' | 'error';

export interface TransportError {
  /**
   * `unauthorized` (the bridge refused the login), `origin-not-allowed` (the bridge does not list the page's
   * origin in allowedOrigins), `token-expired`, `token-renewal-failed`, `unsupported-mode`,
   * `warning` (the player goes on, e.g. a renewal will be retried), or a `TALI_ERR_*` code from the bridge.
   */
  code: string;
  message: string;
}

export interface TransportEvents {
  state: [state: TransportState, reason: string];
  /** A new media source for the video element (a new WebRTC session; the previous one is closed). */
  stream: [MediaStream];
  /** The RTCPeerConnection media now comes over (a new session, a re-watch), e.g. for a stats chart. */
  peer: [RTCPeerConnection];
  error: [TransportError];
  /** The credential ends soon and no provider gave a new one: the page should set a new `token`. */
  tokenExpiring: [expiresAt: number];
}

export interface PlayerSettings {
  /** The bridge's base URL as the page sees it, e.g. https://bridge.example:8080. */
  bridge: URL;
  device: string;
  user: string;
  root: string;
  mqttPath: string;
}

export interface PlayerTransport extends TypedEmitter<TransportEvents> {
  /** `mqtt`: the viewer SDK's watch (states, timeline, errors), once started. */
  readonly watch?: WatchSession | undefined;
  start(): void;
  /** The element painted the first frame of the current session (for the session's timeline). */
  firstFrame(): void;
  /** Releases connections, peers and timers. Idempotent. */
  close(): Promise<void>;
}
