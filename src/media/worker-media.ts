/**
 * Media workers: camera sessions, their viewers, recordings and fleet monitors in worker threads (./worker-main.ts),
 * signaling on the main thread. A device's objects all go to one worker, chosen when the device first needs one
 * (./placement.ts: the fewest devices among the workers not clearly busier than the rest) and kept while any of them lives, so its
 * packets are received, forwarded, recorded and measured on the thread that decrypted them.
 *
 * A thread costs ~0.3 s of CPU to load tali and werift here with Node's compile cache (~0.55 s without) and ~0.1 s
 * more for werift's first use, less the ~75 ms of werift's certificate generator that no thread loads: the main thread
 * makes the one DTLS certificate all threads' peers use. With `prestart` (option mediaWorkersPrestart, the default)
 * warmUp() starts every thread and waits until each is loaded and warm: the bridge says ready after that, and its
 * first cameras wait for none of it. Without, threads start lazily with the first object placed on their slot: a
 * bridge that carries no media (a test's) runs none, and the first camera placed on a thread waits for its boot.
 *
 *   worker slot:  idle ──first placement / warmUp (prestart)──► running ──close(grace)──► closing ──exits by itself──────────────────► closed
 *                                              │                                  └─grace over: terminated ─────────►
 *                                              │                                    (what it held fails: bye "shutdown")
 *                                              └─ exits on its own ─► every handle fails (bye "error"), pending calls
 *                                                                    reject; the slot is idle again
 */
import module from 'node:module';
import { dirname, extname } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { pino, type Logger } from 'pino';
import type { CameraSession, SessionOptions } from '../answerer/session.ts';
import type { CameraWatch, Keyframe } from '../fleet/camera-monitor.ts';
import type { SessionRecorderOptions, SessionRecording } from '../recording/session-recorder.ts';
import type { MediaPlane, PacketSink } from './plane.ts';
import type { Viewer, ViewerOptions } from '../relay/viewer.ts';
import { Peer, type DtlsCertificate } from '../webrtc/peer.ts';
import { RemoteMonitor, RemoteRecording, RemoteSession, RemoteViewer, type Handle, type ObjectLink } from './remote.ts';
import type { Create, FromWorker, ToWorker, WorkerData } from './wire.ts';
import { placeDevice } from './placement.ts';

/** The worker's entry beside this module: .ts when run from the sources, .js from the built package (dist/). */
const WORKER_MAIN = new URL(`./worker-main${extname(new URL(import.meta.url).pathname)}`, import.meta.url);
/**
 * A worker thread's environment: Node enables its compile cache per thread, from NODE_COMPILE_CACHE, and
 * module.enableCompileCache() on this thread (bin/tali.js) neither sets the variable nor reaches the workers; without
 * it each thread compiles (and strips the types of) its ~300 modules again. Same directory as this thread's
 * (getCompileCacheDir() is it plus Node's version tag); none when this thread has none (tests, NODE_DISABLE_COMPILE_CACHE).
 */
function workerEnv(): NodeJS.ProcessEnv {
  const dir = module.getCompileCacheDir?.();
  if (dir === undefined || process.env.NODE_COMPILE_CACHE !== undefined) return process.env;
  return { ...process.env, NODE_COMPILE_CACHE: dirname(dir) };
}
/** A worker that has not exited this long after close() (unless the caller gives less) is terminated. */
const CLOSE_WAIT_MS = 2000;
const KINDS = ['audio', 'video'] as const;

class WorkerLink {
  readonly index: number;
  readonly worker: Worker;
  /** Event-loop utilisation over the last tick (0..1). */
  load = 0;
  /** Devices with live objects on this worker (./placement.ts). */
  devices = 0;
  /** Loaded and past werift's first use ahead of its first camera (warmUp() answered). */
  warm = false;
  readonly handles = new Map<number, Handle>();
  readonly #loggers = new Map<number, Logger>();
  readonly #calls = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  readonly #sink: PacketSink;
  readonly #released: (handle: Handle) => void;
  #nextCall = 1;
  #elu: EventLoopUtilization;
  #closing = false;
  #gone = false;
  /** When close() terminates the thread if it has not finished by then (performance.now()). */
  #endAt = Infinity;
  #endTimer: NodeJS.Timeout | undefined;
  readonly exited: Promise<void>;

  constructor(index: number, sink: PacketSink, log: Logger, nice: number, released: (handle: Handle) => void, failed: (link: WorkerLink) => void) {
    this.index = index;
    this.#sink = sink;
    this.#released = released;
    this.#loggers.set(0, log.child({ mediaWorker: index }));
    this.worker = new Worker(WORKER_MAIN, { name: `tali-media-${index}`, env: workerEnv(), workerData: { nice } satisfies WorkerData });
    // Like a timer, a media worker does not keep the process alive by itself: the bridge's sockets do. A close that
    // something upstream holds back (a peer that never finishes closing) cannot keep a stopped process running.
    this.worker.unref();
    this.#elu = this.worker.performance.eventLoopUtilization();
    this.worker.on('message', (batch: FromWorker[]) => {
      for (const message of batch) this.#receive(message);
    });
    this.worker.on('error', (err) => log.error({ mediaWorker: index, err }, 'media worker failed'));
    this.exited = new Promise((resolve) =>
      this.worker.once('exit', (code) => {
        this.#gone = true;
        clearTimeout(this.#endTimer);
        if (!this.#closing) {
          log.error({ mediaWorker: index, code }, 'media worker exited; its sessions end with bye "error"');
          failed(this);
        }
        // What the thread still held ends here: terminated while closing, its objects end as a shutdown would end them.
        const reason = this.#closing ? 'shutdown' : 'error';
        for (const handle of this.handles.values()) handle.fail(reason);
        this.handles.clear();
        const gone = new Error(`media worker ${index} exited`);
        for (const call of this.#calls.values()) call.reject(gone);
        this.#calls.clear();
        resolve();
      }),
    );
  }

  create(id: number, create: Create, handle: Handle, logger: Logger): void {
    if (this.#gone) return queueMicrotask(() => handle.fail('error'));
    this.handles.set(id, handle);
    this.#loggers.set(id, logger);
    this.#post({ t: 'create', id, level: logger.level, ...create });
  }

  objectLink(id: number): ObjectLink {
    return {
      call: (method, args) => this.#request((call) => ({ t: 'call', id, method, args, call })),
      cast: (method, args) => this.#post({ t: 'call', id, method, args }),
    };
  }

  /** Its peers' DTLS certificate from now on (posted before anything that makes a peer, where it can be). */
  useCertificate(certificate: DtlsCertificate): void {
    this.#post({ t: 'certificate', certificate });
  }

  refresh(): Promise<unknown> {
    return this.#request((call) => ({ t: 'refresh', call }));
  }

  /** Resolves once the thread has loaded and paid werift's first-use cost; rejects if it exits first. */
  warmUp(): Promise<void> {
    return this.#request((call) => ({ t: 'warm', call })).then(() => {
      this.warm = true;
      // Its boot is not load: the first tick measures from here, so the first cameras spread over the warm threads.
      this.#elu = this.worker.performance.eventLoopUtilization();
    });
  }

  /**
   * Closes what is left in the worker, which then ends by itself; one that has not exited after `graceMs` (busy or
   * stuck: it answers nothing) is terminated and its pending calls fail. A later call may only shorten the wait.
   * Resolves once the thread has exited.
   */
  close(graceMs: number): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      // Answered, the worker ends by itself (20–450 ms here): terminating it is for one that does not.
      this.#request((call) => ({ t: 'close', call })).catch(() => {});
    }
    const at = performance.now() + Math.max(0, graceMs);
    if (at < this.#endAt && !this.#gone) {
      this.#endAt = at;
      clearTimeout(this.#endTimer);
      this.#endTimer = setTimeout(() => this.#end(), Math.max(0, graceMs));
    }
    return this.exited;
  }

  #end(): void {
    clearTimeout(this.#endTimer);
    void this.worker.terminate();
  }

  #request(message: (call: number) => ToWorker): Promise<unknown> {
    // postMessage to a thread that has exited delivers nothing and throws nothing: no reply would ever come.
    if (this.#gone) return Promise.reject(new Error(`media worker ${this.index} exited`));
    const call = this.#nextCall++;
    return new Promise((resolve, reject) => {
      this.#calls.set(call, { resolve, reject });
      this.#post(message(call));
    });
  }

  #post(message: ToWorker): void {
    try {
      this.worker.postMessage(message);
    } catch {
      // The worker has exited: its handles fail (exit handler); nothing to deliver.
    }
  }

  #receive(message: FromWorker): void {
    switch (message.t) {
      case 'event':
        this.handles.get(message.id)?.receive(message.name, message.args, message.props);
        return;
      case 'released': {
        const handle = this.handles.get(message.id);
        this.handles.delete(message.id);
        this.#loggers.delete(message.id);
        if (handle === undefined) return;
        handle.released?.();
        this.#released(handle);
        return;
      }
      case 'log':
        this.#log(message.id, message.line);
        return;
      case 'reply': {
        const call = this.#calls.get(message.call);
        this.#calls.delete(message.call);
        if (message.error !== undefined) this.#loggers.get(0)?.error({ err: message.error }, 'media worker command failed');
        call?.resolve(message.value);
        return;
      }
      case 'tick': {
        for (const kind of KINDS) {
          const r = message.received[kind];
          const s = message.sent[kind];
          if (r.packets > 0) this.#sink.received(kind, r.bytes, r.packets);
          if (s.packets > 0) this.#sink.sent(kind, s.bytes, s.packets);
        }
        if (message.caughtUp > 0) this.#sink.caughtUp(message.caughtUp);
        for (const [id, props] of message.props) this.handles.get(id)?.update(props);
        const elu = this.worker.performance.eventLoopUtilization();
        this.load = this.worker.performance.eventLoopUtilization(elu, this.#elu).utilization;
        this.#elu = elu;
        return;
      }
    }
  }

  /** A worker object's pino line, written through the logger of its handle (redaction and bindings of the main thread). */
  #log(id: number, line: string): void {
    const logger = this.#loggers.get(id) ?? this.#loggers.get(0);
    if (logger === undefined) return;
    const { level, msg, ...fields } = JSON.parse(line) as { level: number; msg?: string } & Record<string, unknown>;
    const label = pino.levels.labels[level] as 'info';
    logger[label](fields, msg);
  }
}

export interface WorkerMediaOptions {
  /** Worker threads (≥ 1). */
  workers: number;
  /** warmUp() starts every thread and resolves once each is warm (else threads start with their first camera). */
  prestart?: boolean;
  sink: PacketSink;
  logger: Logger;
  /** Nice values each worker thread goes below the main thread (option mediaWorkerNice; 0 = none). */
  nice?: number;
}

export class WorkerMedia implements MediaPlane {
  readonly #options: WorkerMediaOptions;
  readonly #slots: (WorkerLink | undefined)[];
  /** Where each device's objects are, and how many are alive. */
  readonly #placed = new Map<string, { link: WorkerLink; objects: number }>();
  readonly #ids = new WeakMap<object, { id: number }>();
  #nextId = 1;
  #closing: { links: WorkerLink[]; done: Promise<void> } | undefined;
  #warm: Promise<void> | undefined;
  /** The DTLS certificate of every worker's peers, made once on this thread; undefined if it could not be made. */
  #certificate: Promise<DtlsCertificate | undefined> | undefined;
  /** Per started thread: resolves once it has been sent the certificate. */
  readonly #certified = new WeakMap<WorkerLink, Promise<void>>();

  constructor(options: WorkerMediaOptions) {
    this.#options = options;
    this.#slots = new Array<WorkerLink | undefined>(options.workers).fill(undefined);
  }

  /** Worker threads running now. */
  get threads(): number {
    return this.#slots.filter((s) => s !== undefined).length;
  }

  /** Per worker: its index, objects on it, event-loop utilisation over the last tick, whether it was warmed ahead of its cameras. */
  get workers(): { index: number; objects: number; load: number; warm: boolean }[] {
    return this.#slots.flatMap((s) => (s === undefined ? [] : [{ index: s.index, objects: s.handles.size, load: s.load, warm: s.warm }]));
  }

  /** The worker a device's objects are on, if any live. */
  workerOf(deviceId: string): number | undefined {
    return this.#placed.get(deviceId)?.link.index;
  }

  openSession(options: SessionOptions): CameraSession {
    const { logger, send, ...spec } = options;
    return this.#create(options.deviceId, logger, (link) => new RemoteSession({ ...options, send }, link), { kind: 'session', options: spec });
  }

  createViewer(options: Omit<ViewerOptions, 'onSent'>): Viewer {
    const { watch, bridgeId, connectTimeoutMs, waitTimeoutMs, owner } = options;
    return this.#create(watch.deviceId, options.logger, (link) => new RemoteViewer(options, link), {
      kind: 'viewer',
      options: { watch, bridgeId, connectTimeoutMs, waitTimeoutMs, owner: { user: owner.user, key: owner.key } },
    });
  }

  record(session: CameraSession, options: SessionRecorderOptions): SessionRecording {
    const { log, requestKeyframe, fileStarted, fileFinished, ...spec } = options;
    const target = this.#idOf(session);
    return this.#create(session.deviceId, log, (link) => new RemoteRecording(session, { requestKeyframe, fileStarted, fileFinished }, link), {
      kind: 'recording',
      session: target,
      options: spec,
    });
  }

  monitor(session: CameraSession, onKeyframe: (keyframe: Keyframe) => void): CameraWatch {
    return this.#create(session.deviceId, session.log, (link) => new RemoteMonitor(session, onKeyframe, link), { kind: 'monitor', session: this.#idOf(session) });
  }

  /**
   * With `prestart`: starts every thread and resolves once each has loaded and paid werift's first-use cost (rejects
   * if one exits meanwhile). Without: nothing, threads start with the first object placed on them. Memoized.
   */
  warmUp(): Promise<void> {
    if (this.#warm === undefined) {
      const warm = async (index: number) => {
        const link = this.#start(index);
        await this.#certified.get(link); // its warm-up peer uses it: werift makes no certificate of its own there
        await link.warmUp();
      };
      this.#warm = this.#options.prestart && !this.#closing ? Promise.all(this.#slots.map((_, i) => warm(i))).then(() => {}) : Promise.resolve();
      this.#warm.catch(() => {}); // whoever awaits it sees the error
    }
    return this.#warm;
  }

  async refresh(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s?.refresh().catch(() => {}))); // one that exited has nothing to report
  }

  /**
   * Ends every worker thread: each closes what it still holds, and is terminated if it has not done so within
   * `graceMs`. Resolves once every thread has exited. Idempotent: a later call returns the same promise, and may
   * shorten the grace (the bridge's shutdown budget running out).
   */
  close(graceMs = CLOSE_WAIT_MS): Promise<void> {
    if (this.#closing === undefined) {
      const links = this.#slots.filter((s) => s !== undefined);
      this.#slots.fill(undefined);
      this.#closing = { links, done: Promise.all(links.map((l) => l.close(graceMs))).then(() => this.#placed.clear()) };
    } else {
      for (const link of this.#closing.links) void link.close(graceMs);
    }
    return this.#closing.done;
  }

  #idOf(session: CameraSession): number {
    const known = this.#ids.get(session);
    if (known === undefined) throw new Error('this session was not made by this media plane');
    return known.id;
  }

  #create<H extends Handle>(deviceId: string, logger: Logger, make: (link: ObjectLink) => H, create: Create): H {
    if (this.#closing) {
      // Shutting down: an offer or watch that slipped in gets an object that ends at once (bye "error"), not a throw.
      const handle = make({ call: () => Promise.reject(new Error('media workers closed')), cast: () => {} });
      queueMicrotask(() => handle.fail('shutdown'));
      return handle;
    }
    const link = this.#place(deviceId);
    const id = this.#nextId++;
    const handle = make(link.objectLink(id));
    this.#ids.set(handle, { id });
    link.create(id, create, handle, logger);
    return handle;
  }

  #place(deviceId: string): WorkerLink {
    const placed = this.#placed.get(deviceId);
    if (placed !== undefined) {
      placed.objects++;
      return placed.link;
    }
    const best = placeDevice(this.#slots.map((slot) => (slot === undefined ? { load: 0, devices: 0 } : { load: slot.load, devices: slot.devices })));
    const link = this.#start(best);
    link.devices++;
    this.#placed.set(deviceId, { link, objects: 1 });
    return link;
  }

  #start(index: number): WorkerLink {
    const existing = this.#slots[index];
    if (existing !== undefined) return existing;
    const link = new WorkerLink(index, this.#options.sink, this.#options.logger, this.#options.nice ?? 0, (handle) => this.#release(handle), (failed) => this.#failed(failed));
    this.#slots[index] = link;
    this.#certified.set(link, this.#sendCertificate(link));
    return link;
  }

  /**
   * One DTLS certificate for all threads, made here while they load: a thread making its own would load werift's
   * certificate generator first (~75 ms of CPU each; see Peer.createCertificate). A peer made on a thread before its
   * certificate arrived (a lazily started thread's first camera) gets werift's own, as without this.
   */
  async #sendCertificate(link: WorkerLink): Promise<void> {
    this.#certificate ??= Peer.createCertificate().catch((err: Error) => {
      this.#options.logger.warn({ err: err.message }, 'DTLS certificate not made: each media worker makes its own');
      return undefined;
    });
    const certificate = await this.#certificate;
    if (certificate !== undefined) link.useCertificate(certificate);
  }

  #release(handle: Handle): void {
    const placed = this.#placed.get(handle.deviceId);
    if (placed === undefined) return;
    placed.objects--;
    if (placed.objects > 0) return;
    this.#placed.delete(handle.deviceId);
    placed.link.devices--;
  }

  /** A worker that died: forget it and its devices; the slot starts a new worker at its next placement. */
  #failed(link: WorkerLink): void {
    if (this.#slots[link.index] === link) this.#slots[link.index] = undefined;
    for (const [deviceId, placed] of this.#placed) if (placed.link === link) this.#placed.delete(deviceId);
  }
}
