/**
 * Handles on the main thread of media objects that live in a media worker: the same surfaces as the objects
 * (CameraSession, Viewer, SessionRecording, CameraWatch), their methods sent as commands, their events and state mirrored
 * from the worker (./wire.ts). State read between events is at most one tick (1 s) old; MediaPlane.refresh() brings
 * it up to date.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { CameraSession, CameraSessionEvents, SessionOptions, SessionState } from '../answerer/session.ts';
import type { SessionStats } from '../answerer/stats.ts';
import type { CameraRates, CameraWatch, Keyframe } from '../fleet/camera-monitor.ts';
import { ProtocolError, type ErrorCode } from '../protocol/errors.ts';
import type { ByeReason, Candidate, Message, Offer } from '../protocol/messages.ts';
import { PROTOCOL_VERSION } from '../protocol/topics.ts';
import type { SessionRecorderOptions, SessionRecording } from '../recording/session-recorder.ts';
import type { FileSummary } from '../recording/matroska-writer.ts';
import type { StreamState, Viewer, ViewerEvents, ViewerOptions, ViewerState } from '../relay/viewer.ts';
import type { ViewerOwner } from '../relay/owner.ts';
import type { CodecName } from '../webrtc/codecs.ts';
import type { SelectedPair } from '../webrtc/peer.ts';
import type { MonitorProps, Props, RecordingProps, SessionProps, ViewerProps } from './wire.ts';

/** How a handle reaches its object: commands (with or without a reply) over the worker's port. */
export interface ObjectLink {
  /** Rejects when the worker exits before it replies (the handle has failed by then). */
  call(method: string, args: unknown[]): Promise<unknown>;
  cast(method: string, args: unknown[]): void;
}

/** What the worker link calls on a handle. */
export interface Handle {
  readonly deviceId: string;
  /** Its object fired `name`; `props` is its state at that moment. */
  receive(name: string, args: unknown[], props: Props): void;
  /** Its state, from a tick. */
  update(props: Props): void;
  /** The worker let the object go (closed, stopped). */
  released?(): void;
  /**
   * The worker is gone: the object with it. "error" when the thread died, "shutdown" when the bridge's close ended
   * it before the object had closed (a worker busy past the shutdown budget).
   */
  fail(reason: FailReason): void;
}

export type FailReason = Extract<ByeReason, 'error' | 'shutdown'>;

type Refusal = { code: ErrorCode; message: string; ref: { sessionId?: string; seq?: number; type?: string } } | undefined;

/**
 * What the handles of a camera session and of a viewer share: a peer in a media worker that speaks the protocol. Its
 * messages (answer, candidates, bye) come from the worker and go out from here; its events and state are mirrored;
 * when the worker is gone it ends here, with the bye it could not send itself.
 */
abstract class PeerMirror<Events extends Record<keyof Events, unknown[]>, P extends SessionProps | ViewerProps> extends EventEmitter<Events> implements Handle {
  abstract readonly deviceId: string;
  abstract readonly sessionId: string;
  abstract readonly log: Logger;
  /** Its state as of its last event or tick. */
  protected props: P;
  /** Who its messages go to, for the log line of one that could not be sent. */
  readonly #recipient: string;
  /** The last seq it sent: a bye after the worker died follows it. */
  #seq = 0;
  /** Its `closed` event was emitted (the state goes `closed` one event earlier). */
  #ended = false;

  constructor(props: P, recipient: 'device' | 'viewer') {
    super();
    this.props = props;
    this.#recipient = recipient;
  }

  protected get ended(): boolean {
    return this.#ended;
  }

  receive(name: string, args: unknown[], props: Props): void {
    if (this.#ended) return;
    if (name === 'send') return this.#forward(args[0] as Message);
    this.props = props as P;
    if (name === 'closed') this.#ended = true;
    (this as EventEmitter).emit(name, ...args);
    if (name === 'closed') this.removeAllListeners();
  }

  update(props: Props): void {
    if (!this.#ended) this.props = props as P;
  }

  fail(reason: FailReason): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.props.state !== 'closed') {
      this.#forward(bye(this.sessionId, this.#seq + 1, reason));
      this.props = this.closedProps(reason);
      (this as EventEmitter).emit('state', 'closed');
    }
    (this as EventEmitter).emit('closed', reason);
    this.removeAllListeners();
  }

  /** Hands a message of its peer to whoever it goes to (the device, the viewer's current owner). */
  protected abstract deliver(message: Message): void;

  /** Its state once it ended because its worker did. */
  protected abstract closedProps(reason: FailReason): P;

  #forward(message: Message): void {
    try {
      this.deliver(message);
      if ('seq' in message && typeof message.seq === 'number') this.#seq = message.seq;
    } catch (err) {
      this.log.warn({ err: (err as Error).message, type: message.type }, `message to the ${this.#recipient} not sent`);
    }
  }
}

export class RemoteSession extends PeerMirror<CameraSessionEvents, SessionProps> implements CameraSession {
  readonly deviceId: string;
  readonly sessionId: string;
  readonly log: Logger;
  readonly #link: ObjectLink;
  readonly #send: (message: Message) => void;

  constructor(options: Pick<SessionOptions, 'deviceId' | 'sessionId' | 'logger' | 'send'>, link: ObjectLink) {
    const stats: SessionStats = { deviceId: options.deviceId, sessionId: options.sessionId, state: 'answering', timeline: { offer: 0 }, tracks: [] };
    super({ state: 'answering', stats, codecs: [] }, 'device');
    this.deviceId = options.deviceId;
    this.sessionId = options.sessionId;
    this.log = options.logger.child({ deviceId: options.deviceId, sessionId: options.sessionId });
    this.#send = options.send;
    this.#link = link;
  }

  get state(): SessionState {
    return this.props.state;
  }

  get stats(): SessionStats {
    return this.props.stats;
  }

  get codecs(): SessionProps['codecs'] {
    return this.props.codecs;
  }

  async open(offer: Offer): Promise<ProtocolError | undefined> {
    return refusal(await this.#link.call('open', [offer]).catch(() => undefined)); // rejected: its worker is gone, the session closed
  }

  addCandidate(message: Candidate): void {
    this.#link.cast('addCandidate', [message]);
  }

  requestKeyframe(): void {
    if (this.state !== 'closed') this.#link.cast('requestKeyframe', []);
  }

  async close(reason: ByeReason, options: { notify?: boolean } = {}): Promise<void> {
    if (this.state === 'closed') return;
    await this.#link.call('close', [reason, options]).catch(() => {}); // rejected: its worker is gone, the session closed
  }

  protected deliver(message: Message): void {
    this.#send(message);
  }

  protected closedProps(reason: FailReason): SessionProps {
    return { ...this.props, state: 'closed', stats: { ...this.props.stats, state: 'closed', closeReason: reason } };
  }
}

export type RecordingCallbacks = Pick<SessionRecorderOptions, 'requestKeyframe' | 'fileStarted' | 'fileFinished'>;

export class RemoteRecording implements SessionRecording, Handle {
  readonly session: CameraSession;
  readonly #link: ObjectLink;
  readonly #callbacks: RecordingCallbacks;
  #props: RecordingProps = { currentFile: undefined, partFiles: [] };
  #stopped: Promise<void> | undefined;
  #released = false;
  #onReleased: (() => void) | undefined;

  constructor(session: CameraSession, callbacks: RecordingCallbacks, link: ObjectLink) {
    this.session = session;
    this.#callbacks = callbacks;
    this.#link = link;
  }

  get deviceId(): string {
    return this.session.deviceId;
  }

  get currentFile(): string | undefined {
    return this.#props.currentFile;
  }

  get partFiles(): string[] {
    return this.#props.partFiles;
  }

  /** Resolves once the worker has finalised the files and let the recording go. */
  stop(): Promise<void> {
    this.#stopped ??= this.#released ? Promise.resolve() : new Promise<void>((resolve) => {
      this.#onReleased = resolve;
      this.#link.cast('stop', []);
    });
    return this.#stopped;
  }

  receive(name: string, args: unknown[], props: Props): void {
    this.#props = props as RecordingProps;
    if (name === 'requestKeyframe') this.#callbacks.requestKeyframe();
    else if (name === 'fileStarted') this.#callbacks.fileStarted(args[0] as string);
    else if (name === 'fileFinished') this.#callbacks.fileFinished(args[0] as { summary?: FileSummary; error?: Error; bytes: number });
  }

  update(props: Props): void {
    this.#props = props as RecordingProps;
  }

  /** The worker let it go (stopped, or its session closed): its files are final. */
  released(): void {
    this.#released = true;
    this.#props = { currentFile: undefined, partFiles: [] };
    this.#onReleased?.();
  }

  fail(): void {
    this.released(); // a part file left behind is recovered at the next start (src/recording/recovery.ts)
  }
}

export class RemoteMonitor implements CameraWatch, Handle {
  readonly session: CameraSession;
  readonly #link: ObjectLink;
  readonly #onKeyframe: (keyframe: Keyframe) => void;
  #props: MonitorProps = { streamingSince: undefined, rates: { fps: 0, bitrate: 0 } };
  #closed = false;

  constructor(session: CameraSession, onKeyframe: (keyframe: Keyframe) => void, link: ObjectLink) {
    this.session = session;
    this.#onKeyframe = onKeyframe;
    this.#link = link;
  }

  get deviceId(): string {
    return this.session.deviceId;
  }

  get streamingSince(): number | undefined {
    return this.#props.streamingSince;
  }

  get rates(): CameraRates {
    return this.#props.rates;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#link.cast('close', []);
  }

  receive(name: string, args: unknown[], props: Props): void {
    this.#props = props as MonitorProps;
    if (name !== 'keyframe' || this.#closed) return;
    const keyframe = args[0] as Omit<Keyframe, 'data'> & { data: Uint8Array };
    // Structured clone turns the Buffer into a Uint8Array.
    this.#onKeyframe({ ...keyframe, data: Buffer.from(keyframe.data.buffer, keyframe.data.byteOffset, keyframe.data.byteLength) });
  }

  update(props: Props): void {
    this.#props = props as MonitorProps;
  }

  fail(): void {
    this.#closed = true;
    this.#props = { ...this.#props, rates: { fps: 0, bitrate: 0 } };
  }
}

/**
 * A viewer session in a media worker. Whose it is stays here (ownedBy, adopt, ownerLeft: the relay's policy, as in
 * ViewerSession); its messages come from the worker and go to its current owner. The bridge peer's options and the
 * viewer's ICE servers are made here when it is served (fresh TURN credentials) and sent along.
 */
export class RemoteViewer extends PeerMirror<ViewerEvents, ViewerProps> implements Viewer {
  readonly viewerId: string;
  readonly sessionId: string;
  readonly deviceId: string;
  readonly connection: string | undefined;
  readonly log: Logger;
  readonly #options: Omit<ViewerOptions, 'onSent'>;
  readonly #link: ObjectLink;
  #owner: ViewerOwner;
  #previousOwner: ViewerOwner | undefined;

  constructor(options: Omit<ViewerOptions, 'onSent'>, link: ObjectLink) {
    super({ state: 'waiting', selectedPair: undefined, codecs: [], packetsSent: 0, bytesSent: 0 }, 'viewer');
    this.#options = options;
    this.#link = link;
    this.#owner = options.owner;
    this.viewerId = options.owner.user;
    this.sessionId = options.watch.sessionId;
    this.deviceId = options.watch.deviceId;
    this.connection = options.watch.connection;
    this.log = options.logger.child({ viewerId: this.viewerId, sessionId: this.sessionId, deviceId: this.deviceId });
  }

  get owner(): ViewerOwner {
    return this.#owner;
  }

  get state(): ViewerState {
    return this.props.state;
  }

  get selectedPair(): SelectedPair | undefined {
    return this.props.selectedPair;
  }

  get codecs(): ViewerProps['codecs'] {
    return this.props.codecs;
  }

  get packetsSent(): number {
    return this.props.packetsSent;
  }

  get bytesSent(): number {
    return this.props.bytesSent;
  }

  ownedBy(owner: ViewerOwner): boolean {
    return owner.key === this.#owner.key || owner.key === this.#previousOwner?.key;
  }

  adopt(owner: ViewerOwner, stream: StreamState): void {
    if (this.ended || owner.key === this.#owner.key) return;
    this.log.info({ from: this.#owner.key, to: owner.key }, 'adopted by another connection');
    this.#previousOwner = this.#owner;
    this.#owner = owner;
    this.#link.cast('adopt', [{ user: owner.user, key: owner.key }, stream]);
  }

  ownerLeft(owner: ViewerOwner): void {
    if (owner.key === this.#previousOwner?.key) this.#previousOwner = undefined;
    if (owner.key === this.#owner.key) void this.close('normal', { notify: false });
  }

  async serve(codecs: readonly { kind: 'audio' | 'video'; codec: CodecName }[]): Promise<ProtocolError | undefined> {
    if (this.ended || this.state !== 'waiting') return undefined;
    const served = this.#link.call('serve', [codecs, this.#options.peer(), this.#options.iceServers?.()]);
    return refusal(await served.catch(() => undefined)); // rejected: its worker is gone, the viewer closed
  }

  sourceChanged(): void {
    if (!this.ended) this.#link.cast('sourceChanged', []);
  }

  notify(state: StreamState): void {
    if (!this.ended) this.#link.cast('notify', [state]);
  }

  addCandidate(message: Candidate): void {
    if (!this.ended) this.#link.cast('addCandidate', [message]);
  }

  async close(reason: ByeReason, options: { notify?: boolean } = {}): Promise<void> {
    if (this.ended || this.state === 'closed') return;
    await this.#link.call('close', [reason, options]).catch(() => {}); // rejected: its worker is gone, the viewer closed
  }

  protected deliver(message: Message): void {
    this.#owner.send(message);
  }

  protected closedProps(): ViewerProps {
    return { ...this.props, state: 'closed' };
  }
}

/** What a refused open or serve replies (a ProtocolError does not cross threads), back as the error. */
function refusal(reply: unknown): ProtocolError | undefined {
  const refused = reply as Refusal;
  return refused && new ProtocolError(refused.code, refused.message, refused.ref);
}

/** The bye a handle sends for its object when the worker is gone (the object could not send its own). */
function bye(sessionId: string, seq: number, reason: FailReason): Message {
  return { v: PROTOCOL_VERSION, sessionId, seq, ts: Date.now(), type: 'bye', reason } as Message;
}
