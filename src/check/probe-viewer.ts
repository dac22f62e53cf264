/**
 * The checker's viewer: the viewer SDK on a werift receive-only peer, watching the device through the bridge's relay
 * as any viewer would (with the checker's admin login). It records each keyframe that reaches it and each keyframe
 * request it makes (RTCP PLI, which the relay forwards to the camera unless a request of its own is outstanding).
 * Watching is also how the checker makes the bridge send `start` to an idle camera. Node only.
 */
import { nodeConnector } from '../client/node-connector.ts';
import type { TlsClientOptions } from '../mqtt/streams.ts';
import { ViewerClient } from '../viewer/viewer-client.ts';
import type { WatchSession } from '../viewer/watch-session.ts';
import { WeriftViewerPeer } from '../webrtc/werift-viewer-peer.ts';
import type { Timeline } from './observations.ts';

export interface ProbeViewerOptions {
  url: string;
  user: string;
  password: string;
  root: string;
  deviceId: string;
  tls?: TlsClientOptions | undefined;
}

export class ProbeViewer {
  readonly #client: ViewerClient;
  readonly #timeline: Timeline;
  readonly #deviceId: string;
  #watch: WatchSession | undefined;
  #peer: WeriftViewerPeer | undefined;

  constructor(options: ProbeViewerOptions, timeline: Timeline) {
    this.#timeline = timeline;
    this.#deviceId = options.deviceId;
    this.#client = new ViewerClient({
      user: options.user,
      password: options.password,
      root: options.root,
      connect: nodeConnector(options.url, { tls: options.tls }),
      devices: [options.deviceId],
    });
  }

  async start(): Promise<void> {
    await this.#client.start();
    const watch = this.#client.watch(this.#deviceId, (iceServers) => {
      const peer = new WeriftViewerPeer({ iceServers, audio: false });
      peer.onKeyframe = () => this.#timeline.add({ kind: 'viewer', event: 'keyframe' });
      this.#peer = peer;
      return peer;
    });
    watch.on('state', (state) => {
      if (state === 'connected') this.#timeline.add({ kind: 'viewer', event: 'connected' });
    });
    this.#watch = watch;
  }

  /** Sends a PLI for the video it receives; false before any video arrived. */
  requestKeyframe(): boolean {
    const sent = this.#peer?.requestKeyframe() ?? false;
    if (sent) this.#timeline.add({ kind: 'viewer', event: 'keyframe-request' });
    return sent;
  }

  async stop(): Promise<void> {
    await this.#watch?.close();
    await this.#client.stop();
    this.#timeline.add({ kind: 'viewer', event: 'closed' });
  }
}
