/**
 * A libpeer camera for tests: sepfy/libpeer's examples/generic/main.c (H264 + PCMA, a data channel) on this
 * repository's clips, speaking libpeer's wire protocol (./signaling.ts, ./core-mqtt.ts, ./peer-connection.ts).
 *
 *   const cam = new LibpeerDevice({ url: 'mqtts://127.0.0.1:8883/public/cam-lp1', token });
 *   await cam.start();   // peer_connection_create + peer_signaling_connect, media loop
 *   cam.reconnect();     // what a firmware does after its connection died: drop it, connect again
 *   await cam.stop();    // peer_signaling_disconnect + peer_connection_destroy
 *
 * Media runs only while the call is `completed` (peer_connection_send_video/audio): video 25 frames/s (the
 * example's 40 ms) from the shipped H264 clip, looping, and a 440 Hz tone as PCMA, 20 ms per packet. On PLI or FIR
 * the clip jumps to its next IDR (a clip cannot be re-encoded).
 */
import { loadVideoClip } from '../camera/media/video-source.ts';
import type { EncodedFrame } from '../camera/media/containers.ts';
import { encodeG711 } from '../camera/media/g711.ts';
import type { CoreMqttOptions } from './core-mqtt.ts';
import { LibpeerPeerConnection, type LibpeerPcConfig, type LibpeerPcState } from './peer-connection.ts';
import { PeerSignaling } from './signaling.ts';

export interface LibpeerDeviceOptions {
  url: string;
  /** base64("<device ID>:<secret>"); omitted: connect without credentials. */
  token?: string | undefined;
  video?: 'H264' | undefined;
  audio?: 'PCMA' | 'PCMU' | undefined;
  datachannel?: boolean | undefined;
  iceServers?: LibpeerPcConfig['iceServers'] | undefined;
  keepaliveTimeoutMs?: number | undefined;
  mqttTiming?: CoreMqttOptions['timing'];
}

export interface LibpeerDeviceStats {
  /** Calls that reached `completed`. */
  calls: number;
  framesSent: number;
  keyframesSent: number;
  audioFramesSent: number;
  keyframeRequests: number;
  /** Every state change, in order. */
  states: LibpeerPcState[];
  /** Methods of the requests received, in order. */
  requests: string[];
  responses: string[];
}

const VIDEO_INTERVAL_MS = 40;
const AUDIO_INTERVAL_MS = 20;

export class LibpeerDevice {
  readonly pc: LibpeerPeerConnection;
  readonly stats: LibpeerDeviceStats = { calls: 0, framesSent: 0, keyframesSent: 0, audioFramesSent: 0, keyframeRequests: 0, states: [], requests: [], responses: [] };
  readonly #options: LibpeerDeviceOptions;
  #signaling: PeerSignaling | undefined;
  readonly #frames: EncodedFrame[];
  #nextFrame = 0;
  #keyframeWanted = true;
  #tone = 0;
  #timers: NodeJS.Timeout[] = [];
  readonly #waiters = new Set<() => void>();
  /** Why the MQTT connection ended, if it did. */
  closedReason: string | undefined;

  constructor(options: LibpeerDeviceOptions) {
    this.#options = options;
    this.#frames = loadVideoClip('H264').frames;
    this.pc = new LibpeerPeerConnection({
      video: options.video ?? 'H264',
      audio: options.audio ?? 'PCMA',
      datachannel: options.datachannel ?? true,
      iceServers: options.iceServers ?? [],
      keepaliveTimeoutMs: options.keepaliveTimeoutMs,
    });
    this.pc.onStateChange = (state) => {
      this.stats.states.push(state);
      if (state === 'completed') {
        this.stats.calls++;
        this.#keyframeWanted = true;
      }
      this.#notify();
    };
    this.pc.onKeyframeRequest = () => {
      this.stats.keyframeRequests++;
      this.#keyframeWanted = true;
    };
  }

  get signaling(): PeerSignaling | undefined {
    return this.#signaling;
  }

  get state(): LibpeerPcState {
    return this.pc.state;
  }

  /** Connects; resolves with the CONNACK return code (0: subscribed). */
  async start(): Promise<number> {
    this.#timers.push(setInterval(() => this.#sendVideo(), VIDEO_INTERVAL_MS), setInterval(() => this.#sendAudio(), AUDIO_INTERVAL_MS));
    return this.#connect();
  }

  /** The device's connection died and the firmware connects again (a new TLS connection, same client ID). */
  async reconnect(): Promise<number> {
    this.#signaling?.drop();
    return this.#connect();
  }

  /** peer_signaling_disconnect() and peer_connection_destroy(). Idempotent. */
  async stop(): Promise<void> {
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
    this.#signaling?.disconnect();
    this.#signaling = undefined;
    await this.pc.destroy();
  }

  /** Resolves when `predicate` holds (checked on every state change and response). */
  until(predicate: (device: LibpeerDevice) => boolean): Promise<void> {
    if (predicate(this)) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!predicate(this)) return;
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
    });
  }

  async #connect(): Promise<number> {
    this.closedReason = undefined;
    const signaling = new PeerSignaling(this.#options.url, this.#options.token, this.pc, {
      request: (method) => {
        this.stats.requests.push(String(method));
        this.#notify();
      },
      response: (payload) => {
        this.stats.responses.push(payload);
        this.#notify();
      },
      closed: (reason) => {
        if (this.#signaling === signaling) this.closedReason = reason;
        this.#notify();
      },
      crashed: () => this.#notify(),
    }, this.#options.mqttTiming);
    this.#signaling = signaling;
    return signaling.connect();
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  #sendVideo(): void {
    if (this.pc.state !== 'completed') return;
    if (this.#keyframeWanted) {
      this.#keyframeWanted = false;
      const next = this.#frames.findIndex((f, i) => i >= this.#nextFrame && f.keyframe);
      this.#nextFrame = next === -1 ? 0 : next;
    }
    const frame = this.#frames[this.#nextFrame] as EncodedFrame;
    this.#nextFrame = (this.#nextFrame + 1) % this.#frames.length;
    this.pc.sendVideo(frame.data);
    this.stats.framesSent++;
    if (frame.keyframe) this.stats.keyframesSent++;
  }

  #sendAudio(): void {
    if (this.pc.state !== 'completed' || this.pc.config.audio === undefined) return;
    const samples = Array.from({ length: 160 }, (_, i) => Math.round(0.25 * 32767 * Math.sin((2 * Math.PI * 440 * (this.#tone + i)) / 8000)));
    this.#tone += 160;
    this.pc.sendAudio(encodeG711(this.pc.config.audio, samples));
    this.stats.audioFramesSent++;
  }
}
