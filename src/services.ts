/**
 * What a bridge node does over MQTT, whichever broker it talks to: the answerer (cameras), the relay (viewers), the
 * recorder, metrics and their HTTP routes. Each of its MQTT clients comes from `connect`, so the same services run
 * on the embedded broker (in-process clients, see ./embedded-broker.ts) or on an existing one (Mosquitto, EMQX, …).
 *
 *   Services ─┬─ Answerer ── MQTT client ── Sessions (cameras) ── werift peers
 *             ├─ Relay ───── MQTT client ── CameraStreams ── viewer sessions ── werift peers
 *             ├─ MediaPlane: where sessions, viewers, recordings and monitors run (main thread or media workers)
 *             ├─ Fleet (the dashboard's grid: rates and stills of the live cameras, stills decoded by ffmpeg)
 *             └─ Recorder · BridgeMetrics (/metrics) · recordings API (./recording/admin-api.ts)
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { Answerer } from './answerer/answerer.ts';
import { resolveMediaAddresses } from './webrtc/media-addresses.ts';
import type { BridgeConfig } from './config/config.ts';
import { requireBearer } from './http/bearer.ts';
import type { HttpServer } from './http/server.ts';
import { Fleet } from './fleet/fleet.ts';
import { InThreadMedia, type MediaPlane, type PacketSink } from './media/plane.ts';
import { WorkerMedia } from './media/worker-media.ts';
import { JpegDecoder } from './fleet/jpeg-decoder.ts';
import { BridgeMetrics } from './metrics/bridge-metrics.ts';
import { observeAnswerer, observeRelay } from './metrics/observe.ts';
import { metricsRoute } from './metrics/route.ts';
import { publishTimelines } from './metrics/timeline-publisher.ts';
import type { Topics } from './protocol/topics.ts';
import { routeRecordings } from './recording/admin-api.ts';
import { Recorder } from './recording/recorder.ts';
import { Relay, type RelayPlacement } from './relay/relay.ts';
import { WHEP_PATH, whepRoute } from './profiles/whep/whep-route.ts';
import { WhepSessions } from './profiles/whep/whep-sessions.ts';
import type { CredentialStore } from './security/credentials.ts';
import type { ApiCallers } from './web/api/callers.ts';
import type { IcePlan } from './turn/ice-plan.ts';
import { TurnProbe } from './turn/probe.ts';
import { VERSION } from './version.ts';

export type MqttWill = { topic: string; payload: Buffer; qos: 1; retain: true };

export interface ServicesOptions {
  config: BridgeConfig;
  log: Logger;
  topics: Topics;
  /** The identities (WHEP: whether a camera exists). */
  credentials: CredentialStore;
  http: HttpServer;
  /** Connects one of the node's MQTT clients (`role`: answerer or relay) to the broker, with an optional will. */
  connect: (role: 'answerer' | 'relay', will?: MqttWill) => Promise<MqttClient>;
  /** Who calls the HTTP API (the recordings routes are for admins). */
  callers: ApiCallers;
  /** ICE servers and TURN credentials of every peer. */
  ice: IcePlan;
  /** Cluster mode: which viewers' watches this node serves (see Relay). */
  placement?: RelayPlacement | undefined;
  /** Whether a device is connected, when this node can tell (a single embedded broker): WHEP answers offline at once. */
  isOnline?: ((deviceId: string) => boolean) | undefined;
}

export class Services {
  readonly answerer: Answerer;
  readonly relay: Relay;
  readonly metrics: BridgeMetrics;
  readonly recorder: Recorder;
  readonly fleet: Fleet;
  /** Where camera sessions, their recordings and fleet monitors run (src/media/). */
  readonly media: MediaPlane;
  /** WHEP playback (src/profiles/whep/): viewer sessions owned by HTTP resources. */
  readonly whep: WhepSessions;
  /** ICE servers and TURN credentials of every peer; `ice.turn?.mint(identity)` for other profiles' peers (WHEP). */
  readonly ice: IcePlan;
  /** With TURN: whether the bridge's own peers can use the TURN server now. */
  readonly turnProbe: TurnProbe | undefined;

  constructor(options: ServicesOptions) {
    const { config, log, topics, http } = options;
    const media = { mediaAddresses: resolveMediaAddresses(config.mediaAddresses), announceAddresses: config.announceAddresses };
    const { ice } = options;
    this.ice = ice;
    if (ice.turn) {
      const probe = new TurnProbe({ turn: ice.turn, identity: config.bridgeId, log: log.child({ component: 'turn' }) });
      ice.gateBridgeTurn(() => probe.reachable);
      this.turnProbe = probe;
    }
    this.metrics = new BridgeMetrics({ bridgeId: config.bridgeId, version: VERSION });
    const probe = this.turnProbe;
    const url = ice.turn?.urls[0];
    if (probe && url !== undefined) this.metrics.watchTurn(() => ({ url, reachable: probe.reachable }));
    const metrics = this.metrics;
    const sink: PacketSink = {
      received: (kind, bytes, packets) => metrics.rtpReceived(kind, bytes, packets),
      sent: (kind, bytes, packets) => metrics.rtpSent(kind, bytes, packets),
      caughtUp: (sends) => metrics.fanOutCaughtUp(sends),
    };
    const workers = config.mediaWorkers === 0 ? availableParallelism() : config.mediaWorkers;
    this.media = workers === 1 ? new InThreadMedia(sink) : new WorkerMedia({ workers, prestart: config.mediaWorkersPrestart, sink, nice: config.mediaWorkerNice, logger: log.child({ component: 'media' }) });
    this.answerer = new Answerer({
      connect: (will) => options.connect('answerer', will),
      topics,
      bridgeId: config.bridgeId,
      version: VERSION,
      ice,
      udpPortRange: config.udpPortRange ?? undefined,
      ...media,
      maxMessageBytes: config.maxMessageBytes,
      maxAgeMs: config.maxAgeMs,
      connectTimeoutMs: config.connectTimeoutMs,
      mediaTimeoutMs: config.mediaTimeoutMs,
      maxSessions: config.maxSessions,
      deviceHere: options.placement && ((deviceId) => options.placement!.cameraHere(deviceId)),
      media: this.media,
      logger: log.child({ component: 'answerer' }),
    });
    this.relay = new Relay({
      connect: () => options.connect('relay'),
      topics,
      answerer: this.answerer,
      bridgeId: config.bridgeId,
      ice,
      peer: { portRange: config.udpPortRange ?? undefined, ...media },
      maxMessageBytes: config.maxMessageBytes,
      maxAgeMs: config.maxAgeMs,
      connectTimeoutMs: config.connectTimeoutMs,
      keyframeIntervalMs: config.keyframeIntervalMs,
      keyframeRetryMs: config.keyframeRetryMs,
      idleStopMs: config.idleStopMs,
      maxViewers: config.maxViewers,
      maxViewersPerUser: config.maxViewersPerUser,
      watchWaitMs: config.watchWaitMs,
      registered: (deviceId) => options.credentials.lookup(deviceId)?.role === 'device',
      placement: options.placement,
      wanted: (deviceId) => this.recorder.wants(deviceId),
      media: this.media,
      logger: log.child({ component: 'relay' }),
    });
    observeAnswerer(this.metrics, this.answerer);
    observeRelay(this.metrics, this.relay);
    publishTimelines(this.answerer, config.bridgeId, this.relay);
    this.recorder = new Recorder({
      dir: join(config.dataDir, 'recordings'),
      owner: config.bridgeId,
      always: config.record,
      segmentMs: config.recordSegmentMs,
      retention: { maxAgeMs: config.recordMaxAgeHours * 3_600_000, maxBytes: config.recordMaxMegabytes * 1_000_000 },
      log: log.child({ component: 'recorder' }),
      metrics: this.metrics,
      askToStart: (deviceId) => this.relay.requestStart(deviceId),
      media: this.media,
    });
    this.recorder.attach(this.answerer);
    this.fleet = new Fleet({
      media: this.media,
      decoder: config.ffmpegPath === '' ? undefined : new JpegDecoder({ ffmpeg: config.ffmpegPath }),
      refreshMs: config.snapshotRefreshMs,
      keyframeRequested: () => this.metrics.keyframeRequested('snapshot'),
    });
    this.fleet.attach(this.answerer);
    routeRecordings(http, this.recorder, options.callers);
    http.route('/metrics', requireBearer(config.metricsToken, metricsRoute(this.metrics, () => this.media.refresh())));
    this.whep = new WhepSessions({
      relay: this.relay,
      answerTimeoutMs: config.connectTimeoutMs,
      maxMessageBytes: config.maxMessageBytes,
      logger: log.child({ component: 'whep' }),
    });
    http.routePrefix(WHEP_PATH, whepRoute({
      sessions: this.whep,
      callers: options.callers,
      store: options.credentials,
      iceServers: (user) => [...ice.cardServers, ...(ice.forViewer(user)?.iceServers ?? [])],
      isOnline: options.isOnline,
      maxBodyBytes: config.maxMessageBytes,
      logger: log.child({ component: 'whep' }),
    }));
  }

  async start(): Promise<void> {
    await this.turnProbe?.start(); // ≤ 2 s: the first answers know whether to gather TURN candidates
    await this.answerer.start();
    await this.relay.start();
  }

  /** Readiness checks of the services (for /readyz). */
  checks(maxSessions: number): Record<string, () => string | undefined> {
    return {
      answerer: () => (this.answerer.ready ? undefined : 'answerer not connected to the broker'),
      sessions: () => (this.answerer.sessions.size < maxSessions ? undefined : `at maxSessions (${maxSessions})`),
    };
  }

  /** Viewers and cameras get bye "shutdown", the bridge card goes offline, recordings are finalised. Idempotent. */
  async close(): Promise<void> {
    this.turnProbe?.close();
    this.fleet.close();
    await this.whep.close();
    // Recordings are finalised at once, on the local disk: not after the byes and the card, which need the broker.
    await Promise.all([this.recorder.close(), (async () => {
      await this.relay.close();
      await this.answerer.close();
    })()]);
    await this.media.close();
  }
}
