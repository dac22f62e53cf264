/**
 * One camera playing in a <video>: a WatchSession on a BrowserViewerPeer, its media in the element, the first painted
 * frame reported back to the session's timeline, the stats sampler (when given) following the current peer (a
 * re-watch brings a new one). It also knows what the page needs to say why the picture is black: whether a frame was
 * painted since the last peer, and whether the browser refused to start playback by itself.
 */
import { TypedEmitter } from '../client/emitter.ts';
import type { ViewerClient } from '../viewer/viewer-client.ts';
import type { WatchSession } from '../viewer/watch-session.ts';
import { BrowserViewerPeer } from './browser-viewer-peer.ts';
import type { StatsChart } from './stats-chart.ts';

type FrameCallbackVideo = HTMLVideoElement & { requestVideoFrameCallback?: (callback: () => void) => number };

export class Player extends TypedEmitter<{ change: [] }> {
  readonly watch: WatchSession;
  readonly #video: FrameCallbackVideo;
  readonly #chart: StatsChart | undefined;
  #closed = false;
  /** A frame of the current peer was painted. */
  playing = false;
  /** video.play() was refused (autoplay policy): the user has to press play. */
  autoplayBlocked = false;
  /** The current peer brought an audio track. */
  hasAudio = false;

  constructor(client: ViewerClient, deviceId: string, video: HTMLVideoElement, chart?: StatsChart) {
    super();
    this.#video = video;
    this.#chart = chart;
    this.watch = client.watch(deviceId, (iceServers, { iceTransportPolicy }) => {
      const peer = new BrowserViewerPeer(iceServers, iceTransportPolicy);
      this.#attach(peer);
      return peer;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#chart?.stop();
    this.#video.srcObject = null;
    await this.watch.close();
  }

  #attach(peer: BrowserViewerPeer): void {
    const video = this.#video;
    video.srcObject = peer.stream;
    this.playing = false;
    this.hasAudio = false;
    this.emit('change');
    this.#chart?.follow(peer.pc);
    // Read this.watch when the frame comes: the first peer is made inside client.watch(), before it returns.
    const onFrame = () => {
      if (video.srcObject !== peer.stream || this.#closed) return;
      this.watch.markFirstFrame();
      this.playing = true;
      this.emit('change');
    };
    // The first frame painted: requestVideoFrameCallback (Chromium, Safari), else the first 'playing' event.
    peer.pc.addEventListener('track', (event) => {
      if (event.track.kind === 'audio') {
        this.hasAudio = true;
        this.emit('change');
        return;
      }
      if (event.track.kind !== 'video') return;
      if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
      else video.addEventListener('playing', onFrame, { once: true });
      video.play().then(
        () => void ((this.autoplayBlocked = false), this.emit('change')),
        () => void ((this.autoplayBlocked = true), this.emit('change')),
      );
    });
  }
}
