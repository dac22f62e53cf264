/**
 * One camera playing: a `<tali-player>` (src/player/tali-player.ts, the element any site embeds) watching through the
 * dashboard's own ViewerClient (its `client` property: no second MQTT connection, and the signaling log sees the
 * watch) into the page's `<video>` child, so fullscreen, picture-in-picture and unmute act on a video the page
 * owns. This adapter adds what the dashboard's pages read: the watch (states, timeline, errors) once the element
 * started it, whether a frame of the current peer was painted (the element's `playing`), whether the browser refused
 * to start playback, whether the peer brought audio, and the stats chart following each new peer.
 */
import { TypedEmitter } from '../client/emitter.ts';
import '../player/tali-player.ts';
import type { TaliPlayerElement } from '../player/tali-player.ts';
import type { ViewerClient } from '../viewer/viewer-client.ts';
import type { WatchSession } from '../viewer/watch-session.ts';
import type { StatsChart } from './stats-chart.ts';

export class Player extends TypedEmitter<{ change: []; watch: [WatchSession] }> {
  readonly element: TaliPlayerElement;
  readonly #chart: StatsChart | undefined;
  readonly #listeners: [string, EventListener][] = [];
  #watch: WatchSession | undefined;
  #closed = false;
  /** The current peer brought an audio track. */
  hasAudio = false;

  constructor(client: ViewerClient, deviceId: string, element: TaliPlayerElement, chart?: StatsChart) {
    super();
    this.element = element;
    this.#chart = chart;
    this.#listen('tali-statechange', () => {
      const watch = element.watch;
      if (this.#watch === undefined && watch !== undefined) {
        this.#watch = watch;
        this.emit('watch', watch);
      }
      this.emit('change');
    });
    this.#listen('tali-peer', (event) => {
      const pc = (event as CustomEvent<{ pc: RTCPeerConnection }>).detail.pc;
      this.hasAudio = false;
      this.#chart?.follow(pc);
      pc.addEventListener('track', (e) => {
        if (e.track.kind !== 'audio' || this.#closed) return;
        this.hasAudio = true;
        this.emit('change');
      });
      this.emit('change');
    });
    this.#listen('tali-autoplay', () => this.emit('change'));
    element.client = client;
    element.setAttribute('device', deviceId);
  }

  /** The watch, once the element started it (see the `watch` event). */
  get watch(): WatchSession | undefined {
    return this.#watch;
  }

  /** A frame of the current peer was painted. */
  get playing(): boolean {
    return this.element.state === 'playing';
  }

  /** video.play() was refused (autoplay policy): the user has to press play. */
  get autoplayBlocked(): boolean {
    return this.element.autoplayBlocked;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const [type, listener] of this.#listeners) this.element.removeEventListener(type, listener);
    this.#chart?.stop();
    // Without a device the element stays idle; the next camera on the same element sets one again.
    this.element.removeAttribute('device');
    await this.element.stop();
  }

  #listen(type: string, listener: EventListener): void {
    this.element.addEventListener(type, listener);
    this.#listeners.push([type, listener]);
  }
}
