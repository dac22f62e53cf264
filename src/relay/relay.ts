/**
 * The relay: viewers watch cameras through the bridge. It subscribes to viewers' `up` topics through its own MQTT
 * client (so it runs against any broker), takes the answerer's camera sessions as upstreams, and forwards each
 * camera's RTP to its viewers without transcoding. It asks a camera to `start` when a viewer wants it and no
 * session is live.
 */
import { EventEmitter } from 'node:events';
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { endWithin, type Answerer } from '../answerer/answerer.ts';
import { decode, encode, encodeForDevice } from '../protocol/codec.ts';
import { ProtocolError, toErrorMessage } from '../protocol/errors.ts';
import type { Message, Start, Watch } from '../protocol/messages.ts';
import { DuplicateFilter, isFresh } from '../protocol/sequence.ts';
import { PROTOCOL_VERSION, type Topics } from '../protocol/topics.ts';
import type { IcePlan } from '../turn/ice-plan.ts';
import type { PeerOptions } from '../webrtc/peer.ts';
import { CameraStream } from './camera-stream.ts';
import { viewerKey, type RelayContext } from './context.ts';
import { handleLeave, handleViewerBye } from './handlers/bye.ts';
import { handleViewerCandidate } from './handlers/candidate.ts';
import { handleWatch, startOwnedWatch } from './handlers/watch.ts';
import { ViewerSession } from './viewer.ts';
import type { Session } from '../answerer/session.ts';

/**
 * Cluster mode: every node's relay receives every viewer message, and exactly one node serves each watch. The node
 * the camera is connected to does (its answerer has the camera's session, so media arrives there); when the camera
 * is connected nowhere (its card is not online), the node the viewer is connected to tells it `waiting`. Messages of
 * viewer sessions served elsewhere are ignored, not refused.
 */
export interface RelayPlacement {
  /** The camera is connected to this node. */
  cameraHere(deviceId: string): boolean;
  /** A client of this viewer (user name) is connected to this node. */
  viewerHere(viewerId: string): boolean;
}

export interface RelayOptions {
  connect: () => Promise<MqttClient>;
  topics: Topics;
  answerer: Answerer;
  /** This node's ID, named in viewers' answers. */
  bridgeId?: string | undefined;
  /** ICE servers of the bridge's viewer peers and of the viewers. */
  ice: IcePlan;
  /** The rest of the viewer peers' options: ports and media addresses. */
  peer: Omit<PeerOptions, 'iceServers' | 'iceTransportPolicy'>;
  maxMessageBytes: number;
  maxAgeMs: number;
  connectTimeoutMs: number;
  /** Least milliseconds between keyframe requests to one camera. */
  keyframeIntervalMs: number;
  /** Milliseconds a camera keeps streaming with no one watching before it is told to stop; 0 never. */
  idleStopMs: number;
  maxViewers: number;
  /** Cluster mode (see RelayPlacement); without it this relay serves every watch. */
  placement?: RelayPlacement | undefined;
  /** Whether something else (a recording) wants a camera's media: such cameras are never told to stop. */
  wanted?: (deviceId: string) => boolean;
  /** Called for every packet forwarded to a viewer (metrics); keep it cheap. */
  onRtpSent?: (kind: 'audio' | 'video', payloadBytes: number) => void;
  logger: Logger;
}

export interface RelayEvents {
  viewer: [ViewerSession];
  stream: [CameraStream];
}

export class Relay extends EventEmitter<RelayEvents> {
  readonly streams = new Map<string, CameraStream>();
  readonly viewers = new Map<string, ViewerSession>();
  readonly #options: RelayOptions;
  readonly #log: Logger;
  readonly #context: RelayContext;
  readonly #duplicates = new Map<string, DuplicateFilter>();
  /** Cluster mode: devices whose card says online (connected to some node). */
  readonly #online = new Set<string>();
  #client: MqttClient | undefined;
  #closed = false;

  constructor(options: RelayOptions) {
    super();
    this.#options = options;
    this.#log = options.logger;
    this.#context = {
      log: this.#log,
      viewers: this.viewers,
      maxViewers: options.maxViewers,
      stream: (deviceId) => this.#stream(deviceId),
      createViewer: (viewerId, watch, send) => this.#createViewer(viewerId, watch, send),
      reject: (viewerId, error) => this.#reject(viewerId, error),
      clustered: options.placement !== undefined,
    };
    // Camera sessions run on this thread until viewers move beside them (src/media/): the stream reads their RTP.
    options.answerer.on('session', (session) => this.#stream(session.deviceId).attach(session as Session));
  }

  async start(): Promise<void> {
    const client = await this.#options.connect();
    this.#client = client;
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    const { topics, placement } = this.#options;
    await client.subscribeAsync(placement ? [topics.allViewers('up'), topics.allDevices('status')] : topics.allViewers('up'), { qos: 1 });
  }

  /** Ends every viewer session with bye "shutdown" and disconnects. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.viewers.values()].map((v) => v.close('shutdown')));
    for (const stream of this.streams.values()) stream.close();
    this.streams.clear();
    if (this.#client) await endWithin(this.#client, 1000);
  }

  #stream(deviceId: string): CameraStream {
    let stream = this.streams.get(deviceId);
    if (stream === undefined) {
      const created = new CameraStream({
        deviceId,
        keyframeIntervalMs: this.#options.keyframeIntervalMs,
        idleStopMs: this.#options.idleStopMs,
        askToStart: () => this.requestStart(deviceId),
        wanted: () => this.#options.wanted?.(deviceId) ?? false,
        logger: this.#log,
      });
      created.on('unused', () => {
        if (this.streams.get(deviceId) === created) this.streams.delete(deviceId);
        created.close();
      });
      this.streams.set(deviceId, created);
      this.emit('stream', created);
      stream = created;
    }
    return stream;
  }

  /**
   * A watch made another way than on the viewer topics (WHEP, src/profiles/whep/): same checks, limits, camera
   * stream, keyframe requests and metrics as a `watch` message; the relay's messages to this viewer (answer, stream,
   * bye, error) go to `send`. Throws ProtocolError: TALI_ERR_SESSION_LIMIT at maxViewers, TALI_ERR_UNAVAILABLE when
   * another cluster node has the camera (its media arrives there).
   */
  watch(viewerId: string, watch: Watch, send: (message: Message) => void): ViewerSession {
    const placement = this.#options.placement;
    if (placement !== undefined && !placement.cameraHere(watch.deviceId) && this.#online.has(watch.deviceId)) {
      throw new ProtocolError('TALI_ERR_UNAVAILABLE', 'the camera is connected to another node of the cluster', { sessionId: watch.sessionId, seq: watch.seq, type: 'watch' });
    }
    return startOwnedWatch(this.#context, viewerId, watch, send);
  }

  #createViewer(viewerId: string, watch: Watch, send?: (message: Message) => void): ViewerSession {
    const viewer = new ViewerSession({
      viewerId,
      watch,
      peer: () => ({ ...this.#options.peer, ...this.#options.ice.bridgePeer() }),
      iceServers: () => this.#options.ice.forViewer(viewerId),
      bridgeId: this.#options.bridgeId,
      connectTimeoutMs: this.#options.connectTimeoutMs,
      logger: this.#log,
      onSent: this.#options.onRtpSent,
      send: send ?? ((message) => this.#publish(this.#options.topics.viewer(viewerId, 'down'), message)),
    });
    const key = viewerKey(viewerId, watch.sessionId);
    this.viewers.set(key, viewer);
    viewer.once('closed', () => this.viewers.delete(key));
    this.emit('viewer', viewer);
    return viewer;
  }

  /** Asks a camera to offer (a `start` on its down topic): a viewer or a recording wants its media. */
  requestStart(deviceId: string): void {
    const start: Start = { v: PROTOCOL_VERSION, type: 'start', ts: Date.now(), reason: 'viewer' };
    this.#log.info({ deviceId }, 'asking the camera to start');
    this.#client?.publish(this.#options.topics.device(deviceId, 'down'), encodeForDevice(start), { qos: 1 });
  }

  #onMessage(topic: string, payload: Buffer): void {
    const parsed = this.#options.topics.parse(topic);
    if (parsed?.kind === 'device' && parsed.channel === 'status') return this.#onDeviceCard(parsed.id, payload);
    if (parsed?.kind !== 'viewer' || parsed.channel !== 'up' || payload.length === 0) return;
    const viewerId = parsed.id;
    try {
      const message = decode('viewer-up', payload, this.#options.maxMessageBytes);
      if (message.type !== 'leave') {
        const ref = { sessionId: message.sessionId, seq: message.seq, type: message.type };
        if (!isFresh(message.ts, Date.now(), this.#options.maxAgeMs)) {
          throw new ProtocolError('TALI_ERR_STALE', `ts ${message.ts} is more than ${this.#options.maxAgeMs} ms from the bridge clock`, ref);
        }
        if (!this.#filter(viewerId).accept(message.sessionId, message.seq)) return;
      }
      switch (message.type) {
        case 'watch':
          if (this.#serves(viewerId, message.deviceId)) handleWatch(this.#context, viewerId, message);
          break;
        case 'candidate':
          handleViewerCandidate(this.#context, viewerId, message);
          break;
        case 'bye':
          handleViewerBye(this.#context, viewerId, message);
          break;
        case 'leave':
          this.#duplicates.delete(viewerId);
          handleLeave(this.#context, viewerId, message);
          break;
      }
    } catch (err) {
      if (err instanceof ProtocolError) this.#reject(viewerId, err);
      else this.#log.error({ err, viewerId }, 'viewer message handling failed');
    }
  }

  /** Cluster mode: whether this node serves this watch (see RelayPlacement). */
  #serves(viewerId: string, deviceId: string): boolean {
    const placement = this.#options.placement;
    if (placement === undefined || placement.cameraHere(deviceId)) return true;
    return !this.#online.has(deviceId) && placement.viewerHere(viewerId);
  }

  /**
   * Cluster mode: a camera came online on another node. Viewers waiting for it here would never be served (its
   * media arrives there): bye "replaced" makes them watch again at once, and that node serves them.
   */
  #onDeviceCard(deviceId: string, payload: Buffer): void {
    let online = false;
    try {
      online = payload.length > 0 && decode('status', payload, this.#options.maxMessageBytes).state === 'online';
    } catch {
      return; // the answerer reports bad cards
    }
    if (!online) {
      this.#online.delete(deviceId);
      return;
    }
    this.#online.add(deviceId);
    const stream = this.streams.get(deviceId);
    if (stream === undefined || stream.upstream !== undefined || this.#options.placement?.cameraHere(deviceId)) return;
    for (const viewer of [...stream.viewers]) {
      this.#log.info({ viewerId: viewer.viewerId, deviceId }, 'camera online on another node: its viewer watches again there');
      void viewer.close('replaced');
    }
  }

  #filter(viewerId: string): DuplicateFilter {
    let filter = this.#duplicates.get(viewerId);
    if (filter === undefined) {
      filter = new DuplicateFilter({ sessions: 16 });
      this.#duplicates.set(viewerId, filter);
    }
    return filter;
  }

  #reject(viewerId: string, error: ProtocolError): void {
    this.#log.warn({ event: 'rejected', viewerId, code: error.code, sessionId: error.sessionId, type: error.type }, error.message);
    this.#publish(this.#options.topics.viewer(viewerId, 'down'), toErrorMessage(error, Date.now()));
  }

  #publish(topic: string, message: Message): void {
    this.#client?.publish(topic, encode(message), { qos: 1 }, (err) => {
      if (err && !this.#closed) this.#log.warn({ topic, err: err.message }, 'publish failed');
    });
  }
}
