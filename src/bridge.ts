/**
 * The Bridge: one process that a camera fleet relies on. It composes the embedded broker part (unless it runs
 * against an existing broker) with the services part and the HTTP server, and closes them in reverse order.
 *
 *   Bridge ─┬─ EmbeddedBroker (tali start): Broker (Aedes) · listeners · Redis backend in cluster mode
 *           ├─ Services: Answerer · Relay · Recorder · BridgeMetrics, each MQTT client in-process or by URL
 *           ├─ PresenceBook (embedded broker): which devices are connected, for `tali device list` and the admin pages
 *           ├─ LibpeerAdapter (embedded broker): speaks protocol v1 for libpeer devices (src/profiles/libpeer/)
 *           └─ HttpServer: /mqtt (to the embedded broker, or piped to the external one) · /metrics · /healthz · /readyz ·
 *              recordings · web apps and their API (src/web/api/)
 *
 * `tali start` runs both parts; `tali answer --broker mqtt://…` (config `broker`) runs the services part alone
 * against Mosquitto, EMQX or HiveMQ (see docs/cluster.md).
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Broker } from './broker/broker.ts';
import { WebSocketListener } from './broker/websocket.ts';
import { libpeerPrefixes, loadConfig, type BridgeConfig } from './config/config.ts';
import type { OptionName } from './config/options.ts';
import { routeDeviceActions } from './check/bridge-actions.ts';
import { EmbeddedBroker } from './embedded-broker.ts';
import { PresenceBook } from './fleet/presence.ts';
import { requireBearer } from './http/bearer.ts';
import { healthz, readyz } from './http/health.ts';
import { originCheck } from './http/origin.ts';
import { HttpServer } from './http/server.ts';
import { createLogger } from './log.ts';
import { dataDirError, listenError, prepareDataDir } from './start-errors.ts';
import { observeBroker, observeCluster } from './metrics/observe.ts';
import { BrokerPipe } from './mqtt/broker-pipe.ts';
import { connectMqtt } from './mqtt/connect.ts';
import { routePlayer } from './player/route.ts';
import { LibpeerTopics, Topics } from './protocol/topics.ts';
import { LibpeerAdapter } from './profiles/libpeer/adapter.ts';
import { ensureAdmin } from './security/bootstrap.ts';
import { RevocationWatcher } from './security/revocation.ts';
import { loadTlsFiles } from './security/tls-files.ts';
import { tokenKeyLoader } from './security/tokens.ts';
import { CredentialStore } from './security/credentials.ts';
import { Services, type MqttWill } from './services.ts';
import { IcePlan } from './turn/ice-plan.ts';
import { VERSION } from './version.ts';
import { ApiCallers } from './web/api/callers.ts';
import { routeDashboardApi } from './web/api/index.ts';
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
  readonly http: HttpServer;
  readonly services: Services;
  /** Undefined in external-broker mode (`tali answer`). */
  readonly embedded: EmbeddedBroker | undefined;
  /** Embedded broker only: which devices are connected to this node, and when each was last seen. */
  readonly presence: PresenceBook | undefined;
  /** Embedded broker with libpeerPrefixes only: protocol v1 for the libpeer devices connected to this node. */
  readonly libpeer: LibpeerAdapter | undefined;
  mqttPort = 0;
  mqttsPort = 0;
  httpPort = 0;
  /** Where the first start left the admin secret, if this start created it. */
  adminSecretFile: string | undefined;
  /** External-broker mode: /mqtt piped to the broker, for the dashboard and the browser camera. */
  readonly #brokerPipe: { pipe: BrokerPipe; ws: WebSocketListener } | undefined;
  /** External-broker mode: revocation for the bridge's own sessions (WHEP); the embedded broker has its own. */
  readonly #revocation: RevocationWatcher | undefined;
  #closing: Promise<void> | undefined;

  private constructor(config: BridgeConfig, log: Logger, credentials: CredentialStore, http: HttpServer, embedded: EmbeddedBroker | undefined, ice: IcePlan) {
    this.config = config;
    this.log = log;
    this.topics = new Topics(config.root);
    this.credentials = credentials;
    this.http = http;
    this.embedded = embedded;
    const callers = new ApiCallers({ store: credentials, tokens: tokenKeyLoader(config.dataDir), logger: log.child({ component: 'http' }) });
    this.services = new Services({
      callers,
      config,
      log,
      topics: this.topics,
      credentials,
      http,
      connect: (role, will) => (embedded ? embedded.connect(role, will) : connectExternal(config, role, log, will)),
      placement: embedded?.placement,
      // One node knows which devices are connected; in a cluster another node may have the camera.
      isOnline: embedded && !embedded.backend ? (deviceId) => this.presence?.get(deviceId)?.online === true : undefined,
      ice,
    });
    // WHEP sessions end when their user is removed or re-keyed, as its MQTT connections do.
    this.#revocation = embedded ? undefined : new RevocationWatcher({ store: credentials, dataDir: config.dataDir, broker: this.services.whep, logger: log.child({ component: 'security' }) });
    embedded?.revocation.add(this.services.whep);
    if (!embedded) {
      const pipe = new BrokerPipe({
        broker: config.broker,
        maxPipes: config.maxConnections,
        maxPipesPerAddress: config.maxConnectionsPerAddress,
        logger: log.child({ component: 'broker-pipe' }),
      });
      const ws = new WebSocketListener(http.server, {
        path: config.wsPath,
        maxMessageBytes: config.maxPacketBytes,
        allowOrigin: originCheck(config),
        onStream: pipe.accept,
      });
      this.#brokerPipe = { pipe, ws };
    }
    if (embedded) observeBroker(this.services.metrics, embedded.broker);
    if (embedded?.backend) observeCluster(this.services.metrics, embedded.backend);
    // Cluster mode: after a Redis outage say online again (Redis may have lost the card); if Redis lost everything,
    // clients reconnect so that their cards, wills and subscriptions exist again.
    embedded?.backend?.on('available', () => this.services.answerer.announce());
    embedded?.backend?.on('reset', () => embedded.broker.disconnectWhere(() => true, 'Redis lost the cluster state'));
    routeWebApps(this.http, { mqttPath: config.wsPath, root: config.root }, log.child({ component: 'web' }));
    routePlayer(this.http, log.child({ component: 'player' }), originCheck(config));
    if (embedded) {
      const presence = new PresenceBook({ dataDir: config.dataDir, bridgeId: config.bridgeId, onError: (err) => log.warn({ err: err.message }, 'presence file not written') });
      embedded.broker.on('clientReady', (_clientId, identity) => identity.role === 'device' && presence.connected(identity.id));
      embedded.broker.on('clientGone', (_clientId, identity) => identity?.role === 'device' && presence.disconnected(identity.id));
      this.presence = presence;
    }
    const prefixes = libpeerPrefixes(config.libpeerPrefixes);
    if (embedded && prefixes.length > 0) {
      const libpeer = new LibpeerAdapter({
        connect: () => embedded.connect('libpeer'),
        topics: this.topics,
        libpeer: new LibpeerTopics(prefixes),
        maxMessageBytes: config.maxMessageBytes,
        logger: log.child({ component: 'libpeer' }),
      });
      const isLibpeer = (identity: { role: string; profile?: string } | undefined) => identity?.role === 'device' && identity.profile === 'libpeer';
      embedded.broker.on('clientReady', (_clientId, identity) => isLibpeer(identity) && libpeer.connected(identity.id));
      embedded.broker.on('clientGone', (_clientId, identity) => identity !== undefined && isLibpeer(identity) && libpeer.disconnected(identity.id));
      embedded.broker.on('subscribed', (_clientId, identity, filters) => isLibpeer(identity) && libpeer.subscribed(identity.id, filters));
      this.libpeer = libpeer;
    }
    routeDashboardApi(this.http, {
      callers,
      store: credentials,
      tokens: tokenKeyLoader(config.dataDir),
      tokenMaxTtlS: config.tokenMaxTtlS,
      fleet: this.services.fleet,
      presence: this.presence,
      logger: log.child({ component: 'http' }),
    });
    routeDeviceActions(
      this.http,
      callers,
      {
        endSession: async (deviceId, reason) => {
          const session = this.services.answerer.sessions.get(deviceId);
          await session?.close(reason, { notify: true }); // normal too: the device is told to wait for start
          return session?.sessionId;
        },
        disconnect: embedded && ((deviceId) => embedded.broker.disconnectWhere((identity) => identity.role === 'device' && identity.id === deviceId, 'an admin asked')),
      },
      log.child({ component: 'http' }),
    );
    http.route('/healthz', healthz);
    http.route(
      '/readyz',
      requireBearer(
        config.metricsToken,
        readyz({
          shutdown: () => (this.#closing ? 'shutting down' : undefined),
          ...embedded?.checks(),
          ...this.services.checks(config.maxSessions),
        }),
      ),
    );
  }

  static async start(options: BridgeStartOptions = {}): Promise<Bridge> {
    const config = isConfig(options.config) ? options.config : loadConfig({ overrides: options.config ?? {} });
    const log = options.logger ?? createLogger(config.logLevel);
    await prepareDataDir(config.dataDir);
    const credentials = new CredentialStore(config.dataDir);
    const external = config.broker !== '';
    if (config.allowAnonymous) log.warn('anonymous clients are allowed (--allow-anonymous): development only');
    const tls = config.tlsCert ? await loadTlsFiles(config.tlsCert, config.tlsKey) : undefined;
    // Every MQTT-over-WebSocket connection is also an HTTP socket; the rest (dashboard, API, metrics) gets 256 more,
    // and one address as many more as maxHttpSocketsPerAddress.
    const http = new HttpServer(tls, {
      maxSockets: config.maxConnections + 256,
      maxSocketsPerAddress: config.maxConnectionsPerAddress + config.maxHttpSocketsPerAddress,
      headersTimeoutMs: config.httpHeadersTimeoutMs,
      requestTimeoutMs: config.httpRequestTimeoutMs,
    });
    const topics = new Topics(config.root);
    const ice = IcePlan.fromConfig(config);
    const embedded = external ? undefined : await EmbeddedBroker.create({ config, log, topics, credentials, http, tls, ice });
    const bridge = new Bridge(config, log, credentials, http, embedded, ice);
    void bridge.services.answerer.warmUp(); // mostly waiting: it overlaps the listeners' start (services.start awaits it)
    let adminSecretFile: string | undefined;
    try {
      try {
        if (embedded) ({ mqttPort: bridge.mqttPort, mqttsPort: bridge.mqttsPort } = await embedded.listen());
        bridge.httpPort = await bridge.http.listen(config.host, config.httpPort);
      } catch (err) {
        throw listenError(err, config);
      }
      // Only once every listener is up: a start that fails on a port leaves no identity (and no secret file) behind.
      try {
        adminSecretFile = external ? undefined : await ensureAdmin(credentials, config.dataDir);
        await bridge.presence?.open();
      } catch (err) {
        throw dataDirError(err, config.dataDir);
      }
      if (adminSecretFile) log.warn({ adminSecretFile }, `first start: created the admin identity "admin"; its secret is in ${adminSecretFile} (only this user can read it)`);
      bridge.adminSecretFile = adminSecretFile;
      await bridge.services.start();
      await bridge.libpeer?.start();
      if (bridge.libpeer && !tls && (await credentials.list()).some((i) => i.profile === 'libpeer')) {
        log.warn('libpeer devices are registered but MQTT over TLS is off: libpeer always speaks TLS (tali cert, then --tls-cert and --tls-key)');
      }
    } catch (err) {
      await bridge.close();
      throw err;
    }
    const secretFile = external ? undefined : await adminSecretPath(config.dataDir);
    log.info(
      {
        ...(embedded && bridge.mqttPort !== 0 && { mqttPort: bridge.mqttPort }),
        wsPath: config.wsPath,
        httpPort: bridge.httpPort,
        ...(tls && embedded && { mqttsPort: bridge.mqttsPort }),
        ...(external && { broker: config.broker }),
        ...(config.cluster && { cluster: true }),
        dataDir: config.dataDir,
        bridgeId: config.bridgeId,
        version: VERSION,
        dashboard: bridge.dashboardUrl,
        ...(secretFile && { adminSecretFile: secretFile }),
      },
      'tali ready',
    );
    return bridge;
  }

  /** The embedded broker; throws in external-broker mode. */
  get broker(): Broker {
    if (this.embedded === undefined) throw new Error('no embedded broker: this bridge runs against an external one');
    return this.embedded.broker;
  }

  get answerer(): Services['answerer'] {
    return this.services.answerer;
  }

  get relay(): Services['relay'] {
    return this.services.relay;
  }

  /** Prometheus metrics of this bridge (its own registry). */
  get metrics(): Services['metrics'] {
    return this.services.metrics;
  }

  get recorder(): Services['recorder'] {
    return this.services.recorder;
  }

  /** mqtt://host:port of the TCP listener, for clients on this machine; the mqtts:// one when plain MQTT is off. */
  get mqttUrl(): string {
    return this.mqttPort === 0 && this.mqttsUrl ? this.mqttsUrl : `mqtt://${this.#localHost}:${this.mqttPort}`;
  }

  /** Where a person on this machine opens the dashboard. */
  get dashboardUrl(): string {
    const host = this.config.host === '0.0.0.0' || this.config.host === '::' ? 'localhost' : this.#localHost;
    return `${this.config.tlsCert ? 'https' : 'http'}://${host}:${this.httpPort}/`;
  }

  get wsUrl(): string {
    return `${this.config.tlsCert ? 'wss' : 'ws'}://${this.#localHost}:${this.httpPort}${this.config.wsPath}`;
  }

  get mqttsUrl(): string | undefined {
    return this.embedded?.tls ? `mqtts://${this.#localHost}:${this.mqttsPort}` : undefined;
  }

  /**
   * Sessions end with bye "shutdown", recordings are finalised, the bridge card goes offline, then listeners and the
   * broker close and every port is released: within `budgetMs` (default shutdownTimeoutMs) whatever the broker or
   * the cluster's Redis does. Each step has until its share of the budget is up; one that is not done by then is left
   * behind (logged) and the next one starts, so that the local work (recordings, ports) is done even when nothing on
   * the network answers. Idempotent: later calls return the same promise.
   */
  close(budgetMs = this.config.shutdownTimeoutMs): Promise<void> {
    this.#closing ??= (async () => {
      const start = performance.now();
      const by = (share: number) => start + budgetMs * share;
      const cut: string[] = [];
      const step = async (name: string, until: number, work: () => Promise<unknown> | undefined): Promise<void> => {
        if (!(await settlesBy(work(), until))) cut.push(name);
      };
      // At once: each waits at most ~1 s for its DISCONNECT when the broker cannot route (a cluster's Redis away).
      const services = Promise.all([this.libpeer?.close(), this.services.close()]);
      const servicesClosed = await settlesBy(services, by(0.55));
      // Services.close ends with the media plane. If a media worker held it back past its share (busy, stuck), its
      // threads are terminated by by(0.6), so no thread outlives close(): what they held ends from here (byes
      // "shutdown") and their pending calls fail, so the services' close goes on: given until by(0.7) to finish,
      // the answerer's offline card after those byes.
      await step('media workers', by(0.62), () => this.services.media.close(by(0.6) - performance.now()));
      if (!servicesClosed) await step('sessions and recordings', by(0.7), () => services);
      // A cluster node whose Redis is known to be away has nothing in flight that could still be routed.
      const backend = this.embedded?.backend;
      if (backend?.available !== false) await step('broker drain', Math.min(by(0.75), performance.now() + 1000), () => this.embedded?.drain(1000));
      await step('listeners', by(0.85), async () => {
        this.#revocation?.close();
        this.#brokerPipe?.pipe.close();
        await this.#brokerPipe?.ws.close();
        await (this.embedded ? this.embedded.closeListeners(this.http) : this.http.close());
      });
      // Aedes waits for its Redis emitter and persistence to close: without Redis, drop their connections first.
      if (backend?.available === false) await settlesBy(backend.close(), by(0.85));
      await step('broker', by(0.95), () => this.embedded?.close());
      if (cut.includes('broker')) await settlesBy(backend?.close(), by(1)); // it could not close: drop its connections
      await settlesBy(this.presence?.close(), by(1));
      this.services.metrics.close();
      if (cut.length > 0) this.log.warn({ cut, budgetMs }, 'tali stopped: some steps did not finish in time');
      else this.log.info('tali stopped');
    })();
    return this.#closing;
  }

  get #localHost(): string {
    const host = this.config.host;
    if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
    return host.includes(':') ? `[${host}]` : host;
  }
}

/** External-broker mode: the bridge's clients connect by URL with its user on that broker, and reconnect. */
function connectExternal(config: BridgeConfig, role: 'answerer' | 'relay', log: Logger, will?: MqttWill) {
  return connectMqtt({
    onError: (err) => log.warn({ role, err: err.message }, 'connection to the broker failed; reconnecting'),
    target: config.broker,
    clientId: `tali-${config.bridgeId}${role === 'answerer' ? '' : `-${role}`}`,
    username: config.brokerUsername || undefined,
    password: config.brokerPassword || undefined,
    will,
    keepaliveS: 30,
    reconnectPeriodMs: 1000,
  });
}

/** data/admin.secret while it exists (an operator may have moved it away after the first start). */
async function adminSecretPath(dataDir: string): Promise<string | undefined> {
  const file = join(dataDir, 'admin.secret');
  return access(file).then(() => file, () => undefined);
}

function isConfig(value: unknown): value is BridgeConfig {
  return typeof value === 'object' && value !== null && Object.isFrozen(value);
}

/** Whether `work` settles (resolves or rejects) before `deadline` (performance.now() time); it runs on either way. */
async function settlesBy(work: Promise<unknown> | undefined, deadline: number): Promise<boolean> {
  if (work === undefined) return true;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - performance.now()), false)));
  const settled = work.then(
    () => true,
    () => true,
  );
  return Promise.race([settled, late]).finally(() => clearTimeout(timer));
}
