/**
 * Every option of `tali start`, once: name, type, default, unit and meaning. Flags (--mqtt-port), environment
 * variables (TALI_MQTT_PORT), the config file ({"mqttPort": …}) and the README's table all derive from this list.
 */
import { redisTargetProblem } from './redis-target.ts';

export type OptionSpec =
  | { type: 'string'; default: string; doc: string; pattern?: RegExp; hint?: string; check?: (value: string) => string | undefined }
  | { type: 'integer'; default: number; min: number; max: number; unit?: string; doc: string }
  | { type: 'boolean'; default: boolean; doc: string }
  | { type: 'enum'; default: string; values: readonly string[]; doc: string }
  | { type: 'portRange'; default: null; doc: string }
  | { type: 'iceServers'; default: readonly []; doc: string }
  | { type: 'idList'; default: readonly []; doc: string }
  | { type: 'addressList'; default: readonly []; interfaces: boolean; doc: string }
  | { type: 'turnUrls'; default: readonly []; doc: string };

const PORT = { min: 0, max: 65535 } as const;

export const OPTIONS = {
  host: { type: 'string', default: '0.0.0.0', doc: 'address the MQTT and HTTP listeners bind to' },
  mqttPort: { type: 'integer', default: 1883, ...PORT, doc: 'MQTT over TCP (with tlsCert only if plainMqttWithTls); 0 picks a free port' },
  httpPort: {
    type: 'integer',
    default: 8080,
    ...PORT,
    doc: 'HTTP(S): dashboard, MQTT over WebSocket at wsPath, /healthz; 0 picks a free port',
  },
  mqttsPort: { type: 'integer', default: 8883, ...PORT, doc: 'MQTT over TLS; only with tlsCert and tlsKey' },
  wsPath: { type: 'string', default: '/mqtt', pattern: /^\/[\w./-]*$/, hint: 'a path like /mqtt', doc: 'path of MQTT over WebSocket' },
  tlsCert: { type: 'string', default: '', doc: 'PEM certificate file; with tlsKey, MQTT/TLS and HTTPS/WSS are on' },
  tlsKey: { type: 'string', default: '', doc: 'PEM private key file' },
  plainMqttWithTls: {
    type: 'boolean',
    default: false,
    doc: 'with tlsCert: keep MQTT over plain TCP on mqttPort too (secrets cross the network in clear); off: only MQTT/TLS and WSS',
  },
  dataDir: { type: 'string', default: './data', doc: 'everything the bridge writes: identities, recordings' },
  root: { type: 'string', default: 'tali', pattern: /^[^+#$\u0000][^+#\u0000]*$/, hint: 'topic levels like tali or acme/cams', doc: 'topic root of the protocol' },
  bridgeId: {
    type: 'string',
    default: '',
    pattern: /^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    hint: '1–64 of A–Z a–z 0–9 . _ -',
    doc: 'this node\'s ID on the bridge card; empty: "bridge-" + host name',
  },
  aclFile: {
    type: 'string',
    default: '',
    doc: "operator rule file in Mosquitto's acl_file syntax: topics outside the protocol root that clients may use (docs/security.md); reloaded on change; empty: none",
  },
  allowAnonymous: { type: 'boolean', default: false, doc: 'let clients without credentials in, as the device named by their client ID (development only)' },
  logLevel: { type: 'enum', default: 'info', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], doc: 'pino log level' },
  iceServers: {
    type: 'iceServers',
    default: [],
    doc: 'STUN/TURN servers for the bridge and announced to devices: JSON [{"urls":…,"username":…,"credential":…}] or comma-separated URLs',
  },
  // TURN with time-limited credentials (docs/operations.md "TURN"): minted per device, per viewer and for the bridge.
  turnSecret: {
    type: 'string',
    default: '',
    doc: "the TURN server's shared secret (coturn static-auth-secret): the bridge mints time-limited TURN credentials from it; never logged (prefer TALI_TURN_SECRET or a config file to the flag)",
  },
  turnUrls: {
    type: 'turnUrls',
    default: [],
    doc: 'the TURN server for those credentials: comma-separated turn:/turns: URLs, e.g. turn:turn.example.net:3478?transport=udp',
  },
  turnTtlS: {
    type: 'integer',
    default: 3600,
    min: 2,
    max: 604_800,
    unit: 's',
    doc: 'lifetime of a minted TURN credential; devices get fresh ones in-band at half of it, viewers with each watch answer and token',
  },
  iceTransportPolicy: {
    type: 'enum',
    default: 'all',
    values: ['all', 'relay'],
    doc: 'relay: every peer (the bridge, devices, viewers) uses TURN relay candidates only; needs turnSecret or a TURN server in iceServers',
  },
  turnAnswerWaitMs: {
    type: 'integer',
    default: 1000,
    min: 0,
    max: 15_000,
    unit: 'ms',
    doc: "longest an answer of the bridge waits for its own TURN relay candidate (its host candidates are ready at once); one that comes later, from a slow or unreachable TURN server, is trickled after the answer",
  },
  relayDevices: {
    type: 'idList',
    default: [],
    doc: 'devices whose sessions use TURN relay candidates only, on the device and on the bridge: comma-separated IDs, or * for all',
  },
  udpPortRange: { type: 'portRange', default: null, doc: 'UDP ports for media, "40000-40999"; empty lets the OS pick' },
  mediaAddresses: {
    type: 'addressList',
    default: [],
    interfaces: true,
    doc: 'network interfaces or local IP addresses media (ICE) uses, e.g. "eth0" or "192.168.1.10", at most one IPv4 and one IPv6 address in all; empty: every interface (--host does not limit media)',
  },
  announceAddresses: {
    type: 'addressList',
    default: [],
    interfaces: false,
    doc: "IP addresses announced as extra host candidates, on the same ports: a 1:1 NAT's public address, a container's host address (like MediaMTX webrtcAdditionalHosts)",
  },
  maxMessageBytes: { type: 'integer', default: 16384, min: 1024, max: 262144, unit: 'bytes', doc: 'largest signaling payload accepted from a device' },
  maxAgeMs: { type: 'integer', default: 60000, min: 0, max: 86_400_000, unit: 'ms', doc: 'accepted clock difference for message ts; 0 disables' },
  connectTimeoutMs: { type: 'integer', default: 15000, min: 1000, max: 600_000, unit: 'ms', doc: 'answer → ICE+DTLS connected before a session is dropped' },
  mediaTimeoutMs: { type: 'integer', default: 10000, min: 1000, max: 600_000, unit: 'ms', doc: 'silence (no RTP) before a connected session is dropped' },
  maxSessions: { type: 'integer', default: 1000, min: 1, max: 1_000_000, doc: 'camera sessions one node answers' },
  maxViewers: { type: 'integer', default: 1000, min: 0, max: 1_000_000, doc: 'viewer sessions one node serves' },
  maxViewersPerUser: {
    type: 'integer',
    default: 32,
    min: 1,
    max: 1_000_000,
    doc: 'viewer sessions one user (all its connections and tokens) may have on one node; more get TALI_ERR_SESSION_LIMIT',
  },
  watchWaitMs: {
    type: 'integer',
    default: 30_000,
    min: 1000,
    max: 3_600_000,
    unit: 'ms',
    doc: 'how long a viewer session waits for a camera that has no session (asked to start) before it ends with bye "timeout"',
  },
  mediaWorkers: {
    type: 'integer',
    default: 0,
    min: 0,
    max: 256,
    unit: 'threads',
    doc: 'worker threads the werift peers run in (a camera, its viewers, recording and monitor share one; signaling stays on the main thread): 0 = one per core (os.availableParallelism(); 1 on a one-core machine), N ≥ 2 = N threads, 1 = none: everything on the main thread (one-worker mode). See mediaWorkersPrestart',
  },
  mediaWorkersPrestart: {
    type: 'boolean',
    default: true,
    doc: 'start every media worker thread with the bridge, which says ready once each has loaded tali and werift (~0.3 s of CPU per thread with the compile cache, ~0.55 s without) and paid werift\'s first use, so that its first cameras wait for none of it; --no-media-workers-prestart: a thread starts with the first camera placed on it, which waits for that (a bridge that may carry no media: tests)',
  },
  mediaWorkerNice: {
    type: 'integer',
    default: 0,
    min: 0,
    max: 19,
    unit: 'nice steps',
    doc: 'how far each media worker thread lowers its own scheduling priority below the main thread (Linux nice values, higher = lower priority, at most nice 19), set by the worker on its own thread at start: when the cores are busy the broker and signaling are scheduled before media, but media then also yields to every other process of the machine, and an answer (made on its camera\'s worker) waits longer for its worker (docs/benchmarks.md, sigload). 0 = same priority. Where it cannot be set (not Linux) it is logged (warn) and the worker runs at the process priority',
  },
  keyframeRetryMs: {
    type: 'integer',
    default: 500,
    min: 50,
    max: 60_000,
    unit: 'ms',
    doc: 'a keyframe request (PLI) to a camera that no keyframe answered within this is sent again (once, then while viewers still ask); one request is outstanding per camera at a time, viewers needing a keyframe meanwhile join it',
  },
  keyframeIntervalMs: {
    type: 'integer',
    default: 0,
    min: 0,
    max: 60_000,
    unit: 'ms',
    doc: 'least time between two keyframe requests to one camera, for firmware that cannot take them often: a need inside it is sent at its end; 0: a need is sent as soon as the camera answered the last request',
  },
  idleStopMs: {
    type: 'integer',
    default: 0,
    min: 0,
    max: 86_400_000,
    unit: 'ms',
    doc: 'with no viewer and no recording for this long, tell the camera to stop (bye "normal"); 0 keeps cameras streaming',
  },
  shutdownTimeoutMs: { type: 'integer', default: 5000, min: 100, max: 120_000, unit: 'ms', doc: 'longest a SIGTERM drain may take' },
  // Cluster mode and external-broker mode (docs/cluster.md).
  cluster: {
    type: 'string',
    default: '',
    check: redisTargetProblem,
    doc: 'tali start: run as one node of a cluster sharing this Redis: redis://[user:password@]host:port[/db], its primary through Redis Sentinel: redis-sentinel://[user:password@]host:port[,host:port…]/name[/db], or a Redis Cluster: redis-cluster://[user:password@]host:port[,host:port…] (docs/cluster.md); empty: a single node',
  },
  clusterHeartbeatMs: { type: 'integer', default: 1000, min: 100, max: 60_000, unit: 'ms', doc: "cluster heartbeat; a node unheard for 3 heartbeats is dead and its clients' wills are published" },
  clusterHoldMs: { type: 'integer', default: 5000, min: 0, max: 60_000, unit: 'ms', doc: "while Redis is away, how long a client's QoS 1 publish is held before its connection is closed unacknowledged" },
  broker: {
    type: 'string',
    default: '',
    pattern: /^$|^(mqtts?|wss?):\/\/\S+$/,
    hint: 'an mqtt://, mqtts://, ws:// or wss:// URL',
    doc: 'tali answer: the existing MQTT broker (Mosquitto, EMQX, HiveMQ) to run against instead of the embedded one',
  },
  brokerUsername: { type: 'string', default: '', doc: "tali answer: the bridge's user name on that broker" },
  brokerPassword: { type: 'string', default: '', doc: 'tali answer: its password (prefer TALI_BROKER_PASSWORD or a config file to the flag)' },
  record: {
    type: 'idList',
    default: [],
    doc: 'devices recorded whenever they stream: comma-separated IDs, or * for all; others on demand (POST /api/recordings/ID)',
  },
  recordSegmentMs: { type: 'integer', default: 600_000, min: 1000, max: 86_400_000, unit: 'ms', doc: 'length of one recording file: the next starts on the first keyframe after it, or on any frame one more segment (at most 10 s) later' },
  recordMaxAgeHours: { type: 'integer', default: 168, min: 0, max: 87_600, unit: 'hours', doc: 'recordings older than this are deleted; 0 keeps them' },
  recordMaxMegabytes: { type: 'integer', default: 10_000, min: 0, max: 100_000_000, unit: 'MB', doc: 'total size of recordings (1 MB = 10^6 bytes), files being written included; the oldest go first; a file closes at a tenth of it; 0: no limit' },
  ffmpegPath: {
    type: 'string',
    default: 'ffmpeg',
    doc: "ffmpeg for the dashboard's camera stills (GET /api/snapshots/ID.jpg; a name on PATH or a path); empty: no stills",
  },
  snapshotRefreshMs: { type: 'integer', default: 5000, min: 500, max: 3_600_000, unit: 'ms', doc: 'a camera still older than this, when someone looks, asks the camera for a keyframe' },
  libpeerPrefixes: {
    type: 'string',
    default: '/public',
    pattern: /^$|^(?!\$)[^+#,\u0000]*[^+#,/\u0000](,(?!\$)[^+#,\u0000]*[^+#,/\u0000])*$/,
    hint: 'topic prefixes like /public or acme/cams, separated by commas',
    doc: 'where libpeer devices signal (docs/devices.md): a device registered with --profile libpeer uses PREFIX/ID/invoke and PREFIX/ID/result; comma-separated; empty: none',
  },
  // Limits on clients (docs/security.md). Each one that trips is logged (event "limit") and counted.
  maxPacketBytes: { type: 'integer', default: 65_536, min: 2048, max: 16_777_216, unit: 'bytes', doc: 'largest MQTT packet a client may send; a larger one closes its connection' },
  maxClientBufferBytes: { type: 'integer', default: 1_048_576, min: 65_536, max: 268_435_456, unit: 'bytes', doc: 'bytes waiting for a client that does not read before it is disconnected' },
  maxConnections: { type: 'integer', default: 5000, min: 1, max: 1_000_000, doc: 'MQTT connections from outside (TCP, TLS, WebSocket) at once; more get CONNACK 3' },
  maxConnectionsPerAddress: { type: 'integer', default: 256, min: 1, max: 1_000_000, doc: 'MQTT connections from one IP address at once' },
  maxPendingConnections: { type: 'integer', default: 256, min: 1, max: 1_000_000, doc: 'connections that have not completed CONNECT and login yet' },
  maxPendingConnectionsPerAddress: {
    type: 'integer',
    default: 32,
    min: 1,
    max: 1_000_000,
    doc: 'of those, from one IP address: one address cannot fill the pending pool and lock others out',
  },
  mqttConnectTimeoutMs: { type: 'integer', default: 10_000, min: 500, max: 120_000, unit: 'ms', doc: 'time from opening a connection to CONNACK (CONNECT sent, login checked) before it is closed' },
  publishRate: { type: 'integer', default: 20, min: 1, max: 100_000, unit: 'messages/s', doc: 'messages (PUBLISH, SUBSCRIBE) per second per client; over it: dropped with TALI_ERR_RATE_LIMITED' },
  publishBurst: {
    type: 'integer',
    default: 50,
    min: 1,
    max: 1_000_000,
    unit: 'messages',
    doc: 'messages a client may send at once above publishRate; more than as many dropped within a second disconnect it',
  },
  maxQueuedMessages: {
    type: 'integer',
    default: 1000,
    min: 1,
    max: 65_535,
    unit: 'messages',
    doc: 'QoS 1 messages a stored session (CleanSession 0) holds for its client while away or unacknowledged; further ones are not stored',
  },
  maxQueuedBytes: { type: 'integer', default: 1_048_576, min: 1024, max: 268_435_456, unit: 'bytes', doc: 'payload bytes a stored session holds; further messages are not stored' },
  maxQueuedBytesTotal: {
    type: 'integer',
    default: 268_435_456,
    min: 65_536,
    max: 17_179_869_184,
    unit: 'bytes',
    doc: 'payload bytes all stored sessions of a node hold together; past it nothing more is stored for anyone',
  },
  sessionExpiryS: { type: 'integer', default: 3600, min: 1, max: 31_536_000, unit: 's', doc: 'a stored session is dropped this long after its client left' },
  persistence: {
    type: 'boolean',
    default: true,
    doc: 'embedded broker: keep retained messages (device and bridge cards, metrics) and stored sessions with their queued messages in stateFile, so they survive a restart or a crash; false (--no-persistence): in memory only. Cluster mode keeps them in Redis instead',
  },
  stateFile: {
    type: 'string',
    default: '',
    doc: 'the SQLite file of persistence (one tali process at a time); empty: state-{bridgeId}.db in dataDir',
  },
  maxStoredSessions: { type: 'integer', default: 8, min: 1, max: 10_000, doc: 'stored sessions one identity may hold; a new one drops its oldest offline one' },
  maxHttpSocketsPerAddress: {
    type: 'integer',
    default: 64,
    min: 1,
    max: 1_000_000,
    doc: 'HTTP(S) sockets from one IP address at once besides its MQTT-over-WebSocket connections (maxConnectionsPerAddress); more are closed on arrival',
  },
  httpHeadersTimeoutMs: { type: 'integer', default: 10_000, min: 500, max: 120_000, unit: 'ms', doc: "time for an HTTP request's head (and the TLS handshake) to arrive before its socket is closed" },
  httpRequestTimeoutMs: { type: 'integer', default: 30_000, min: 1000, max: 600_000, unit: 'ms', doc: 'time for a whole HTTP request, body included, to arrive before its socket is closed' },
  allowedOrigins: {
    type: 'string',
    default: '',
    pattern: /^$|^https?:\/\/[^\s,/]+(\s*,\s*https?:\/\/[^\s,/]+)*$/,
    hint: 'comma-separated origins like https://dash.example.com',
    doc: "web origins besides the bridge's own whose pages may open MQTT over WebSocket (browsers send Origin; clients without one are let in)",
  },
  metricsToken: {
    type: 'string',
    default: '',
    doc: 'when set, /metrics and /readyz need "Authorization: Bearer <this>"; empty: both are public (/healthz always is)',
  },
  tokenMaxTtlS: { type: 'integer', default: 86_400, min: 60, max: 2_592_000, unit: 's', doc: 'longest lifetime of a viewer token, and of a chain of refreshed tokens since the password was given' },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

/** camelCase → --kebab-case flag. */
export function flagOf(name: OptionName): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** camelCase → TALI_SCREAMING_SNAKE environment variable. */
export function envOf(name: OptionName): string {
  return `TALI_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}
