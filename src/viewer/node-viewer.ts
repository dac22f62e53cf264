/**
 * A viewer in Node: the viewer SDK (ViewerClient + WatchSession) on a werift receive-only peer that counts what
 * arrives. What `tali watch` runs, and what tests use to check the relay end to end without a browser. Node only.
 */
import { nodeConnector, type NodeConnectorOptions } from '../client/node-connector.ts';
import type { BackoffOptions } from '../client/backoff.ts';
import { WeriftViewerPeer, type ReceivedTrack } from '../webrtc/werift-viewer-peer.ts';
import { ViewerClient, type ViewerClientOptions } from './viewer-client.ts';
import type { StreamState, WatchSession, WatchState, WatchTimeline } from './watch-session.ts';

export interface NodeViewerOptions {
  url: string;
  user: string;
  /** A password, or a credential provider (e.g. POST /api/token: a token, and TURN credentials with it). */
  password: ViewerClientOptions['password'];
  deviceId: string;
  root?: string | undefined;
  tls?: NodeConnectorOptions['tls'];
  /** Receive audio too (default true). */
  audio?: boolean | undefined;
  backoff?: Partial<BackoffOptions> | undefined;
}

export interface NodeViewerSummary {
  deviceId: string;
  user: string;
  state: WatchState;
  stream: StreamState | undefined;
  sessionId: string | undefined;
  /** Protocol sessions this watch used (1 unless it had to watch again). */
  attempts: number;
  /** ms since the latest attempt began; firstFrame is the first video keyframe (the first picture a decoder can show). */
  timeline: WatchTimeline & { firstRtp?: number };
  packets: number;
  bytes: number;
  keyframes: number;
  tracks: ReceivedTrack[];
}

export class NodeViewer {
  readonly client: ViewerClient;
  readonly #options: NodeViewerOptions;
  #watch: WatchSession | undefined;
  #peer: WeriftViewerPeer | undefined;
  #attempts = 0;
  #firstRtp: number | undefined;
  #stopped: Promise<void> | undefined;

  constructor(options: NodeViewerOptions) {
    this.#options = options;
    this.client = new ViewerClient({
      user: options.user,
      password: options.password,
      root: options.root,
      connect: nodeConnector(options.url, { tls: options.tls }),
      backoff: options.backoff,
      watch: { backoff: options.backoff },
    });
  }

  get watch(): WatchSession | undefined {
    return this.#watch;
  }

  /** Connects (rejects on a refused CONNECT) and starts watching. */
  async start(): Promise<WatchSession> {
    await this.client.start();
    const watch = this.client.watch(this.#options.deviceId, (iceServers, { iceTransportPolicy }) => {
      const peer = new WeriftViewerPeer({ iceServers, iceTransportPolicy, audio: this.#options.audio });
      this.#attempts++;
      this.#firstRtp = undefined;
      peer.onFirstRtp = () => {
        this.#firstRtp = watch.elapsed();
      };
      peer.onFirstKeyframe = () => watch.markFirstFrame();
      this.#peer = peer;
      return peer;
    });
    this.#watch = watch;
    return watch;
  }

  summary(): NodeViewerSummary {
    const tracks = [...(this.#peer?.tracks.values() ?? [])].map((t) => ({ ...t }));
    const timeline: NodeViewerSummary['timeline'] = this.#watch?.timeline ?? {};
    if (this.#firstRtp !== undefined) timeline.firstRtp = this.#firstRtp;
    return {
      deviceId: this.#options.deviceId,
      user: this.#options.user,
      state: this.#watch?.state ?? 'starting',
      stream: this.#watch?.stream,
      sessionId: this.#watch?.sessionId,
      attempts: this.#attempts,
      timeline,
      packets: tracks.reduce((n, t) => n + t.packets, 0),
      bytes: tracks.reduce((n, t) => n + t.bytes, 0),
      keyframes: tracks.reduce((n, t) => n + t.keyframes, 0),
      tracks,
    };
  }

  /** Bye, DISCONNECT, peer closed. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= this.client.stop();
    return this.#stopped;
  }
}
