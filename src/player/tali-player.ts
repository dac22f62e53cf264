/**
 * `<tali-player>`: one camera of a tali bridge on any page, in one script and no framework. The bridge serves it
 * bundled at `/tali-player.js` (./route.ts, CORS open); a bundler can import `tali/player` instead.
 *
 *   <script src="https://bridge.example:8080/tali-player.js"></script>
 *   <tali-player bridge="https://bridge.example:8080" device="cam1" token="tali1.…"></tali-player>
 *
 * Attributes: `bridge` (the bridge's URL), `device`, `token` (a viewer token scoped to the camera, e.g. issued by the
 * page's own server with POST /api/token), optional `user` (default: the token's subject), `root` (default tali),
 * `mqtt-path` (default /mqtt), `transport` (`mqtt`, the default: the viewer SDK over MQTT/WebSocket, whose page origin
 * the bridge must list in allowedOrigins; or `whep`: HTTP to the bridge's /whep/{device}, ./whep-transport.ts; `mode`
 * is the same attribute's older name), `controls`.
 * Property `tokenProvider`: an async function giving a fresh token when the current one nears its end; without it
 * the player fires `tali-tokenexpiring` and uses the next `token` attribute the page sets. Property `client`: a
 * ViewerClient the page already runs (the dashboard): the player watches `device` over it (no `bridge`/`token`
 * needed, no connection of its own). A `<video>` child, if the page gives one, is the one played into (the page
 * styles and queries it as its own); else the player's own, in its shadow root.
 *
 * State (property `state`, mirrored in the `state` attribute for CSS): idle, connecting, waiting (the camera was
 * asked to start), playing (frames are painted), offline (the camera left; it resumes when it returns),
 * reconnecting, error. Events (bubbling, composed): `tali-statechange` {state, previous, reason}, `tali-playing`
 * (frames are painted again, after a start or an interruption), `tali-error` {code, message}, `tali-tokenexpiring`
 * {expiresAt}, `tali-peer` {pc} (a new RTCPeerConnection carries the media: for stats), `tali-autoplay` {blocked}
 * (the browser refused or allowed playback; property `autoplayBlocked`). Properties `watch` (transport `mqtt`: the
 * viewer SDK's WatchSession) and `peerConnection`. Method `stop()`: ends playback until an attribute changes.
 */
import type { ViewerClient } from '../viewer/viewer-client.ts';
import type { WatchSession } from '../viewer/watch-session.ts';
import { MqttTransport } from './mqtt-transport.ts';
import { readToken, TokenSource } from './token.ts';
import { WhepTransport } from './whep-transport.ts';
import type { PlayerSettings, PlayerTransport, TransportState } from './transport.ts';

export type PlayerState = 'idle' | 'playing' | TransportState;

const TRANSPORTS = ['mqtt', 'whep'] as const;
const STYLE = `
:host { display: inline-block; position: relative; width: 480px; aspect-ratio: 16 / 9; background: #000; color: #fff;
  font: 13px/1.4 system-ui, sans-serif; overflow: hidden; }
video, ::slotted(video) { width: 100%; height: 100%; object-fit: contain; display: block; }
[part=status] { position: absolute; left: 8px; bottom: 8px; padding: 2px 8px; border-radius: 4px; background: #000a; }
:host([state=playing]) [part=status] { display: none; }
`;

type FrameVideo = HTMLVideoElement & { requestVideoFrameCallback?: (callback: () => void) => number };

export class TaliPlayerElement extends HTMLElement {
  static readonly observedAttributes = ['bridge', 'device', 'token', 'user', 'root', 'mqtt-path', 'transport', 'mode', 'controls'];

  readonly #ownVideo: FrameVideo;
  readonly #status: HTMLElement;
  #client: ViewerClient | undefined;
  #peer: RTCPeerConnection | undefined;
  #autoplayBlocked = false;
  #state: PlayerState = 'idle';
  #transport: PlayerTransport | undefined;
  #tokens: TokenSource | undefined;
  #provider: (() => Promise<string>) | undefined;
  /** Restarts and stops, one after the other (a stop awaits the transport's close: a second must not overlap it). */
  #queue: Promise<void> = Promise.resolve();
  /** A restart is queued and has not begun: more changes join it. */
  #pending = false;
  /** stop() was called and nothing changed since: a queued restart stops without starting. */
  #held = false;
  /** Bumped by each (re)start: a frame callback of an earlier transport must not mark this one playing. */
  #generation = 0;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    // A constructed sheet, not a <style>: a page whose CSP says `style-src 'self'` (the dashboard's) allows it.
    let style: HTMLStyleElement | undefined;
    if ('adoptedStyleSheets' in root && typeof CSSStyleSheet.prototype.replaceSync === 'function') {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(STYLE);
      root.adoptedStyleSheets = [sheet];
    } else {
      style = document.createElement('style');
      style.textContent = STYLE;
    }
    const video = document.createElement('video');
    video.part.add('video');
    video.muted = true; // autoplay is allowed muted; `controls` lets the viewer unmute
    video.autoplay = true;
    video.playsInline = true;
    this.#ownVideo = video;
    // A <video> child of the page's takes the place of the player's own (the slot's fallback content).
    const slot = document.createElement('slot');
    slot.append(video);
    this.#status = document.createElement('div');
    this.#status.part.add('status');
    this.#status.textContent = 'idle';
    root.append(...(style ? [style] : []), slot, this.#status);
  }

  /** The video played into: the page's `<video>` child if it has one, else the player's own. */
  get video(): FrameVideo {
    return this.querySelector<FrameVideo>(':scope > video') ?? this.#ownVideo;
  }

  get client(): ViewerClient | undefined {
    return this.#client;
  }

  set client(client: ViewerClient | undefined) {
    if (client === this.#client) return;
    this.#client = client;
    this.#scheduleRestart();
  }

  get watch(): WatchSession | undefined {
    return this.#transport?.watch;
  }

  get peerConnection(): RTCPeerConnection | undefined {
    return this.#peer;
  }

  get autoplayBlocked(): boolean {
    return this.#autoplayBlocked;
  }

  /** Ends playback (connection, peer, timers) now; any attribute or property set later starts it again. */
  stop(): Promise<void> {
    this.#held = true;
    if (!this.#pending) this.#queue = this.#queue.then(() => this.#stop()).catch((err: Error) => this.#fail('internal', err.message));
    return this.#queue;
  }

  get state(): PlayerState {
    return this.#state;
  }

  get tokenProvider(): (() => Promise<string>) | undefined {
    return this.#provider;
  }

  set tokenProvider(provider: (() => Promise<string>) | undefined) {
    this.#provider = provider;
    if (this.#tokens) this.#tokens.provider = provider;
  }

  connectedCallback(): void {
    this.#scheduleRestart();
  }

  disconnectedCallback(): void {
    this.#scheduleRestart();
  }

  attributeChangedCallback(name: string, previous: string | null, value: string | null): void {
    if (previous === value) return;
    if (name === 'controls') {
      this.video.controls = value !== null;
    } else if (name === 'token' && value && this.#tokens && this.#state !== 'error') {
      this.#tokens.set(value); // a renewal: the live connection goes on, the next CONNECT uses it
    } else {
      this.#scheduleRestart();
    }
  }

  /** Several attributes set in one go (or the element moved) restart the player once. */
  #scheduleRestart(): void {
    this.#held = false;
    if (this.#pending) return;
    this.#pending = true;
    this.#queue = this.#queue.then(async () => {
      this.#pending = false;
      await this.#stop();
      if (this.isConnected && !this.#held) this.#start();
    }).catch((err: Error) => this.#fail('internal', err.message));
  }

  #start(): void {
    const device = this.getAttribute('device');
    const settings = this.#client !== undefined ? (device ? { client: this.#client, device } : '') : this.#settings();
    if (typeof settings === 'string') {
      if (settings !== '') this.#fail('bad-attributes', settings);
      return;
    }
    const kind = this.getAttribute('transport') ?? this.getAttribute('mode') ?? 'mqtt';
    if (!(TRANSPORTS as readonly string[]).includes(kind)) {
      this.#fail('unsupported-mode', `unknown transport "${kind}": use ${TRANSPORTS.join(' or ')}`);
      return;
    }
    if ('client' in settings && kind !== 'mqtt') {
      this.#fail('unsupported-mode', 'a `client` is watched through over MQTT: leave `transport` unset or set it to mqtt');
      return;
    }
    const generation = ++this.#generation;
    const tokens = new TokenSource(this.getAttribute('token') ?? '');
    tokens.provider = this.#provider;
    tokens.onExpiring = (expiresAt) => this.#emit('tali-tokenexpiring', { expiresAt });
    const transport =
      'client' in settings ? new MqttTransport(settings) : kind === 'whep' ? new WhepTransport(settings, tokens) : new MqttTransport({ settings, tokens });
    this.#tokens = tokens;
    this.#transport = transport;
    transport.on('state', (state, reason) => {
      this.#show(state, reason);
      if (state === 'connecting' || state === 'waiting') this.#awaitFrame(generation);
    });
    transport.on('stream', (stream) => {
      const video = this.video;
      video.srcObject = stream;
      // Muted autoplay is allowed; a refusal (unmuted, or a strict policy) is the page's to show: `controls`, or
      // its own play button on `tali-autoplay`.
      video.play().then(
        () => this.#autoplay(false),
        () => {
          this.#autoplay(true);
          video.addEventListener('play', () => this.#autoplay(false), { once: true }); // the user pressed play
        },
      );
      this.#awaitFrame(generation);
    });
    transport.on('peer', (pc) => {
      this.#peer = pc;
      this.#emit('tali-peer', { pc });
    });
    transport.on('error', (error) => this.#emit('tali-error', error));
    tokens.onRenewalFailed = (err) => this.#emit('tali-error', { code: 'token-renewal-failed', message: err.message });
    transport.start();
  }

  async #stop(): Promise<void> {
    this.#generation++;
    const transport = this.#transport;
    this.#transport = undefined;
    this.#tokens?.close();
    this.#tokens = undefined;
    this.#peer = undefined;
    this.video.srcObject = null;
    if (transport) {
      await transport.close();
      this.#show('idle', 'stopped');
    }
  }

  /** The settings from the attributes; a string says what is wrong ('' when the page has not set them yet). */
  #settings(): PlayerSettings | string {
    const bridge = this.getAttribute('bridge');
    const device = this.getAttribute('device');
    const token = this.getAttribute('token');
    if (!bridge || !device || !token) return '';
    let url: URL;
    try {
      url = new URL(bridge, document.baseURI);
    } catch {
      return `bridge "${bridge}" is not a URL`;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return `bridge "${bridge}" must be an http:// or https:// URL`;
    const user = this.getAttribute('user') ?? readToken(token)?.sub;
    if (!user) return 'set the `user` attribute (the token is not one the player can read)';
    return { bridge: url, device, user, root: this.getAttribute('root') ?? 'tali', mqttPath: this.getAttribute('mqtt-path') ?? '/mqtt' };
  }

  /**
   * `playing` once the video paints a frame of the media now expected: armed when a session starts or resumes, and
   * ignored while offline, reconnecting or failed, where a frame still in the decoder is an old one.
   */
  #awaitFrame(generation: number): void {
    const video = this.video;
    const painted = () => {
      if (generation !== this.#generation || !(this.#state === 'connecting' || this.#state === 'waiting')) return;
      this.#transport?.firstFrame();
      this.#show('playing', 'frames are painted');
      this.#emit('tali-playing', {});
    };
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(painted);
    else video.addEventListener('timeupdate', painted, { once: true });
  }

  #autoplay(blocked: boolean): void {
    if (blocked === this.#autoplayBlocked) return;
    this.#autoplayBlocked = blocked;
    this.#emit('tali-autoplay', { blocked });
  }

  #fail(code: string, message: string): void {
    this.#emit('tali-error', { code, message });
    this.#show('error', message);
  }

  #show(state: PlayerState, reason: string): void {
    const previous = this.#state;
    this.#state = state;
    this.setAttribute('state', state);
    this.#status.textContent = state === 'error' ? `error: ${reason}` : state;
    if (previous !== state) this.#emit('tali-statechange', { state, previous, reason });
  }

  #emit(type: string, detail: object): void {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }
}

if (!customElements.get('tali-player')) customElements.define('tali-player', TaliPlayerElement);

declare global {
  interface HTMLElementTagNameMap {
    'tali-player': TaliPlayerElement;
  }
}
