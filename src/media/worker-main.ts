/**
 * A media worker's entry (a worker_threads thread started by ./worker-media.ts): one MediaHost and the objects the
 * main thread asked for, driven by the commands of ./wire.ts; their events, log lines and once a second the packet
 * counters and every object's state go back. Nothing here decides policy: that stays on the main thread.
 */
import module from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import { pino, type Logger } from 'pino';
import type { Session } from '../answerer/session.ts';
import type { IceServers, Message } from '../protocol/messages.ts';
import { Peer, type PeerOptions } from '../webrtc/peer.ts';
import { checkDownSize } from '../protocol/limits.ts';
import { MediaHost } from './host.ts';
import { lowerOwnThread } from './thread-priority.ts';
import type { Create, Flow, FromWorker, OwnerRef, Props, ToWorker, WorkerData } from './wire.ts';

const port = parentPort!;
/**
 * What goes to the main thread leaves in batches, one per turn of this thread's event loop: the events of one run
 * (an answer sent, then the state and timeline it set; a bye, then the state `closed` and the release) reach the
 * main thread in one task, so nothing there (a device or viewer reading the message just sent) sees half of them.
 */
let batch: FromWorker[] = [];
function flush(): void {
  if (batch.length === 0) return;
  const out = batch;
  batch = [];
  port.postMessage(out);
}
const post = (message: FromWorker): void => {
  if (batch.push(message) === 1) setImmediate(flush);
};

const TICK_MS = 1000;
const emptyFlow = (): Flow => ({ audio: { packets: 0, bytes: 0 }, video: { packets: 0, bytes: 0 } });
let received = emptyFlow();
let sent = emptyFlow();
let caughtUp = 0;
const host = new MediaHost(
  {
    received: (kind, bytes) => {
      received[kind].packets++;
      received[kind].bytes += bytes;
    },
    sent: (kind, bytes) => {
      sent[kind].packets++;
      sent[kind].bytes += bytes;
    },
    caughtUp: (sends) => (caughtUp += sends),
  },
  // What this pass made (an answer to a command that came in with the packets) leaves before their fan-out.
  { beforeForward: flush },
);

interface Hosted {
  props(): Props;
  call(method: string, args: unknown[]): unknown;
}
const objects = new Map<number, Hosted>();
const sessions = new Map<number, Session>();

/** Object `id`'s logger: its lines go to the main thread, which writes them through that object's own logger. */
function loggerFor(id: number, level: string): Logger {
  return pino({ level, base: undefined, timestamp: false }, { write: (line: string) => post({ t: 'log', id, line }) });
}

/** Object 0: the worker itself (the main thread writes its lines through the plane's logger). */
const workerLog = loggerFor(0, 'info');

// Before any media object exists (mediaWorkerNice > 0): from here on, this thread yields the CPUs to the main thread.
const { nice } = workerData as WorkerData;
const priority = lowerOwnThread(nice);
if (!priority.ok) workerLog.warn({ nice, reason: priority.reason }, 'media worker runs at the process priority (mediaWorkerNice not applied)');
else if (nice > 0) workerLog.debug({ tid: priority.tid, nice: priority.nice }, 'media worker priority lowered');

function release(id: number): void {
  if (objects.delete(id)) post({ t: 'released', id });
  sessions.delete(id);
}

const INITIAL: Record<Create['kind'], Props> = {
  session: { state: 'answering', stats: { deviceId: '', sessionId: '', state: 'answering', timeline: { offer: 0 }, tracks: [] }, codecs: [] },
  recording: { currentFile: undefined, partFiles: [] },
  monitor: { streamingSince: undefined, rates: { fps: 0, bitrate: 0 } },
  viewer: { state: 'waiting', selectedPair: undefined, codecs: [], packetsSent: 0, bytesSent: 0 },
};

function host1(id: number, level: string, spec: Create): void {
  // An object may fire during its constructor (a recording asks for a keyframe at once): its state is the initial one.
  const event = (name: string, ...args: unknown[]) => post({ t: 'event', id, name, args, props: hosted?.props() ?? INITIAL[spec.kind] });
  let hosted: Hosted | undefined;
  if (spec.kind === 'session') {
    const session = host.openSession({
      ...spec.options,
      logger: loggerFor(id, level),
      // The devices' size rule is checked here, where the session can still trickle what does not fit (RangeError);
      // the main thread encodes it with encodeForDevice (JSON.stringify, as here).
      send: (message: Message) => {
        checkDownSize(message.type, JSON.stringify(message));
        event('send', message);
      },
    });
    hosted = {
      props: () => ({ state: session.state, stats: session.stats, codecs: session.codecs }),
      call: async (method, args) => {
        if (method === 'open') {
          const refused = await session.open(args[0] as never);
          return refused && { code: refused.code, message: refused.message, ref: { sessionId: refused.sessionId, seq: refused.seq, type: refused.type } };
        }
        if (method === 'addCandidate') return session.addCandidate(args[0] as never);
        if (method === 'requestKeyframe') return session.requestKeyframe();
        if (method === 'close') return session.close(args[0] as never, args[1] as never);
        throw new Error(`session has no ${method}`);
      },
    };
    session.on('state', (state) => event('state', state));
    session.on('track', (track) => event('track', track));
    session.on('keyframe', (track) => event('keyframe', track));
    session.once('closed', (reason) => {
      event('closed', reason);
      release(id);
    });
    sessions.set(id, session);
  } else if (spec.kind === 'viewer') {
    const send = (message: Message) => event('send', message);
    // Set by each serve: the bridge peer's options and the viewer's ICE servers, made on the main thread just then.
    let peer: PeerOptions = { iceServers: [] };
    let ice: IceServers | undefined;
    const viewer = host.createViewer({
      ...spec.options,
      owner: { ...spec.options.owner, send },
      peer: () => peer,
      iceServers: () => ice,
      logger: loggerFor(id, level),
    });
    hosted = {
      props: () => ({ state: viewer.state, selectedPair: viewer.selectedPair, codecs: viewer.codecs, packetsSent: viewer.packetsSent, bytesSent: viewer.bytesSent }),
      call: async (method, args) => {
        if (method === 'serve') {
          [, peer, ice] = args as [unknown, PeerOptions, IceServers | undefined];
          const refused = await viewer.serve(args[0] as never);
          return refused && { code: refused.code, message: refused.message, ref: { sessionId: refused.sessionId, seq: refused.seq, type: refused.type } };
        }
        if (method === 'adopt') return viewer.adopt({ ...(args[0] as OwnerRef), send }, args[1] as never);
        if (method === 'sourceChanged') return viewer.sourceChanged();
        if (method === 'notify') return viewer.notify(args[0] as never);
        if (method === 'addCandidate') return viewer.addCandidate(args[0] as never);
        if (method === 'close') return viewer.close(args[0] as never, args[1] as never);
        throw new Error(`viewer has no ${method}`);
      },
    };
    viewer.on('state', (state) => event('state', state));
    viewer.on('keyframeRequest', () => event('keyframeRequest'));
    viewer.once('closed', (reason) => {
      event('closed', reason);
      release(id);
    });
  } else if (spec.kind === 'recording') {
    const session = sessions.get(spec.session);
    if (session === undefined) return post({ t: 'released', id }); // its session closed meanwhile: nothing to record
    const recorder = host.record(session, {
      ...spec.options,
      log: loggerFor(id, level),
      requestKeyframe: () => event('requestKeyframe'),
      fileStarted: (path) => event('fileStarted', path),
      fileFinished: (result) => event('fileFinished', result),
    });
    let stopping: Promise<void> | undefined;
    const stop = () => (stopping ??= recorder.stop().finally(() => release(id)));
    session.once('closed', () => void stop());
    hosted = {
      props: () => ({ currentFile: recorder.currentFile, partFiles: recorder.partFiles }),
      call: (method) => {
        if (method === 'stop') return stop();
        throw new Error(`recording has no ${method}`);
      },
    };
  } else {
    const session = sessions.get(spec.session);
    if (session === undefined) return post({ t: 'released', id });
    // Copied, not transferred: a keyframe's bytes may share a pooled ArrayBuffer; one keyframe every few seconds.
    const monitor = host.monitor(session, (keyframe) => event('keyframe', keyframe));
    const close = () => {
      monitor.close();
      release(id);
    };
    session.once('closed', close);
    hosted = {
      props: () => ({ streamingSince: monitor.streamingSince, rates: monitor.rates }),
      call: (method) => {
        if (method === 'close') return close();
        throw new Error(`monitor has no ${method}`);
      },
    };
  }
  objects.set(id, hosted!);
}

function tick(): void {
  const props: [number, Props][] = [...objects].map(([id, o]) => [id, o.props()]);
  post({ t: 'tick', received, sent, caughtUp, props });
  received = emptyFlow();
  sent = emptyFlow();
  caughtUp = 0;
}
const ticker = setInterval(tick, TICK_MS);

async function reply(call: number, run: () => unknown): Promise<void> {
  try {
    post({ t: 'reply', call, value: await run() });
  } catch (err) {
    post({ t: 'reply', call, error: (err as Error).message });
  }
}

port.on('message', (message: ToWorker) => {
  switch (message.t) {
    case 'create':
      host1(message.id, message.level, message);
      return;
    case 'call': {
      const target = objects.get(message.id);
      // An object already gone answers nothing, as a closed Session does.
      const run = () => target?.call(message.method, message.args);
      if (message.call === undefined) void Promise.resolve().then(run).catch((err: Error) => workerLog.error({ err, method: message.method }, 'media worker call failed'));
      else void reply(message.call, run);
      return;
    }
    case 'certificate':
      Peer.useCertificate(message.certificate);
      return;
    case 'warm':
      void reply(message.call, async () => {
        await Peer.warmUp();
        // This thread's compile cache (./worker-media.ts) is otherwise written when the thread exits, which a killed
        // bridge never reaches. Written once, before any camera: later starts find nothing new (~1 ms).
        module.flushCompileCache?.();
      });
      return;
    case 'refresh':
      void reply(message.call, tick);
      return;
    case 'close':
      void reply(message.call, async () => {
        clearInterval(ticker);
        await host.close();
        tick();
      }).then(() => {
        flush();
        // Nothing more to receive: the thread ends by itself once its last socket, timer and crypto job have (the main
        // thread terminates it only if that takes too long: terminating while werift's key generation is in flight
        // aborts the whole process, Node 24 KeyGenJob::ToResult `try_catch.CanContinue()`).
        port.unref();
      });
      return;
  }
});
