/**
 * Media load on a bridge, in three processes as the relay table runs it: the bridge alone (./target.ts, mode
 * bridge), the cameras (./camera-worker.ts, werift senders streaming a ~1 Mbit/s clip) and the viewers
 * (./viewer-worker.ts, werift receivers counting packets and sequence gaps). The relay table ramps viewers level by
 * level until the knee; the signaling-under-load table ramps the same way, steps back to a share of the capacity and
 * times signaling there. One knee rule for both (isKnee).
 */
import { availableParallelism } from 'node:os';
import type { WorkerCommand, WorkerEvent } from './camera-worker.ts';
import { Child } from './child.ts';
import { makeClip, type Clip } from './clip.ts';
import type { RelayStats, TargetCommand, TargetEvent } from './target.ts';
import { sleep } from './util.ts';
import type { ViewerCommand, ViewerEvent, ViewerTotals } from './viewer-worker.ts';

export interface RelayLoadOptions {
  streams: number;
  /** Viewer identities (each a scrypt-hashed secret in the bridge); viewers share them round-robin. */
  identities: number;
  /** Frames of the generated clip (it loops). */
  clipFrames?: number;
  /** The bridge's mediaWorkers (1: the main thread; N: N worker threads). */
  mediaWorkers?: number;
  /** Cameras connect (their sessions answered) without streaming until media(true). */
  paused?: boolean;
  /** More viewer identities, not used by the load's viewers (a probe's own; see secret()). */
  extraIdentities?: string[];
  /**
   * Nice value of the cameras' and viewers' processes (0: as the bench). On a machine of few cores the load
   * generators compete with the bridge for them, which cameras and viewers on other machines would not.
   */
  generatorNice?: number;
  /** Bridge options on top of BENCH_BRIDGE_CONFIG's. */
  bridgeConfig?: Record<string, unknown>;
  trace?: (what: string) => void;
}

export interface LevelResult {
  viewersPerStream: number;
  viewers: number;
  forwardedPerSecond: number;
  receivedPerSecond: number;
  bridgeCore: number;
  cpuUsPerForwarded: number;
  marginalUsPerForwarded: number;
  eldP50: number;
  eldP99: number;
  /** Share of the window the bridge's main thread was runnable but waiting for a CPU. */
  runQueue: number;
  /** Media worker threads (mediaWorkers ≥ 2): the busiest one's share of a core, the longest one's wait for a CPU. NaN with none. */
  workerCore: number;
  workerRunQueue: number;
  /** A command's round trip main thread → media workers → main thread (target.ts 'usage'), ms; NaN with none. */
  workerRttP50: number;
  workerRttP99: number;
  lossPercent: number;
  viewerCore: number;
  viewerEldP99: number;
  mbitOut: number;
  failed: number;
}

export class RelayLoad {
  readonly options: RelayLoadOptions;
  readonly clip: Clip;
  readonly bridge: Child<TargetCommand, TargetEvent>;
  readonly deviceIds: string[];
  /** The bridge process may use a core per media worker plus its main thread, as far as the machine has them. */
  readonly bridgeCores: number;
  /** Viewer setup errors, for the table's notes. */
  readonly notes: string[] = [];
  readonly #cameras: Child<WorkerCommand, WorkerEvent>;
  readonly #viewers: Child<ViewerCommand, ViewerEvent>;
  readonly #ids: string[];
  #url = '';
  #secrets: Record<string, string> = {};
  #added = 0;
  #failed = 0;
  #baselineUsPerReceived = 0;

  private constructor(options: RelayLoadOptions, clip: Clip) {
    this.options = options;
    this.clip = clip;
    const workers = options.mediaWorkers ?? 1;
    const config = { ...(JSON.parse(process.env.BENCH_BRIDGE_CONFIG ?? '{}') as object), ...options.bridgeConfig, mediaWorkers: workers };
    this.bridge = new Child<TargetCommand, TargetEvent>(new URL('./target.ts', import.meta.url), {
      env: { ...process.env, BENCH_TARGET: 'bridge', BENCH_BRIDGE_CONFIG: JSON.stringify(config) },
      // V8 flags for the bridge alone, e.g. --trace-gc (printed by V8 for every isolate, media workers included)
      execArgv: process.env.BENCH_BRIDGE_EXEC_ARGV?.split(' ').filter(Boolean),
    });
    const nice = options.generatorNice ?? 0;
    this.#cameras = new Child<WorkerCommand, WorkerEvent>(new URL('./camera-worker.ts', import.meta.url), { nice });
    this.#viewers = new Child<ViewerCommand, ViewerEvent>(new URL('./viewer-worker.ts', import.meta.url), { nice });
    this.bridgeCores = workers === 1 ? 1 : Math.min(workers + 1, availableParallelism());
    this.#ids = Array.from({ length: options.identities }, (_, i) => `bench-viewer-${i}`);
    this.deviceIds = Array.from({ length: options.streams }, (_, i) => `bench-relay-cam-${i}`);
  }

  /** The bridge, its viewer identities and every camera connected (streaming unless `paused`). */
  static async start(options: RelayLoadOptions): Promise<RelayLoad> {
    const load = new RelayLoad(options, await makeClip(1000, options.clipFrames));
    try {
      await load.#connect();
      return load;
    } catch (err) {
      await load.close();
      throw err;
    }
  }

  /** The bridge's MQTT URL. */
  get url(): string {
    return this.#url;
  }

  async #connect(): Promise<void> {
    const trace = this.options.trace ?? (() => {});
    trace('clip ready');
    const { port } = await this.bridge.next('ready', 60_000);
    trace('bridge ready');
    this.#url = `mqtt://127.0.0.1:${port}`;
    this.bridge.send({ cmd: 'addViewers', ids: [...this.#ids, ...(this.options.extraIdentities ?? [])] });
    this.#secrets = (await this.bridge.next('viewers', 120_000)).secrets;
    const cameras = this.#cameras;
    cameras.send({ cmd: 'prepare', n: this.options.streams, path: 'mqtt', url: this.#url, root: 'tali', ids: this.deviceIds, clip: this.clip.path });
    await cameras.next('ready', 60_000);
    if (this.options.paused) this.media(false);
    trace('cameras ready');
    let connectedCams = 0;
    const allConnected = new Promise<void>((resolve) =>
      cameras.on((e) => {
        if (e.type === 'connected' && ++connectedCams === this.options.streams) resolve();
      }),
    );
    cameras.send({ cmd: 'go' });
    await allConnected;
    trace('cameras connected');
  }

  /** Every camera streams (on) or stops sending media (off); their sessions stay up. */
  media(on: boolean): void {
    this.#cameras.send({ cmd: 'media', on });
  }

  /** The bridge's secret for a viewer identity (the load's or an extra one). */
  secret(id: string): string {
    return this.#secrets[id] as string;
  }

  async usage(): Promise<Extract<TargetEvent, { type: 'usage' }>> {
    this.bridge.send({ cmd: 'usage' });
    return this.bridge.next('usage', 10_000);
  }

  async relayStats(): Promise<RelayStats> {
    this.bridge.send({ cmd: 'relayStats' });
    return (await this.bridge.next('relayStats', 10_000)).stats;
  }

  async viewerStats(): Promise<ViewerTotals> {
    this.#viewers.send({ cmd: 'stats' });
    return (await this.#viewers.next('stats', 10_000)).totals;
  }

  /**
   * Adds viewers (spread evenly over the streams) until `total` watch. Going down, the latest ones say bye; as after
   * a knee some of the others are no longer connected at the bridge, new ones then make up for those.
   */
  async setViewers(total: number, label = `${total} viewers`): Promise<void> {
    if (total < this.#added) {
      this.#viewers.send({ cmd: 'keep', n: total });
      await this.#viewers.next('kept', 60_000);
      this.#added = Math.min(total, (await this.relayStats()).connectedViewers);
    }
    if (total > this.#added) {
      const batch = Array.from({ length: total - this.#added }, (_, k) => {
        const n = this.#added + k;
        const id = this.#ids[n % this.#ids.length] as string;
        return { id, secret: this.#secrets[id] as string, deviceId: this.deviceIds[n % this.options.streams] as string };
      });
      this.#viewers.send({ cmd: 'add', url: this.#url, root: 'tali', viewers: batch });
      const result = await this.#viewers.next('added', 600_000);
      this.options.trace?.(`viewers added: ${result.connected}`);
      this.#failed += result.failed;
      if (result.errors.length) this.notes.push(`viewer setup errors at ${label}: ${result.errors.join('; ')}`);
    }
    this.#added = total;
  }

  /**
   * One level: settle, then measure for `measureMs` (the bridge's CPU and loop delay, packets in and out, loss at
   * the viewers). The level with no viewers gives the receive cost per camera packet that "marginal" subtracts.
   */
  async measure(viewersPerStream: number, settleMs: number, measureMs: number): Promise<LevelResult> {
    return (await this.measureDuring(viewersPerStream, settleMs, () => sleep(measureMs))).level;
  }

  /** A level measured over the time `work` takes (what else runs against the bridge meanwhile). */
  async measureDuring<T>(viewersPerStream: number, settleMs: number, work: () => Promise<T>): Promise<{ level: LevelResult; result: T }> {
    await sleep(settleMs);
    const [r0, v0] = [await this.relayStats(), await this.viewerStats()];
    await this.usage(); // resets the bridge's CPU and loop-delay counters
    const result = await work();
    const u = await this.usage();
    const [r1, v1] = [await this.relayStats(), await this.viewerStats()];
    const seconds = u.wallMs / 1000;
    const forwarded = r1.forwarded - r0.forwarded;
    const received = r1.received - r0.received;
    const expected = v1.expected - v0.expected;
    const got = v1.received - v0.received;
    const cpuUs = u.cpuMs * 1000;
    if (viewersPerStream === 0) this.#baselineUsPerReceived = received > 0 ? cpuUs / received : 0;
    const baseline = this.#baselineUsPerReceived;
    const level: LevelResult = {
      viewersPerStream,
      viewers: r1.connectedViewers,
      forwardedPerSecond: forwarded / seconds,
      receivedPerSecond: received / seconds,
      bridgeCore: u.cpuMs / u.wallMs,
      cpuUsPerForwarded: forwarded > 0 ? cpuUs / forwarded : NaN,
      // Undefined when starved: under CPU contention the receive-only baseline is itself inflated.
      marginalUsPerForwarded: forwarded > 0 && cpuUs > baseline * received ? (cpuUs - baseline * received) / forwarded : NaN,
      eldP50: u.eldP50,
      eldP99: u.eldP99,
      runQueue: u.runQueueMs / u.wallMs,
      workerCore: u.mediaThreads.length ? Math.max(...u.mediaThreads.map((t) => t.cpuMs)) / u.wallMs : NaN,
      workerRunQueue: u.mediaThreads.length ? Math.max(...u.mediaThreads.map((t) => t.waitMs)) / u.wallMs : NaN,
      workerRttP50: u.workerRttP50,
      workerRttP99: u.workerRttP99,
      lossPercent: expected > 0 ? Math.max(0, (1 - got / expected) * 100) : 0,
      viewerCore: v1.cpuMs / u.wallMs,
      viewerEldP99: v1.eldP99,
      mbitOut: ((forwarded / seconds) * ((this.clip.kbps * 1000) / 8 / Math.max(1, received / seconds / this.options.streams)) * 8) / 1e6,
      failed: this.#failed,
    };
    return { level, result };
  }

  /**
   * The knee: loss ≥ 1 % at the viewers, a bridge event-loop delay median ≥ 20 ms (sustained lag, not one stall:
   * on a shared machine a single scheduling hiccup shows in p99 at any load), the bridge at ≥ 95 % of the cores it
   * may use, or viewers that failed to connect.
   */
  isKnee(level: LevelResult): boolean {
    return level.viewersPerStream > 0 && (level.lossPercent >= 1 || level.eldP50 >= 20 || level.bridgeCore >= 0.95 * this.bridgeCores || level.failed > 0);
  }

  kneeReason(knee: LevelResult | undefined): string {
    if (!knee) return 'no knee within the levels tried';
    return [
      knee.lossPercent >= 1 && `loss ${knee.lossPercent.toFixed(1)} % at the viewers`,
      knee.eldP50 >= 20 && `bridge event-loop delay p50 ${knee.eldP50.toFixed(0)} ms`,
      knee.bridgeCore >= 0.95 * this.bridgeCores && `bridge at ${(knee.bridgeCore * 100).toFixed(0)} % of a core`,
      knee.failed > 0 && `${knee.failed} viewers failed to connect`,
    ]
      .filter(Boolean)
      .join(', ');
  }

  /**
   * Viewers added level by level (0 first: receiving alone) until the knee; capacity = the level before it, or the
   * last level tried when there was none. With `confirm`, a level that looks like the knee is measured once more and
   * is the knee only if it looks so again (on a shared machine one burst of another process's work can otherwise
   * set it); `unconfirmed` counts the levels that did not.
   */
  async ramp(
    viewersPerStream: number[],
    settleMs: number,
    measureMs: number,
    confirm = false,
  ): Promise<{ levels: LevelResult[]; knee?: LevelResult; capacity?: LevelResult; unconfirmed: LevelResult[] }> {
    const levels: LevelResult[] = [];
    const unconfirmed: LevelResult[] = [];
    for (const perStream of [0, ...viewersPerStream]) {
      await this.setViewers(perStream * this.options.streams, `${perStream}/stream`);
      let level = await this.measure(perStream, settleMs, measureMs);
      if (confirm && this.isKnee(level)) {
        unconfirmed.push(level);
        level = await this.measure(perStream, settleMs, measureMs);
        if (this.isKnee(level)) unconfirmed.pop();
      }
      levels.push(level);
      if (this.isKnee(level)) return { levels, knee: level, capacity: levels.at(-2), unconfirmed };
    }
    return { levels, capacity: levels.at(-1), unconfirmed };
  }

  async close(): Promise<void> {
    this.options.trace?.('stopping');
    await this.#viewers.close();
    this.#cameras.send({ cmd: 'stop' });
    await this.#cameras.next('stopped', 30_000).catch(() => undefined);
    await this.#cameras.close();
    this.bridge.send({ cmd: 'stop' });
    await this.bridge.next('stopped', 30_000).catch(() => undefined);
    await this.bridge.close();
    await this.clip.remove();
    this.options.trace?.('stopped');
  }
}
