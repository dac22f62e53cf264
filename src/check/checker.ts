/**
 * `tali check-device`: watches one real device connect and negotiate with a running bridge, makes the bridge do what
 * the protocol says a device must react to, and reports rule by rule (./rules.ts, ./analysis.ts).
 *
 *   connect ── the device (re)connects: will, keep alive, subscriptions, online card (re-read: retained?)
 *      │       (if it is connected already, the bridge is asked to drop its connection: DELETE /api/connections/{id})
 *   stream ─── its first session streams (the bridge's metrics say so)
 *   start ──── DELETE /api/sessions/{id}?reason=normal: it must wait; the checker watches it, the bridge sends start:
 *      │       it must offer at once
 *   keyframe ─ as that viewer: a PLI right after a keyframe, timed to the next keyframe (a few times)
 *   timeout ── bye "timeout", then bye "ice-failed": it must offer again, after a backoff, with a new sessionId
 *   disconnect (with waitDisconnectMs) ── someone stops the device: bye and offline card before DISCONNECT?
 *
 * Everything it observes it could observe as any admin (./observer.ts); everything it triggers an admin can trigger
 * (src/check/bridge-actions.ts, a watch). With `active: false` it only observes.
 */
import type { TlsClientOptions } from '../mqtt/streams.ts';
import { DEFAULT_MAX_AGE_MS, DEFAULT_ROOT, type BridgeStatus } from '../protocol/index.ts';
import { analyse, GATHERING_MS, type AnalysisSettings } from './analysis.ts';
import { CONNECTIONS_PATH, SESSIONS_PATH } from './bridge-actions.ts';
import { isKind, offers, Timeline, type CheckAction, type Observation, type ObservationOf } from './observations.ts';
import { Observer } from './observer.ts';
import { ProbeViewer } from './probe-viewer.ts';
import type { RuleResult } from './rules.ts';

export interface CheckOptions {
  deviceId: string;
  /** The bridge's MQTT URL (mqtt://, mqtts://, ws://, wss://). */
  url: string;
  /** The bridge's HTTP(S) base URL, for the admin actions. */
  httpUrl: string;
  user: string;
  password: string;
  root?: string | undefined;
  tls?: TlsClientOptions | undefined;
  /** false: only observe (no dropped connection, no ended sessions, no watch). Default true. */
  active?: boolean | undefined;
  /** The active steps to run, in their fixed order (default all). */
  steps?: readonly ActiveStep[] | undefined;
  /** How long to wait for the device to connect (default 60 s). */
  connectTimeoutMs?: number | undefined;
  /** From an offer to media flowing (default 20 s). */
  streamTimeoutMs?: number | undefined;
  /** A keyframe must follow a keyframe request within this (default 500 ms). */
  keyframeWithinMs?: number | undefined;
  keyframeRequests?: number | undefined;
  /** After bye timeout/ice-failed, the new offer must come within this (default 35 s: the 30 s backoff cap + slack). */
  reofferWithinMs?: number | undefined;
  /**
   * A re-offer sooner than this after bye timeout/ice-failed has no backoff (default 400 ms: §12's first retry
   * waits 0.5–1 s, less timing slack).
   */
  minBackoffMs?: number | undefined;
  /** After bye normal, how long to watch the device stay idle before watching it (default 3 s). */
  idleMs?: number | undefined;
  /** After start, the offer must come within this (default 3 s). */
  startWithinMs?: number | undefined;
  /** The bridge's maxAgeMs (default 60 s). */
  maxAgeMs?: number | undefined;
  /** After the active steps, wait this long for the device to disconnect (someone stops it); 0 skips (default). */
  waitDisconnectMs?: number | undefined;
  /** Each step as it begins, for a person watching (the CLI prints it on stderr) or a test driving the device. */
  onProgress?: ((step: CheckStep, message: string) => void) | undefined;
  signal?: AbortSignal | undefined;
}

export const ACTIVE_STEPS = ['start', 'keyframe', 'timeout', 'ice-failed'] as const;
export type ActiveStep = (typeof ACTIVE_STEPS)[number];
export type CheckStep = 'observe' | 'connect' | 'stream' | ActiveStep | 'disconnect' | 'done';

export interface CheckReport {
  deviceId: string;
  bridge: { bridgeId: string; version: string } | undefined;
  /** `incomplete`: the device never connected, so nothing could be judged. */
  verdict: 'pass' | 'fail' | 'incomplete';
  startedAt: string;
  durationMs: number;
  rules: RuleResult[];
  /** The checker's own actions and their outcomes, in order. */
  actions: { t: number; action: CheckAction; result: string }[];
  /** Everything observed, one line each: ms since the check began, then what (for --json readers and bug reports). */
  trace: string[];
}

/** Rounds of the keyframe step are this far apart: each request follows a keyframe, which answered the relay's last
 * request, so the relay forwards it at once (src/relay/keyframe-requests.ts; unless the bridge sets a keyframeIntervalMs
 * floor longer than this), and a libwebrtc camera, which drops a request within 300 ms of the last, takes it. */
const KEYFRAME_SPACING_MS = 1000;
/** A request goes this long after a keyframe, so that the keyframe in flight does not answer it. */
const AFTER_KEYFRAME_MS = 100;

export async function checkDevice(options: CheckOptions): Promise<CheckReport> {
  const startedAt = new Date();
  const root = options.root ?? DEFAULT_ROOT;
  const timeline = new Timeline();
  const login = { url: options.url, user: options.user, password: options.password, root, tls: options.tls, deviceId: options.deviceId };
  const observer = new Observer(login, timeline);
  const progress = (step: CheckStep, message: string) => options.onProgress?.(step, message);
  let bridge: BridgeStatus | undefined;
  const run = new Run(options, timeline, observer, progress);
  try {
    await observer.start();
    bridge = await observer.waitForBridge(5000);
    progress('observe', bridge ? `bridge ${bridge.bridgeId} (tali ${bridge.version}) is online` : 'no online bridge card: is the bridge running?');
    await run.steps();
  } finally {
    await run.close();
    await observer.close();
  }
  const settings: AnalysisSettings = {
    deviceId: options.deviceId,
    root,
    maxMessageBytes: bridge?.maxMessageBytes ?? 16_384,
    maxAgeMs: options.maxAgeMs ?? DEFAULT_MAX_AGE_MS,
    keyframeWithinMs: options.keyframeWithinMs ?? 500,
    reofferWithinMs: options.reofferWithinMs ?? 35_000,
    minBackoffMs: options.minBackoffMs ?? 400,
    startWithinMs: options.startWithinMs ?? 3000,
    endT: timeline.now(),
  };
  const rules = analyse(timeline.list, settings);
  const connected = timeline.list.some(isKind('connected'));
  progress('done', 'checked');
  return {
    deviceId: options.deviceId,
    bridge: bridge && { bridgeId: bridge.bridgeId, version: bridge.version },
    verdict: !connected ? 'incomplete' : rules.some((r) => r.verdict === 'fail') ? 'fail' : 'pass',
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    rules,
    actions: timeline.list.filter(isKind('action')).map((o) => ({ t: o.t, action: o.action, result: o.result })),
    trace: timeline.list.map(traceLine),
  };
}

/** One run of the steps: what the checker does, in order; the verdicts come from the timeline afterwards. */
class Run {
  readonly #options: CheckOptions;
  readonly #timeline: Timeline;
  readonly #observer: Observer;
  readonly #progress: (step: CheckStep, message: string) => void;
  #viewer: ProbeViewer | undefined;

  constructor(options: CheckOptions, timeline: Timeline, observer: Observer, progress: (step: CheckStep, message: string) => void) {
    this.#options = options;
    this.#timeline = timeline;
    this.#observer = observer;
    this.#progress = progress;
  }

  get #id(): string {
    return this.#options.deviceId;
  }

  async steps(): Promise<void> {
    const o = this.#options;
    const active = o.active ?? true;
    if (!(await this.#connect(active))) return;
    const streaming = await this.#streaming(this.#timeline.list.findLastIndex((x) => x.kind === 'connected'));
    const steps = new Set(active ? (o.steps ?? ACTIVE_STEPS) : []);
    if (streaming !== undefined && !this.#aborted) {
      if (steps.has('start')) await this.#startStep(streaming);
      if (steps.has('keyframe')) await this.#keyframeStep();
      await this.#unwatch();
      for (const reason of ['timeout', 'ice-failed'] as const) {
        const live = this.#liveSession();
        if (!steps.has(reason) || live === undefined || this.#aborted) continue;
        this.#progress(reason, `ending session ${live} with bye "${reason}": ${this.#id} should offer again after a backoff`);
        const from = this.#timeline.list.length;
        await this.#bye(reason, live);
        await this.#streaming(from, o.reofferWithinMs ?? 35_000);
      }
    }
    await this.#settle();
    if ((o.waitDisconnectMs ?? 0) > 0 && !this.#aborted) await this.#disconnectStep(o.waitDisconnectMs!);
  }

  /** Lets the newest session live long enough to judge its trickle (its end of candidates). */
  async #settle(): Promise<void> {
    const last = offers(this.#timeline.list).at(-1);
    if (last === undefined || this.#liveSession() === undefined) return;
    await delay(Math.max(0, last.t + GATHERING_MS - this.#timeline.now()), this.#options.signal);
  }

  async close(): Promise<void> {
    await this.#unwatch();
  }

  get #aborted(): boolean {
    return this.#options.signal?.aborted === true;
  }

  /** Waits for a connection of the device (dropping its current one first, when active) and its online card. */
  async #connect(active: boolean): Promise<boolean> {
    const o = this.#options;
    const initial = this.#observer.initialCard;
    const from = this.#timeline.list.length;
    if (active && initial !== undefined && /"state"\s*:\s*"online"/.test(initial)) {
      this.#progress('connect', `${this.#id} is online: asking the bridge to drop its connection, to watch it connect`);
      await this.#act({ type: 'disconnect' }, () => this.#http('DELETE', `${CONNECTIONS_PATH}${encodeURIComponent(this.#id)}`));
    }
    this.#progress('connect', `waiting for ${this.#id} to connect (power it on or start it now)`);
    const connected = await this.#timeline.next(isKind('connected'), o.connectTimeoutMs ?? 60_000, from, o.signal);
    if (connected === undefined) {
      this.#progress('connect', `${this.#id} did not connect`);
      return false;
    }
    const index = this.#timeline.list.indexOf(connected);
    const card = await this.#timeline.next(
      (x): x is ObservationOf<'published'> => x.kind === 'published' && x.channel === 'status' && /"online"/.test(x.text),
      10_000,
      index,
      o.signal,
    );
    // The analysis compares what a new subscriber gets with the cards of this connection.
    if (card) await this.#observer.readRetained(this.#observer.topics.device(this.#id, 'status'), (text) => /"online"/.test(text));
    return true;
  }

  /** The session of the first offer from `from` on, once the bridge says its media flows; undefined if not in time. */
  async #streaming(from: number, offerWithinMs = this.#options.streamTimeoutMs ?? 20_000): Promise<string | undefined> {
    const o = this.#options;
    const offer = await this.#timeline.next((x) => offers([x]).length > 0, offerWithinMs, from, o.signal);
    if (offer === undefined) return undefined;
    const sessionId = offers([offer])[0]!.message.sessionId;
    this.#progress('stream', `session ${sessionId} offered; waiting for its media`);
    const streaming = await this.#timeline.next(
      (x) => x.kind === 'metrics' && x.message.sessionId === sessionId && (x.message.state === 'streaming' || x.message.timeline.firstRtp !== undefined),
      o.streamTimeoutMs ?? 20_000,
      this.#timeline.list.indexOf(offer),
      o.signal,
    );
    return streaming ? sessionId : undefined;
  }

  /** bye "normal": the device must stay idle; a watch makes the bridge send start: it must offer at once. */
  async #startStep(live: string): Promise<void> {
    const o = this.#options;
    this.#progress('start', `ending session ${live} with bye "normal": ${this.#id} should wait for start`);
    const from = this.#timeline.list.length;
    if (!(await this.#bye('normal', live))) return;
    // Idle is judged from the timeline; an offer before any start ends the wait early.
    await this.#timeline.next((x) => offers([x]).length > 0 || (x.kind === 'down' && x.message.type === 'start'), o.idleMs ?? 3000, from, o.signal);
    this.#progress('start', `watching ${this.#id}: the bridge asks it to start`);
    const watchFrom = this.#timeline.list.length;
    await this.#watch();
    await this.#streaming(watchFrom);
  }

  async #watch(): Promise<void> {
    await this.#act({ type: 'watch' }, async () => {
      this.#viewer = new ProbeViewer(this.#login, this.#timeline);
      await this.#viewer.start();
      return 'ok';
    });
  }

  /** As the viewer: the first keyframe, then PLIs each sent just after a keyframe, timed to the next one. */
  async #keyframeStep(): Promise<void> {
    const o = this.#options;
    if (this.#viewer === undefined) {
      this.#progress('keyframe', `watching ${this.#id}`);
      await this.#watch();
    }
    const viewer = this.#viewer;
    if (viewer === undefined) return;
    const keyframe = (from: number, ms: number) => this.#timeline.next((x) => x.kind === 'viewer' && x.event === 'keyframe', ms, from, o.signal);
    this.#progress('keyframe', `waiting for the first keyframe to reach the checker's viewer`);
    if ((await keyframe(0, o.streamTimeoutMs ?? 20_000)) === undefined) return;
    const rounds = o.keyframeRequests ?? 3;
    const within = o.keyframeWithinMs ?? 500;
    for (let round = 0; round < rounds && !this.#aborted; round++) {
      await delay(KEYFRAME_SPACING_MS, o.signal);
      await keyframe(this.#timeline.list.length, 2000); // the camera's own next keyframe, if any comes soon
      await delay(AFTER_KEYFRAME_MS, o.signal);
      const from = this.#timeline.list.length;
      if (!viewer.requestKeyframe()) return;
      this.#progress('keyframe', `keyframe request ${round + 1} of ${rounds}`);
      // The verdict is computed afterwards; past this the request went unanswered, and one such is enough.
      if ((await keyframe(from, within + 1000)) === undefined) return;
    }
  }

  async #unwatch(): Promise<void> {
    const viewer = this.#viewer;
    this.#viewer = undefined;
    if (viewer) await this.#act({ type: 'unwatch' }, async () => (await viewer.stop(), 'ok'));
  }

  async #disconnectStep(ms: number): Promise<void> {
    const o = this.#options;
    const from = this.#timeline.list.length;
    this.#timeline.add({ kind: 'action', action: { type: 'wait-disconnect' }, result: 'ok' });
    this.#progress('disconnect', `stop ${this.#id} now (cleanly: it should say bye and go offline before DISCONNECT); waiting ${Math.round(ms / 1000)} s`);
    const gone = await this.#timeline.next(isKind('disconnected'), ms, from, o.signal);
    if (gone?.event.reason === 'disconnect') {
      // Its last card is retained, so the broker routes it after storing it: it may follow the event.
      await this.#timeline.next((x) => x.kind === 'published' && x.channel === 'status' && /"offline"/.test(x.text), 1000, from, o.signal);
    }
  }

  /** The device's live session: its newest offer, not ended by a bye either way. */
  #liveSession(): string | undefined {
    const list = this.#timeline.list;
    const last = offers(list).at(-1);
    if (last === undefined) return undefined;
    const id = last.message.sessionId;
    const ended = list.slice(list.indexOf(last)).some(
      (x) => (x.kind === 'down' && x.message.type === 'bye' && x.message.sessionId === id) || (x.kind === 'published' && x.message?.type === 'bye' && x.message.sessionId === id),
    );
    return ended ? undefined : id;
  }

  async #bye(reason: 'normal' | 'timeout' | 'ice-failed', sessionId: string): Promise<boolean> {
    const result = await this.#act({ type: 'bye', reason, sessionId }, () =>
      this.#http('DELETE', `${SESSIONS_PATH}${encodeURIComponent(this.#id)}?reason=${reason}`),
    );
    return result === 'ok';
  }

  get #login() {
    const o = this.#options;
    return { url: o.url, user: o.user, password: o.password, root: o.root ?? DEFAULT_ROOT, tls: o.tls, deviceId: o.deviceId };
  }

  /** Runs an action and records it with its outcome ('ok' or what went wrong). */
  async #act(action: CheckAction, run: () => Promise<string>): Promise<string> {
    let result: string;
    try {
      result = await run();
    } catch (err) {
      result = (err as Error).message;
    }
    this.#timeline.add({ kind: 'action', action, result });
    if (result !== 'ok') this.#progress('observe', `${action.type} failed: ${result}`);
    return result;
  }

  /**
   * An admin API call (Basic auth, and the header the API wants of non-browser callers that change things). A 503
   * (the bridge is busy checking other logins) is tried again after its Retry-After, a few times.
   */
  async #http(method: string, path: string): Promise<string> {
    const o = this.#options;
    let res: Response;
    for (let attempt = 0; ; attempt++) {
      res = await fetch(new URL(path, o.httpUrl), {
        method,
        headers: { authorization: `Basic ${Buffer.from(`${o.user}:${o.password}`).toString('base64')}`, 'x-tali-request': '1' },
      });
      if (res.status !== 503 || attempt >= 5) break;
      await res.body?.cancel();
      await delay(Number(res.headers.get('retry-after') ?? 1) * 1000, o.signal);
    }
    if (res.ok) return 'ok';
    const body = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
    return `HTTP ${res.status} ${body.error ?? ''} ${body.message ?? ''}`.trim();
  }
}

/** One observation as a line of the report's trace. */
function traceLine(o: Observation): string {
  const what = (() => {
    switch (o.kind) {
      case 'connected':
        return `connected (keep alive ${o.event.keepalive} s, will ${o.event.will ? `on ${o.event.will.topic}` : 'none'})`;
      case 'disconnected':
        return `disconnected: ${o.event.reason}${o.event.willPublished ? ', will published' : ''}`;
      case 'subscribed':
        return `subscribed ${o.filters.map((f) => `${f.topic} (QoS ${f.qos})`).join(', ')}`;
      case 'published':
        return `device → ${o.channel}: ${o.invalid ? `invalid (${o.invalid.code})` : summary(o.message)} [QoS ${o.qos}, ${o.bytes} B]`;
      case 'down':
        return `bridge → down: ${summary(o.message)}`;
      case 'metrics':
        return `metrics: ${o.message.sessionId} ${o.message.state}`;
      case 'retained':
        return `retained re-read: ${o.text === undefined ? 'none' : o.text.slice(0, 80)}`;
      case 'viewer':
        return `viewer: ${o.event}`;
      case 'action':
        return `action ${JSON.stringify(o.action)}: ${o.result}`;
    }
  })();
  return `${o.t} ${what}`;
}

function summary(m: { type: string; sessionId?: string; seq?: number; reason?: string; code?: string; state?: string } | undefined): string {
  if (m === undefined) return '?';
  const parts = [m.type, m.sessionId, m.seq === undefined ? undefined : `seq ${m.seq}`, m.reason, m.code, m.state];
  return parts.filter((p) => p !== undefined).join(' ');
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

