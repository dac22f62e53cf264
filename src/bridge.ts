/**
 * The Bridge: one process that a camera fleet relies on. It composes the embedded broker with its listeners, the
 * HTTP server, the answerer, the relay, metrics and the recorder, and closes them in reverse order.
 *
 *   Bridge ─┬─ Broker (Aedes) ◄── TcpListener (mqtt, mqtts) · WebSocketListener (/mqtt on HttpServer)
 *           ├─ Answerer ── MQTT client (in-process stream) ── Sessions (cameras) ── werift peers
 *           ├─ Relay ───── MQTT client (in-process stream) ── CameraStreams ── ViewerSessions ── werift peers
 *           └─ Recorder · BridgeMetrics (/metrics) · /healthz · /readyz
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Answerer } from './answerer/answerer.ts';
import { Broker } from './broker/broker.ts';
import { connectInProcess } from './broker/in-process.ts';
import { TcpListener } from './broker/tcp.ts';
import { WebSocketListener } from './broker/websocket.ts';
import { loadConfig, type BridgeConfig } from './config/config.ts';
import type { OptionName } from './config/options.ts';
import { healthz, readyz } from './http/health.ts';
import { HttpServer } from './http/server.ts';
import { createLogger } from './log.ts';
import { BridgeMetrics } from './metrics/bridge-metrics.ts';
import { observeAnswerer, observeBroker, observeRelay } from './metrics/observe.ts';
import { metricsRoute } from './metrics/route.ts';
import { publishTimelines } from './metrics/timeline-publisher.ts';
import { connectMqtt } from './mqtt/connect.ts';
import { Topics } from './protocol/topics.ts';
import { RECORDINGS_PATH, recordingsApi } from './recording/admin-api.ts';
import { Recorder } from './recording/recorder.ts';
import { Relay } from './relay/relay.ts';
import { AccessPolicy } from './security/access.ts';
import { passwordAuthenticator } from './security/authenticator.ts';
import { ensureAdmin } from './security/bootstrap.ts';
import { CredentialStore } from './security/credentials.ts';
import { VERSION } from './version.ts';
import { routeWebApps } from './web/routes.ts';

export interface BridgeStartOptions {
  /** A validated config, or option values to validate (defaults fill the rest). */
  config?: BridgeConfig | Partial<Record<OptionName, unknown>>;
  logger?: Logger;
}

export class Bridge {
  readonly config: BridgeConfig;
  readonly log: Logger;
  readonly topics: Topics;
  readonly credentials: CredentialStore;
  readonly broker: Broker;
  readonly answerer: Answerer;
  readonly relay: Relay;
  readonly http: HttpServer;
  /** Prometheus metrics of this bridge (its own registry); the relay feeds viewers and RTP out through it. */
  readonly metrics: BridgeMetrics;
  readonly recorder: Recorder;
  mqttPort = 0;
  mqttsPort = 0;
  httpPort = 0;
  /** Where the first start left the admin secret, if this start created it. */
  adminSecretFile: string | undefined;
  readonly #tcp: TcpListener;
  readonly #tls: TcpListener | undefined;
  readonly #ws: WebSocketListener;
  #closing: Promise<void> | undefined;

  private constructor(config: BridgeConfig, log: Logger, broker: Broker, credentials: CredentialStore, tls?: { key: Buffer; cert: Buffer }) {
    this.config = config;
    this.log = log;
    this.topics = new Topics(config.root);
    this.credentials = credentials;
    this.broker = broker;
    this.#tcp = new TcpListener(broker, {});
    this.#tls = tls ? new TcpListener(broker, { tls }) : undefined;
    this.http = new HttpServer(tls);
    this.#ws = new WebSocketListener(broker, this.http.server, {
      path: config.wsPath,
      maxMessageBytes: config.maxMessageBytes * 4,
      secure: tls !== undefined,
    });
    const peer = { iceServers: config.iceServers, portRange: config.udpPortRange ?? undefined };
    this.answerer = new Answerer({
      connect: (will) =>
        connectMqtt({ target: () => connectInProcess(broker), clientId: `tali-${config.bridgeId}`, will, keepaliveS: 60 }),
      topics: this.topics,
      bridgeId: config.bridgeId,
      version: VERSION,
      iceServers: config.iceServers,
      udpPortRange: config.udpPortRange ?? undefined,
      maxMessageBytes: config.maxMessageBytes,
      maxAgeMs: config.maxAgeMs,
      connectTimeoutMs: config.connectTimeoutMs,
      mediaTimeoutMs: config.mediaTimeoutMs,
      maxSessions: config.maxSessions,
      logger: log.child({ component: 'answerer' }),
    });
    this.metrics = new BridgeMetrics({ bridgeId: config.bridgeId, version: VERSION });
    this.relay = new Relay({
      connect: () => connectMqtt({ target: () => connectInProcess(broker), clientId: `tali-${config.bridgeId}-relay`, keepaliveS: 60 }),
      topics: this.topics,
      answerer: this.answerer,
      peer,
      maxMessageBytes: config.maxMessageBytes,
      maxAgeMs: config.maxAgeMs,
      connectTimeoutMs: config.connectTimeoutMs,
      keyframeIntervalMs: config.keyframeIntervalMs,
      idleStopMs: config.idleStopMs,
      maxViewers: config.maxViewers,
      wanted: (deviceId) => this.recorder.wants(deviceId),
      onRtpSent: (kind, bytes) => this.metrics.rtpSent(kind, bytes),
      logger: log.child({ component: 'relay' }),
    });
    observeBroker(this.metrics, broker);
    observeAnswerer(this.metrics, this.answerer);
    observeRelay(this.metrics, this.relay);
    publishTimelines(this.answerer, config.bridgeId, this.relay);
    this.recorder = new Recorder({
      dir: join(config.dataDir, 'recordings'),
      always: config.record,
      segmentMs: config.recordSegmentMs,
      retention: { maxAgeMs: config.recordMaxAgeHours * 3_600_000, maxBytes: config.recordMaxMegabytes * 1_000_000 },
      log: log.child({ component: 'recorder' }),
      metrics: this.metrics,
      askToStart: (deviceId) => this.relay.requestStart(deviceId),
    });
    this.recorder.attach(this.answerer);
    const api = recordingsApi(this.recorder, credentials);
    this.http.route(RECORDINGS_PATH, api.list);
    this.http.routePrefix(`${RECORDINGS_PATH}/`, api.device);
    this.http.route('/metrics', metricsRoute(this.metrics));
    routeWebApps(this.http, { mqttPath: config.wsPath, root: config.root }, log.child({ component: 'web' }));
    this.http.route('/healthz', healthz);
    this.http.route(
      '/readyz',
      readyz({
        shutdown: () => (this.#closing ? 'shutting down' : undefined),
        broker: () => (this.#tcp.server.listening ? undefined : 'MQTT listener not listening'),
        answerer: () => (this.answerer.ready ? undefined : 'answerer not connected to the broker'),
        sessions: () => (this.answerer.sessions.size < config.maxSessions ? undefined : `at maxSessions (${config.maxSessions})`),
      }),
    );
  }

  static async start(options: BridgeStartOptions = {}): Promise<Bridge> {
    const config = isConfig(options.config) ? options.config : loadConfig({ overrides: options.config ?? {} });
    const log = options.logger ?? createLogger(config.logLevel);
    await mkdir(config.dataDir, { recursive: true });
    const credentials = new CredentialStore(config.dataDir);
    const adminSecretFile = await ensureAdmin(credentials, config.dataDir);
    if (config.allowAnonymous) log.warn('anonymous clients are allowed (--allow-anonymous): development only');
    const tls = config.tlsCert ? { cert: await readFile(config.tlsCert), key: await readFile(config.tlsKey) } : undefined;

    const broker = await Broker.create({
      id: config.bridgeId,
      authenticate: passwordAuthenticator({ store: credentials, allowAnonymous: config.allowAnonymous }),
      access: new AccessPolicy(new Topics(config.root)),
      logger: log.child({ component: 'broker' }),
    });
    const bridge = new Bridge(config, log, broker, credentials, tls);
    bridge.adminSecretFile = adminSecretFile;
    try {
      bridge.mqttPort = await bridge.#tcp.listen(config.host, config.mqttPort);
      if (bridge.#tls) bridge.mqttsPort = await bridge.#tls.listen(config.host, config.mqttsPort);
      bridge.httpPort = await bridge.http.listen(config.host, config.httpPort);
      await bridge.answerer.start();
      await bridge.relay.start();
    } catch (err) {
      await bridge.close();
      throw err;
    }
    log.info(
      {
        mqttPort: bridge.mqttPort,
        httpPort: bridge.httpPort,
        ...(tls && { mqttsPort: bridge.mqttsPort }),
        wsPath: config.wsPath,
        dataDir: config.dataDir,
        bridgeId: config.bridgeId,
        version: VERSION,
        ...(adminSecretFile && { adminSecretFile }),
      },
      'tali ready',
    );
    return bridge;
  }

  /** mqtt://host:port of the TCP listener, for clients on this machine. */
  get mqttUrl(): string {
    return `mqtt://${this.#localHost}:${this.mqttPort}`;
  }

  get wsUrl(): string {
    return `${this.#tls ? 'wss' : 'ws'}://${this.#localHost}:${this.httpPort}${this.config.wsPath}`;
  }

  get mqttsUrl(): string | undefined {
    return this.#tls ? `mqtts://${this.#localHost}:${this.mqttsPort}` : undefined;
  }

  /**
   * Sessions end with bye "shutdown", the bridge card goes offline, then listeners and the broker close and every
   * port is released. Idempotent: later calls return the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.relay.close();
      await this.answerer.close();
      await this.recorder.close(); // sessions are closed: finalise their files
      await this.broker.drain(1000);
      await this.#ws.close();
      await Promise.all([this.#tcp.close(), this.#tls?.close(), this.http.close()]);
      await this.broker.close();
      this.metrics.close();
      this.log.info('tali stopped');
    })();
    return this.#closing;
  }

  get #localHost(): string {
    const host = this.config.host;
    if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
    return host.includes(':') ? `[${host}]` : host;
  }
}

function isConfig(value: unknown): value is BridgeConfig {
  return typeof value === 'object' && value !== null && Object.isFrozen(value);
}
