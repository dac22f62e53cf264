/**
 * The embedded broker of `tali start`: Aedes behind tali's identities and access rules, its TCP/TLS and WebSocket
 * listeners, and in cluster mode (`--cluster redis://…`) the Redis backend it shares with the other nodes. The
 * bridge's own MQTT clients reach it in-process.
 *
 *   EmbeddedBroker ─ Broker (Aedes) ◄── TcpListener (mqtt, mqtts) · WebSocketListener (/mqtt on the HTTP server)
 *                      └─ RedisBackend (cluster mode: mqemitter-redis, aedes-persistence-redis)
 */
import type { MqttClient } from 'mqtt';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Broker } from './broker/broker.ts';
import type { RedisBackend } from './broker/cluster.ts';
import { connectInProcess } from './broker/in-process.ts';
import { removedDeviceCards, reviseRestoredCards } from './broker/restored-cards.ts';
import { TcpListener } from './broker/tcp.ts';
import { WebSocketListener } from './broker/websocket.ts';
import { libpeerPrefixes, type BridgeConfig } from './config/config.ts';
import { TaliError } from './errors.ts';
import { originCheck } from './http/origin.ts';
import type { HttpServer } from './http/server.ts';
import { connectMqtt } from './mqtt/connect.ts';
import { encode } from './protocol/codec.ts';
import type { Leave } from './protocol/messages.ts';
import { isValidConnection, LibpeerTopics, PROTOCOL_VERSION, type Topics } from './protocol/topics.ts';
import { libpeerCard } from './profiles/libpeer/card.ts';
import type { RelayPlacement } from './relay/relay.ts';
import { AccessPolicy } from './security/access.ts';
import { passwordAuthenticator } from './security/authenticator.ts';
import type { CredentialStore } from './security/credentials.ts';
import { AclFile } from './security/operator-acl.ts';
import type { Identity } from './security/identity.ts';
import { RevocationWatcher } from './security/revocation.ts';
import { TOKEN_PATH, tokenRoute } from './security/token-route.ts';
import type { IcePlan } from './turn/ice-plan.ts';
import { tokenKeyLoader } from './security/tokens.ts';
import type { MqttWill } from './services.ts';

export interface EmbeddedBrokerOptions {
  config: BridgeConfig;
  log: Logger;
  topics: Topics;
  credentials: CredentialStore;
  http: HttpServer;
  tls?: { key: Buffer; cert: Buffer } | undefined;
  /** Viewers' own ICE servers, handed out with their tokens. */
  ice: IcePlan;
}

export class EmbeddedBroker {
  readonly broker: Broker;
  /** Cluster mode only. */
  readonly backend: RedisBackend | undefined;
  readonly tcp: TcpListener;
  readonly tls: TcpListener | undefined;
  readonly ws: WebSocketListener;
  /** Closes the connections of identities removed from (or re-keyed in) the credential store. */
  readonly revocation: RevocationWatcher;
  /** The operator's rule file (option aclFile), reloaded on change. */
  readonly aclFile: AclFile | undefined;
  readonly #config: BridgeConfig;

  private constructor(broker: Broker, backend: RedisBackend | undefined, aclFile: AclFile | undefined, options: EmbeddedBrokerOptions) {
    const { config, tls } = options;
    this.broker = broker;
    this.backend = backend;
    this.aclFile = aclFile;
    this.#config = config;
    this.tcp = new TcpListener(broker, {});
    this.tls = tls ? new TcpListener(broker, { tls }) : undefined;
    this.ws = new WebSocketListener(options.http.server, {
      path: config.wsPath,
      // Above maxPacketBytes, so that the broker's guard, which logs it, is what refuses an oversized packet.
      maxMessageBytes: config.maxPacketBytes * 2,
      allowOrigin: originCheck(config),
      onStream: (stream, req) => broker.accept(stream, tls ? 'wss' : 'ws', req.socket.remoteAddress ?? 'unknown', req),
    });
    // A viewer connection's sessions end when it does, however it ends: a DISCONNECT discards its will
    // (MQTT-3.14.4-3), so the broker says `leave` for it on every end (the will covers a node that dies).
    broker.on('clientGone', (_clientId, identity) => {
      const leave = identity && viewerLeave(options.topics, identity);
      if (leave) broker.publish(leave).catch(() => {});
    });
    this.revocation = new RevocationWatcher({ store: options.credentials, dataDir: config.dataDir, broker, logger: options.log.child({ component: 'security' }) });
    // Kept cards of devices removed from now on are cleared too (those removed while the node was down: at start).
    if (broker.state && !config.allowAnonymous) this.revocation.add(removedDeviceCards(broker, options.topics));
    const tokens = tokenKeyLoader(config.dataDir);
    const ice = options.ice;
    options.http.route(
      TOKEN_PATH,
      tokenRoute({ store: options.credentials, tokens, maxTtlS: config.tokenMaxTtlS, ice: (user) => ice.forViewer(user), logger: options.log.child({ component: 'security' }) }),
    );
  }

  /** Creates the broker (on Redis in cluster mode, after Redis answered); listeners start with `listen()`. */
  static async create(options: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
    const { config, log, topics } = options;
    const aclFile = await openAclFile(config, log);
    let backend: RedisBackend | undefined;
    if (config.cluster !== '') {
      // Loaded only in cluster mode: ioredis and the Redis emitter and persistence are ~10 % of start-up otherwise.
      const { RedisBackend } = await import('./broker/cluster.ts');
      backend = new RedisBackend({ url: config.cluster, logger: log.child({ component: 'cluster' }), heartbeatIntervalMs: config.clusterHeartbeatMs });
      try {
        await backend.connected(10_000);
      } catch (err) {
        await backend.close();
        aclFile?.close();
        throw err;
      }
    }
    const broker = await Broker.create({
      id: config.bridgeId,
      authenticate: passwordAuthenticator({ store: options.credentials, allowAnonymous: config.allowAnonymous, tokens: tokenKeyLoader(config.dataDir) }),
      access: new AccessPolicy(topics, { libpeer: new LibpeerTopics(libpeerPrefixes(config.libpeerPrefixes)) }),
      // A libpeer device sends no will; its offline card is given as one, so that a cluster node's death marks it too.
      // A viewer connection's will is always its `leave`, whatever it sent: its sessions end with it (issue 11 #5).
      willFor: (identity) => {
        if (identity.role === 'device' && identity.profile === 'libpeer') {
          return { topic: topics.device(identity.id, 'status'), payload: Buffer.from(libpeerCard('offline')), qos: 1, retain: true };
        }
        return viewerLeave(topics, identity);
      },
      topics,
      operatorRules: aclFile && (() => aclFile.rules),
      logger: log.child({ component: 'broker' }),
      shared: backend?.shared,
      stateFile: stateFileOf(config),
      connectTimeoutMs: config.mqttConnectTimeoutMs,
      limits: {
        maxPacketBytes: config.maxPacketBytes,
        maxClientBufferBytes: config.maxClientBufferBytes,
        maxConnections: config.maxConnections,
        maxConnectionsPerAddress: config.maxConnectionsPerAddress,
        maxPendingConnections: config.maxPendingConnections,
        maxPendingConnectionsPerAddress: config.maxPendingConnectionsPerAddress,
        publishRate: config.publishRate,
        publishBurst: config.publishBurst,
      },
      sessions: {
        maxQueuedMessages: config.maxQueuedMessages,
        maxQueuedBytes: config.maxQueuedBytes,
        maxQueuedBytesTotal: config.maxQueuedBytesTotal,
        sessionExpiryS: config.sessionExpiryS,
        maxStoredSessions: config.maxStoredSessions,
      },
    }).catch(async (err: unknown) => {
      // E.g. a state file in use or unreadable (TALI_ERR_STATE_DB): nothing is left open behind the error.
      aclFile?.close();
      await backend?.close();
      throw err;
    });
    if (broker.state) {
      // Before the listeners: no device is connected, so no card the devices publish can be overwritten.
      try {
        const registered = config.allowAnonymous ? undefined : new Set((await options.credentials.list()).filter((i) => i.role === 'device').map((i) => i.id));
        const revised = await reviseRestoredCards(broker, { topics, bridgeId: config.bridgeId, isRegistered: registered && ((id) => registered.has(id)) });
        log.info({ event: 'cards_restored', ...revised }, 'restored cards marked offline');
      } catch (err) {
        await broker.close();
        aclFile?.close();
        throw err;
      }
    }
    if (backend) {
      backend.attach(broker, {
        holdMs: config.clusterHoldMs,
        localOnly: (topic) => {
          const parsed = topics.parse(topic);
          return parsed?.kind === 'device' && parsed.channel === 'up';
        },
      });
      if (!(await backend.whenAvailable(10_000))) {
        await broker.close();
        await backend.close();
        aclFile?.close();
        throw new Error(`cluster backend not available: ${backend.reason}`);
      }
    }
    return new EmbeddedBroker(broker, backend, aclFile, options);
  }

  /** Starts the MQTT listeners; resolves with their ports (0: not listening). */
  async listen(): Promise<{ mqttPort: number; mqttsPort: number }> {
    const config = this.#config;
    // With a certificate, plain MQTT only on request: as HTTP, which then speaks HTTPS only, no secret in clear.
    const plain = this.tls === undefined || config.plainMqttWithTls;
    const mqttPort = plain ? await this.tcp.listen(config.host, config.mqttPort) : 0;
    const mqttsPort = this.tls ? await this.tls.listen(config.host, config.mqttsPort) : 0;
    return { mqttPort, mqttsPort };
  }

  /** Connects one of the bridge's own MQTT clients in-process; it reconnects by itself if the broker drops it. */
  connect(role: 'answerer' | 'relay' | 'libpeer', will?: MqttWill): Promise<MqttClient> {
    const suffix = role === 'answerer' ? '' : `-${role}`;
    return connectMqtt({
      target: () => connectInProcess(this.broker),
      clientId: `tali-${this.#config.bridgeId}${suffix}`,
      will,
      keepaliveS: 60,
      reconnectPeriodMs: 1000,
    });
  }

  /** Cluster mode: which watches this node serves (the camera is connected here; or nowhere and the viewer is). */
  get placement(): RelayPlacement | undefined {
    const backend = this.backend;
    if (backend === undefined) return undefined;
    const broker = this.broker;
    return {
      cameraHere: (deviceId) => backend.isLocal(deviceId),
      viewerHere: (viewerId, connection) => {
        const client = (broker.aedes as unknown as { clients: Record<string, Parameters<Broker['identityOf']>[0] | undefined> }).clients[connection];
        const identity = client && broker.identityOf(client);
        return identity?.id === viewerId && (identity.role === 'viewer' || identity.role === 'admin');
      },
    };
  }

  /** Readiness checks of the broker (for /readyz). */
  checks(): Record<string, () => string | undefined> {
    return {
      broker: () => ((this.tls ?? this.tcp).server.listening ? undefined : 'MQTT listener not listening'),
      ...(this.backend && { cluster: () => this.backend?.problem }),
    };
  }

  /** Waits (at most `timeoutMs`) until what the bridge published last was routed to its subscribers. */
  drain(timeoutMs: number): Promise<void> {
    return this.broker.drain(timeoutMs);
  }

  /** Closes the listeners, flushing what was written, and with them the HTTP server (WebSockets first). Idempotent. */
  async closeListeners(http: HttpServer): Promise<void> {
    await this.ws.close();
    await Promise.all([this.tcp.close(), this.tls?.close(), http.close()]);
  }

  /** Closes the broker (every client connection) and its backend. Idempotent. */
  async close(): Promise<void> {
    this.revocation.close();
    this.aclFile?.close();
    await this.broker.close();
    await this.backend?.close();
  }
}

/** The state file of option persistence (embedded mode only: a cluster keeps its state in Redis). */
function stateFileOf(config: BridgeConfig): string | undefined {
  if (!config.persistence || config.cluster !== '') return undefined;
  return config.stateFile || join(config.dataDir, `state-${config.bridgeId}.db`);
}

/** The operator's rule file when one is configured; one it cannot read or parse stops the start. */
async function openAclFile(config: BridgeConfig, log: Logger): Promise<AclFile | undefined> {
  if (config.aclFile === '') return undefined;
  try {
    return await AclFile.open({ file: config.aclFile, logger: log.child({ component: 'security' }) });
  } catch (err) {
    throw new TaliError('TALI_ERR_ACL_FILE', `${(err as Error).message}. Hint: fix the file, or start without --acl-file`);
  }
}

/** The `leave` of a viewer's connection, on its own up topic (protocol §16.3); undefined for anyone else. */
function viewerLeave(topics: Topics, identity: Identity): { topic: string; payload: Buffer; qos: 1; retain: false } | undefined {
  if ((identity.role !== 'viewer' && identity.role !== 'admin') || !isValidConnection(identity.clientId)) return undefined;
  const leave: Leave = { v: PROTOCOL_VERSION, type: 'leave', ts: Date.now() };
  return { topic: topics.viewer(identity.id, identity.clientId, 'up'), payload: Buffer.from(encode(leave)), qos: 1, retain: false };
}
