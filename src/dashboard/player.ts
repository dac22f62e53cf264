/**
 * Watching one camera in the dashboard: a WatchSession on a BrowserViewerPeer, its media in the <video>, the first
 * decoded frame reported back to the session's timeline, and the stats sampler following the current peer (a
 * re-watch brings a new one).
 */
import type { ViewerClient } from '../viewer/viewer-client.ts';
import type { WatchSession } from '../viewer/watch-session.ts';
import { BrowserViewerPeer } from './browser-viewer-peer.ts';
import type { StatsChart } from './stats-chart.ts';

type FrameCallbackVideo = HTMLVideoElement & { requestVideoFrameCallback?: (callback: () => void) => number };

export class Player {
  readonly watch: WatchSession;
  readonly #video: FrameCallbackVideo;
  readonly #chart: StatsChart;
  #closed = false;

  constructor(client: ViewerClient, deviceId: string, video: HTMLVideoElement, chart: StatsChart) {
    this.#video = video;
    this.#chart = chart;
    this.watch = client.watch(deviceId, (iceServers) => {
      const peer = new BrowserViewerPeer(iceServers);
      this.#attach(peer);
      return peer;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#chart.stop();
    this.#video.srcObject = null;
    await this.watch.close();
  }

  #attach(peer: BrowserViewerPeer): void {
    const video = this.#video;
    video.srcObject = peer.stream;
    this.#chart.follow(peer.pc);
    // Read this.watch when the frame comes: the first peer is made inside client.watch(), before it returns.
    const onFrame = () => {
      if (video.srcObject === peer.stream) this.watch.markFirstFrame();
    };
    // The first frame painted: requestVideoFrameCallback (Chromium, Safari), else the first 'playing' event.
    peer.pc.addEventListener('track', (event) => {
      if (event.track.kind !== 'video') return;
      if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
      else video.addEventListener('playing', onFrame, { once: true });
      video.play().catch(() => {}); // muted autoplay is allowed; a refusal leaves the controls to the user
    });
  }
}
