/**
 * The relay: viewers watch cameras through the bridge. It subscribes to viewers' `up` topics through its own MQTT
 * client (so it runs against any broker), takes the answerer's camera sessions as upstreams, and forwards each
 * camera's RTP to its viewers without transcoding. It asks a camera to `start` when a viewer wants it and no
 * session is live.
 *
 * Viewer topics are per MQTT connection (`viewer/{user}/{connection}/…`), and a session belongs to the connection
 * that watched it (./owner.ts): only that connection's messages steer it, its messages go to that connection only,
 * and it ends when that connection does. How the relay learns that a connection ended, with nothing but an MQTT
 * client: a `leave` on the connection's up topic. The viewer SDK sets it as its will (any broker: `tali answer` on
 * Mosquitto relies on it); the embedded broker forces it as the will of every viewer connection and publishes it
 * itself when a connection ends cleanly (a DISCONNECT discards the will), when its token expires, and when its user
 * is removed or re-keyed. A token refresh moves the sessions to the new connection with `adopt` (protocol §16.4)
 * before the old one goes.
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
import { handleAdopt } from './handlers/adopt.ts';
import { handleLeave, handleViewerBye } from './handlers/bye.ts';
import { handleViewerCandidate } from './handlers/candidate.ts';
import { handleWatch } from './handlers/watch.ts';
import { connectionOwner, type ViewerOwner } from './owner.ts';
import type { MediaPlane } from '../media/plane.ts';
import type { Viewer } from './viewer.ts';

/**
 * Cluster mode: every node's relay receives every viewer message, and exactly one node serves each watch. The node
 * the camera is connected to does (its answerer has the camera's session, so media arrives there); when the camera
 * is connected nowhere (its card is not online), the node the viewer is connected to tells it `waiting`. Messages of
 * viewer sessions served elsewhere are ignored, not refused.
 */
export interface RelayPlacement {
  /** The camera is connected to this node. */
  cameraHere(deviceId: string): boolean;
  /** This viewer connection (user name, client ID) is connected to this node. */
  viewerHere(viewerId: string, connection: string): boolean;
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
  /** Milliseconds a keyframe request to a camera waits for the keyframe before it is sent again. */
  keyframeRetryMs: number;
  /** Milliseconds a camera keeps streaming with no one watching before it is told to stop; 0 never. */
  idleStopMs: number;
  maxViewers: number;
  /** Viewer sessions one user may have on this node. */
  maxViewersPerUser: number;
  /** Milliseconds a viewer session waits for a camera that has no session before it ends (bye "timeout"). */
  watchWaitMs: number;
  /** Whether a device is registered (the credential store); a device with a status card is known anyway. */
  registered?: (deviceId: string) => boolean;
  /** Cluster mode (see RelayPlacement); without it this relay serves every watch. */
  placement?: RelayPlacement | undefined;
  /** Whether something else (a recording) wants a camera's media: such cameras are never told to stop. */
  wanted?: (deviceId: string) => boolean;
  /** Where viewer sessions run: beside their camera's session (src/media/), which forwards its packets to them. */
  media: Pick<MediaPlane, 'createViewer'>;
  logger: Logger;
}

/** Duplicate filters kept for viewer connections at most. */
const MAX_FILTERS = 10_000;

export interface RelayEvents {
  viewer: [Viewer];
  stream: [CameraStream];
}

export class Relay extends EventEmitter<RelayEvents> {
  readonly streams = new Map<string, CameraStream>();
  readonly viewers = new Map<string, Viewer>();
  readonly #options: RelayOptions;
  readonly #log: Logger;
  readonly #context: RelayContext;
  /** Per viewer connection (a session's seq continues on the connection that adopts it; earlier ones stay behind). */
  readonly #duplicates = new Map<string, DuplicateFilter>();
  /** Devices with a status card (online or offline): they exist. */
  readonly #carded = new Set<string>();
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
      maxViewersPerUser: options.maxViewersPerUser,
      known: (deviceId) => this.#carded.has(deviceId) || (options.registered?.(deviceId) ?? false),
      stream: (deviceId) => this.#stream(deviceId),
      streamState: (deviceId) => this.streams.get(deviceId)?.state ?? 'waiting',
      createViewer: (owner, watch) => this.#createViewer(owner, watch),
      clustered: options.placement !== undefined,
    };
    options.answerer.on('session', (session) => this.#stream(session.deviceId).attach(session));
  }

  async start(): Promise<void> {
    const client = await this.#options.connect();
    this.#client = client;
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    const { topics } = this.#options;
    await client.subscribeAsync([topics.allViewers('up'), topics.allDevices('status')], { qos: 1 });
  }

  /**
   * A watch made another way than on the viewer topics (WHEP, src/profiles/whep/): same checks, limits, camera
   * stream, keyframe requests and metrics as a `watch` message; the relay's messages to this viewer (answer, stream,
   * bye, error) go to `send`, and the session is its own owner (it ends with `close()`). Throws ProtocolError:
   * TALI_ERR_SESSION_LIMIT at maxViewers or maxViewersPerUser, TALI_ERR_UNKNOWN_DEVICE, TALI_ERR_UNAVAILABLE when
   * another cluster node has the camera (its media arrives there).
   */
  watch(viewerId: string, watch: Watch, send: (message: Message) => void): Viewer {
    const placement = this.#options.placement;
    if (placement !== undefined && !placement.cameraHere(watch.deviceId) && this.#online.has(watch.deviceId)) {
      throw new ProtocolError('TALI_ERR_UNAVAILABLE', 'the camera is connected to another node of the cluster', { sessionId: watch.sessionId, seq: watch.seq, type: 'watch' });
    }
    return handleWatch(this.#context, { user: viewerId, key: `owned:${viewerId}/${watch.sessionId}`, send }, watch);
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
        keyframeRetryMs: this.#options.keyframeRetryMs,
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

  #createViewer(owner: ViewerOwner, watch: Watch): Viewer {
    const viewer = this.#options.media.createViewer({
      owner,
      watch,
      peer: () => ({ ...this.#options.peer, ...this.#options.ice.bridgePeer() }),
      iceServers: () => this.#options.ice.forViewer(owner.user),
      bridgeId: this.#options.bridgeId,
      connectTimeoutMs: this.#options.connectTimeoutMs,
      waitTimeoutMs: this.#options.watchWaitMs,
      logger: this.#log,
    });
    const key = viewerKey(owner.user, watch.sessionId);
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
    const { id: user, connection } = parsed;
    const owner = connectionOwner(user, connection, (message) => this.#publish(this.#options.topics.viewer(user, connection, 'down'), message));
    try {
      const message = decode('viewer-up', payload, this.#options.maxMessageBytes);
      // A `leave` is a will, made at CONNECT and published whenever the connection ends: no clock window for it.
      if (message.type === 'leave') {
        this.#duplicates.delete(owner.key);
        return handleLeave(this.#context, owner);
      }
      const ref = { sessionId: message.sessionId, seq: message.seq, type: message.type };
      if (!isFresh(message.ts, Date.now(), this.#options.maxAgeMs)) {
        throw new ProtocolError('TALI_ERR_STALE', `ts ${message.ts} is more than ${this.#options.maxAgeMs} ms from the bridge clock`, ref);
      }
      if (!this.#filter(owner.key).accept(message.sessionId, message.seq)) return;
      switch (message.type) {
        case 'watch':
          if (this.#serves(user, connection, message.deviceId)) handleWatch(this.#context, owner, message);
          break;
        case 'adopt':
          handleAdopt(this.#context, owner, message);
          break;
        case 'candidate':
          handleViewerCandidate(this.#context, owner, message);
          break;
        case 'bye':
          handleViewerBye(this.#context, owner, message);
          break;
      }
    } catch (err) {
      if (err instanceof ProtocolError) this.#reject(owner, err);
      else this.#log.error({ err, viewerId: user, connection }, 'viewer message handling failed');
    }
  }

  /** Cluster mode: whether this node serves this watch (see RelayPlacement). */
  #serves(viewerId: string, connection: string, deviceId: string): boolean {
    const placement = this.#options.placement;
    if (placement === undefined || placement.cameraHere(deviceId)) return true;
    return !this.#online.has(deviceId) && placement.viewerHere(viewerId, connection);
  }

  /**
   * Cluster mode: a camera came online on another node. Viewers waiting for it here would never be served (its
   * media arrives there): bye "replaced" makes them watch again at once, and that node serves them.
   */
  #onDeviceCard(deviceId: string, payload: Buffer): void {
    if (payload.length === 0) {
      // Its retained card was cleared: the device is gone.
      this.#carded.delete(deviceId);
      this.#online.delete(deviceId);
      return;
    }
    let online = false;
    try {
      online = decode('status', payload, this.#options.maxMessageBytes).state === 'online';
    } catch {
      return; // the answerer reports bad cards
    }
    this.#carded.add(deviceId);
    if (this.#options.placement === undefined) return;
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

  #filter(connection: string): DuplicateFilter {
    let filter = this.#duplicates.get(connection);
    if (filter === undefined) {
      filter = new DuplicateFilter({ sessions: this.#options.maxViewersPerUser + 16 });
      this.#duplicates.set(connection, filter);
      // Connections that end without a `leave` (a broker that publishes none) are forgotten oldest first.
      if (this.#duplicates.size > MAX_FILTERS) this.#duplicates.delete(this.#duplicates.keys().next().value as string);
    }
    return filter;
  }

  #reject(owner: ViewerOwner, error: ProtocolError): void {
    this.#log.warn({ event: 'rejected', viewerId: owner.user, owner: owner.key, code: error.code, sessionId: error.sessionId, type: error.type }, error.message);
    owner.send(toErrorMessage(error, Date.now()));
  }

  #publish(topic: string, message: Message): void {
    this.#client?.publish(topic, encode(message), { qos: 1 }, (err) => {
      if (err && !this.#closed) this.#log.warn({ topic, err: err.message }, 'publish failed');
    });
  }
}
