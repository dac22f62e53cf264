/**
 * Every Prometheus metric of one bridge, in a registry of its own (not prom-client's global one), so several bridges
 * in one process (tests, embedding) do not collide. Components never touch prom-client: they call the feeders
 * below, which the bridge wires to Broker, Answerer and Session events (see ./observe.ts).
 *
 * Label values come from closed sets only (transports, roles, message types, error codes, session states, close
 * reasons, negotiation stages, media kinds): never a device or session ID, so cardinality stays bounded.
 *
 * RTP counters are on the hot path (one call per received packet): they add to plain numbers, and the counters are
 * brought up to date when Prometheus scrapes, so a packet costs two additions, not a label lookup.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Milestones of a camera session, each measured from the bridge receiving the offer. */
export const NEGOTIATION_STAGES = ['answer', 'ice_connected', 'dtls_connected', 'first_rtp', 'first_keyframe'] as const;
export type NegotiationStage = (typeof NEGOTIATION_STAGES)[number];

/** Seconds: 5 ms (an answer on a warm peer) to 30 s (a TURN relay through a slow network). */
export const NEGOTIATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export const MEDIA_KINDS = ['audio', 'video'] as const;
export type MediaKind = (typeof MEDIA_KINDS)[number];

interface Flow {
  packets: number;
  bytes: number;
}

export interface SessionCensus {
  /** The live sessions' states, read when Prometheus scrapes. */
  sessionStates(): Iterable<string>;
}

/** Counts kept by the broker's gate (src/broker/gate.ts): limit name → trips, MQTT clause → refusals. */
export interface GateCounts {
  limits: Readonly<Record<string, number>>;
  refusals: Readonly<Record<string, number>>;
}

export class BridgeMetrics {
  readonly registry = new Registry();
  readonly #clients: Gauge<'transport' | 'role'>;
  readonly #connections: Counter<'transport' | 'role'>;
  readonly #authFailures: Counter<'transport'>;
  readonly #denied: Counter<'action' | 'role'>;
  readonly #signals: Counter<'direction' | 'type'>;
  readonly #errors: Counter<'code'>;
  readonly #sessionsOpened: Counter;
  readonly #sessionsClosed: Counter<'reason'>;
  readonly #viewers: Gauge;
  readonly #keyframeRequests: Counter<'reason'>;
  readonly #keyframes: Counter;
  readonly #fanOutCatchUp: Counter;
  readonly #negotiation: Histogram<'stage'>;
  readonly #recordingsActive: Gauge;
  readonly #recordingFiles: Counter;
  readonly #recordingBytes: Counter;
  readonly #recordingErrors: Counter;
  readonly #clusterAvailable: Gauge;
  readonly #unacknowledged: Counter;
  readonly #rtpIn: Record<MediaKind, Flow> = { audio: { packets: 0, bytes: 0 }, video: { packets: 0, bytes: 0 } };
  readonly #rtpOut: Record<MediaKind, Flow> = { audio: { packets: 0, bytes: 0 }, video: { packets: 0, bytes: 0 } };
  readonly #loopDelay: ReturnType<typeof monitorEventLoopDelay>;
  #census: SessionCensus = { sessionStates: () => [] };
  #gate: () => GateCounts = () => ({ limits: {}, refusals: {} });
  #turn: () => { url: string; reachable: boolean } | undefined = () => undefined;

  constructor(labels: { bridgeId: string; version: string }) {
    const registers = [this.registry];
    this.#clients = new Gauge({
      name: 'tali_mqtt_clients',
      help: 'MQTT clients connected now, by transport and role',
      labelNames: ['transport', 'role'],
      registers,
    });
    this.#connections = new Counter({
      name: 'tali_mqtt_connections_total',
      help: 'MQTT clients accepted (authenticated), by transport and role',
      labelNames: ['transport', 'role'],
      registers,
    });
    this.#authFailures = new Counter({
      name: 'tali_auth_failures_total',
      help: 'MQTT CONNECTs refused by authentication, by transport',
      labelNames: ['transport'],
      registers,
    });
    this.#denied = new Counter({
      name: 'tali_access_denied_total',
      help: 'publishes and subscriptions refused by the access rules',
      labelNames: ['action', 'role'],
      registers,
    });
    this.#signals = new Counter({
      name: 'tali_signaling_messages_total',
      help: 'signaling messages the answerer accepted (in) or published (out), by type',
      labelNames: ['direction', 'type'],
      registers,
    });
    this.#errors = new Counter({
      name: 'tali_errors_total',
      help: 'device messages refused with an error code',
      labelNames: ['code'],
      registers,
    });
    const gate = () => this.#gate();
    // Read from the broker's gate at scrape time; label values are limit names and MQTT clauses, a fixed small set.
    new Counter({
      name: 'tali_limit_trips_total',
      help: 'times a limit on clients tripped (the client was refused, dropped or disconnected), by limit',
      labelNames: ['limit'],
      registers,
      collect() {
        this.reset();
        for (const [limit, n] of Object.entries(gate().limits)) this.labels(limit).inc(n);
      },
    });
    new Counter({
      name: 'tali_mqtt_refusals_total',
      help: 'connections closed for breaking an MQTT 3.1.1 rule, by clause',
      labelNames: ['clause'],
      registers,
      collect() {
        this.reset();
        for (const [clause, n] of Object.entries(gate().refusals)) this.labels(clause).inc(n);
      },
    });
    const turn = () => this.#turn();
    new Gauge({
      name: 'tali_turn_reachable',
      help: "with TURN: 1 while the TURN server answers the bridge's probe (its peers use it), 0 while it does not",
      labelNames: ['url'],
      registers,
      collect() {
        this.reset();
        const state = turn();
        if (state) this.labels(state.url).set(state.reachable ? 1 : 0);
      },
    });
    const census = () => this.#census;
    new Gauge({
      name: 'tali_sessions',
      help: 'live camera sessions by state',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const state of ['answering', 'connecting', 'connected', 'streaming']) this.labels(state).set(0);
        for (const state of census().sessionStates()) this.labels(state).inc();
      },
    });
    this.#sessionsOpened = new Counter({ name: 'tali_sessions_opened_total', help: 'camera sessions created (offers taken)', registers });
    this.#sessionsClosed = new Counter({
      name: 'tali_sessions_closed_total',
      help: 'camera sessions ended, by reason (the bye reasons)',
      labelNames: ['reason'],
      registers,
    });
    this.#viewers = new Gauge({ name: 'tali_viewers', help: 'viewer sessions watching a camera now', registers });
    const flowCounter = (name: string, help: string, flows: Record<MediaKind, Flow>, field: keyof Flow) => {
      const synced: Record<MediaKind, number> = { audio: 0, video: 0 };
      return new Counter({
        name,
        help,
        labelNames: ['kind'],
        registers,
        collect() {
          for (const kind of MEDIA_KINDS) {
            const delta = flows[kind][field] - synced[kind];
            this.labels(kind).inc(delta);
            synced[kind] += delta;
          }
        },
      });
    };
    flowCounter('tali_rtp_received_packets_total', 'RTP packets received from cameras', this.#rtpIn, 'packets');
    flowCounter('tali_rtp_received_bytes_total', 'RTP payload bytes received from cameras', this.#rtpIn, 'bytes');
    flowCounter('tali_rtp_sent_packets_total', 'RTP packets forwarded to viewers', this.#rtpOut, 'packets');
    flowCounter('tali_rtp_sent_bytes_total', 'RTP payload bytes forwarded to viewers', this.#rtpOut, 'bytes');
    this.#keyframeRequests = new Counter({
      name: 'tali_keyframe_requests_total',
      help: 'keyframe requests (RTCP PLI) sent to cameras, by why',
      labelNames: ['reason'],
      registers,
    });
    this.#keyframes = new Counter({ name: 'tali_keyframes_received_total', help: 'video keyframes received from cameras', registers });
    this.#fanOutCatchUp = new Counter({
      name: 'tali_fanout_catchup_sends_total',
      help: "packets sent to viewers past a fan-out chunk's budget because a media loop's queue was past its bound (that loop fell behind its cameras)",
      registers,
    });
    this.#negotiation = new Histogram({
      name: 'tali_negotiation_seconds',
      help: 'time from the offer reaching the bridge to each stage of a camera session',
      labelNames: ['stage'],
      buckets: NEGOTIATION_BUCKETS_S,
      registers,
    });
    this.#recordingsActive = new Gauge({ name: 'tali_recordings_active', help: 'recording files being written now', registers });
    this.#recordingFiles = new Counter({ name: 'tali_recording_files_total', help: 'recording files finalised', registers });
    this.#recordingBytes = new Counter({ name: 'tali_recording_bytes_total', help: 'bytes written to recording files', registers });
    this.#recordingErrors = new Counter({ name: 'tali_recording_errors_total', help: 'recording files that failed', registers });
    this.#clusterAvailable = new Gauge({
      name: 'tali_cluster_available',
      help: 'cluster mode: 1 while this node can route through Redis, 0 while it cannot (always 1 on a single node)',
      registers,
    });
    this.#clusterAvailable.set(1);
    this.#unacknowledged = new Counter({
      name: 'tali_cluster_unacknowledged_total',
      help: 'QoS 1 publishes not acknowledged (their connection closed) because Redis could not take them',
      registers,
    });
    new Gauge({
      name: 'tali_build_info',
      help: 'always 1; the labels say which bridge and version',
      labelNames: ['bridge_id', 'version'],
      registers,
    })
      .labels(labels.bridgeId, labels.version)
      .set(1);
    const startedAt = Date.now() / 1000;
    new Gauge({
      name: 'process_start_time_seconds',
      help: 'start time of the bridge since the Unix epoch',
      registers,
      collect() {
        this.set(startedAt);
      },
    });
    new Gauge({
      name: 'process_resident_memory_bytes',
      help: 'resident set size',
      registers,
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
    // Event loop delay matters here: every RTP packet and signaling message waits on the one loop. Its own
    // monitor (not prom-client's default metrics, which cannot be switched off) so close() can stop it.
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    this.#loopDelay = loop;
    new Gauge({
      name: 'tali_event_loop_delay_seconds',
      help: 'event loop delay since the previous scrape (p50, p99, max)',
      labelNames: ['quantile'],
      registers,
      collect() {
        const s = (ns: number) => (Number.isFinite(ns) ? ns / 1e9 : 0);
        this.labels('0.5').set(s(loop.percentile(50)));
        this.labels('0.99').set(s(loop.percentile(99)));
        this.labels('1').set(s(loop.max));
        loop.reset();
      },
    });
    // Zero-valued series exist from the start, so dashboards and alerts see 0 rather than "no data".
    for (const stage of NEGOTIATION_STAGES) this.#negotiation.zero({ stage });
    this.#viewers.set(0);
  }

  /** Where the sessions gauge reads live sessions from (the answerer). */
  clusterAvailable(available: boolean): void {
    this.#clusterAvailable.set(available ? 1 : 0);
  }

  unacknowledged(): void {
    this.#unacknowledged.inc();
  }

  /** Where the limit and refusal counts are read from at scrape time (the embedded broker's gate). */
  countGate(read: () => GateCounts): void {
    this.#gate = read;
  }

  /** Where the TURN probe's verdict is read from at scrape time (no series without TURN). */
  watchTurn(read: () => { url: string; reachable: boolean } | undefined): void {
    this.#turn = read;
  }

  countSessions(census: SessionCensus): void {
    this.#census = census;
  }

  clientConnected(transport: string, role: string): void {
    this.#clients.labels(transport, role).inc();
    this.#connections.labels(transport, role).inc();
  }

  clientGone(transport: string, role: string): void {
    this.#clients.labels(transport, role).dec();
  }

  authFailed(transport: string): void {
    this.#authFailures.labels(transport).inc();
  }

  denied(action: string, role: string): void {
    this.#denied.labels(action, role).inc();
  }

  signal(direction: 'in' | 'out', type: string): void {
    this.#signals.labels(direction, type).inc();
  }

  error(code: string): void {
    this.#errors.labels(code).inc();
  }

  sessionOpened(): void {
    this.#sessionsOpened.inc();
  }

  sessionClosed(reason: string): void {
    this.#sessionsClosed.labels(reason).inc();
  }

  negotiation(stage: NegotiationStage, ms: number): void {
    this.#negotiation.labels(stage).observe(ms / 1000);
  }

  keyframeRequested(reason: 'session' | 'recording' | 'viewer' | 'snapshot'): void {
    this.#keyframeRequests.labels(reason).inc();
  }

  /** Sends a media loop did past its fan-out chunk's budget to catch up (src/media/fan-out.ts). */
  fanOutCaughtUp(sends: number): void {
    this.#fanOutCatchUp.inc(sends);
  }

  keyframeReceived(): void {
    this.#keyframes.inc();
  }

  /** Hot path: once per received RTP packet (or, from a media worker, once a second for many). */
  rtpReceived(kind: MediaKind, payloadBytes: number, packets = 1): void {
    const flow = this.#rtpIn[kind];
    flow.packets += packets;
    flow.bytes += payloadBytes;
  }

  /** Hot path: once per RTP packet forwarded to a viewer (or, from a media worker, once a second for many). */
  rtpSent(kind: MediaKind, payloadBytes: number, packets = 1): void {
    const flow = this.#rtpOut[kind];
    flow.packets += packets;
    flow.bytes += payloadBytes;
  }

  /** Viewer sessions now (the relay feeds this). */
  setViewers(count: number): void {
    this.#viewers.set(count);
  }

  recordingStarted(): void {
    this.#recordingsActive.inc();
  }

  recordingFinished(bytes: number, ok: boolean): void {
    this.#recordingsActive.dec();
    this.#recordingBytes.inc(bytes);
    if (ok) this.#recordingFiles.inc();
    else this.#recordingErrors.inc();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** Stops the event loop monitor. Idempotent. */
  close(): void {
    this.#loopDelay.disable();
  }
}
