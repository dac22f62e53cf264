/**
 * The player's `mqtt` transport: the viewer SDK in the page. A ViewerClient logs in over MQTT/WebSocket at
 * `{bridge}{mqttPath}` with the viewer token, follows the camera's card, and one WatchSession watches it through the
 * bridge's relay on a receive-only RTCPeerConnection; both reconnect and watch again by themselves. A page that
 * already runs a ViewerClient (the dashboard) hands it over instead (the element's `client` property): the watch
 * rides on that connection, whose login, renewal and end stay the page's. This file only translates their events
 * into the transport's few states. Browser only.
 *
 *   connecting ──(camera not streaming yet: stream "waiting")──► waiting
 *       ▲  │ (the element shows "playing" once a frame is painted)
 *       │  └── stream "ended" / card offline ──► offline ── stream "live" ──► connecting
 *   reconnecting ◄── MQTT lost · watch retried (bye, error, ICE failure, timeout)
 *   error ◄── login refused at start-up · watch refused (e.g. a token scoped to other cameras) · the WebSocket never
 *             opened and the bridge says this page's origin is not in its allowedOrigins (./route.ts)
 */
import { browserConnector } from '../client/browser-connector.ts';
import { TypedEmitter } from '../client/emitter.ts';
import { ConnectRefusedError } from '../client/mqtt-link.ts';
import { ViewerClient } from '../viewer/viewer-client.ts';
import type { WatchSession } from '../viewer/watch-session.ts';
import { BrowserViewerPeer } from './browser-viewer-peer.ts';
import { PLAYER_ORIGIN_PATH } from './paths.ts';
import type { TokenSource } from './token.ts';
import type { PlayerSettings, PlayerTransport, TransportEvents, TransportState } from './transport.ts';

export class MqttTransport extends TypedEmitter<TransportEvents> implements PlayerTransport {
  readonly #settings: PlayerSettings | undefined;
  readonly #client: ViewerClient;
  /** The client is the page's: this transport neither starts nor stops it. */
  readonly #shared: boolean;
  readonly #device: string;
  readonly #unsubscribe: (() => void)[] = [];
  #watch: WatchSession | undefined;
  #state: TransportState | undefined;
  #everConnected = false;
  #originRefused = false;
  #closed = false;

  /** Its own ViewerClient from the settings and tokens, or the page's `client` to watch `device` through. */
  constructor(source: { settings: PlayerSettings; tokens: TokenSource } | { client: ViewerClient; device: string }) {
    super();
    if ('client' in source) {
      this.#client = source.client;
      this.#shared = true;
      this.#device = source.device;
      this.#everConnected = source.client.connected;
    } else {
      const { settings, tokens } = source;
      this.#settings = settings;
      this.#device = settings.device;
      this.#shared = false;
      const ws = new URL(settings.mqttPath, settings.bridge);
      ws.protocol = settings.bridge.protocol === 'https:' ? 'wss:' : 'ws:';
      this.#client = new ViewerClient({
        user: settings.user,
        password: () =>
          tokens.next().catch((err: Error) => {
            this.emit('error', { code: 'token-expired', message: err.message });
            throw err;
          }),
        root: settings.root,
        connect: browserConnector(ws.href),
        // A token scoped to some cameras may read only their cards.
        devices: [settings.device],
      });
    }
    const c = this.#client;
    this.#unsubscribe.push(
      c.on('disconnected', (err) => {
        if (this.#closed || this.#originRefused || err instanceof ConnectRefusedError) return;
        this.#set('reconnecting', err?.message ?? 'disconnected');
        if (!this.#everConnected && !this.#shared) void this.#checkOrigin();
      }),
      c.on('connected', () => {
        this.#everConnected = true;
        if (this.#state === 'reconnecting') this.#set('connecting', 'reconnected');
      }),
      c.on('device', (deviceId, entry) => {
        if (deviceId === this.#device && entry?.status?.state === 'offline' && this.#watch?.stream !== 'live') this.#set('offline', 'camera offline');
      }),
    );
    if (!this.#shared) this.#unsubscribe.push(c.on('warning', (message) => this.emit('error', { code: 'warning', message })));
  }

  /** The watch of the camera (its states, timeline and errors), once started. */
  get watch(): WatchSession | undefined {
    return this.#watch;
  }

  start(): void {
    if (this.#shared) {
      // The watch exists before the first state is told, so a listener of that state can follow it.
      this.#watchCamera();
      this.#set(this.#client.connected ? 'connecting' : 'reconnecting', 'start');
      return;
    }
    this.#set('connecting', 'start');
    this.#client.start().then(
      () => this.#watchCamera(),
      (err: Error) => {
        if (this.#originRefused || this.#closed) return;
        const unauthorized = err instanceof ConnectRefusedError;
        this.emit('error', { code: unauthorized ? 'unauthorized' : 'connect-failed', message: err.message });
        this.#set('error', err.message);
      },
    );
  }

  firstFrame(): void {
    this.#watch?.markFirstFrame();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const undo of this.#unsubscribe.splice(0)) undo();
    if (this.#shared) await this.#watch?.close();
    else await this.#client.stop();
    this.removeAllListeners();
  }

  /**
   * The WebSocket has never opened: asks the bridge whether this page's origin may open one. A browser does not tell
   * a page why a handshake failed, and without this a refused origin would look like a bridge that is down.
   */
  async #checkOrigin(): Promise<void> {
    let verdict: { origin?: string | null; allowed?: boolean };
    try {
      verdict = (await (await fetch(new URL(PLAYER_ORIGIN_PATH, this.#settings!.bridge), { cache: 'no-store' })).json()) as typeof verdict;
    } catch {
      return; // the bridge is unreachable (or older): go on reconnecting
    }
    if (verdict.allowed !== false || this.#closed || this.#everConnected || this.#originRefused) return;
    this.#originRefused = true;
    const message = `the bridge refuses MQTT over WebSocket from this page's origin (${verdict.origin ?? 'none'}): its operator must add it to allowedOrigins, or use transport="whep"`;
    this.emit('error', { code: 'origin-not-allowed', message });
    this.#set('error', message);
    await this.#client.stop();
  }

  #watchCamera(): void {
    if (this.#closed) return;
    const watch = this.#client.watch(this.#device, (iceServers, { iceTransportPolicy }) => {
      const peer = new BrowserViewerPeer(iceServers, iceTransportPolicy);
      this.emit('stream', peer.stream);
      this.emit('peer', peer.pc);
      return peer;
    });
    this.#watch = watch;
    watch.on('retry', ({ reason }) => this.#set('reconnecting', `watching again after ${reason}`));
    watch.on('state', (state) => {
      if (state === 'starting' && this.#state === 'reconnecting') this.#set('connecting', 'watching again');
      else if (state === 'failed') this.#set('error', 'the bridge refused to show this camera');
    });
    watch.on('stream', (stream) => {
      if (stream === 'waiting') this.#set('waiting', 'the camera was asked to start');
      else if (stream === 'ended') this.#set('offline', 'the camera left');
      else if (stream === 'live') this.#set('connecting', 'the camera is back');
    });
    watch.on('error', (message) => this.emit('error', { code: message.code, message: message.message }));
  }

  #set(state: TransportState, reason: string): void {
    if (this.#closed || this.#state === state) return;
    this.#state = state;
    this.emit('state', state, reason);
  }
}
