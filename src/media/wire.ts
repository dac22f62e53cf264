/**
 * What crosses between the main thread and a media worker (structured clone over the worker's port). Per packet
 * nothing crosses: per object a handful of commands and events, per second one `tick` per worker. Protocol messages
 * (answers, byes, candidates) cross as the typed objects of src/protocol, encoded once on the main thread.
 */
import type { CameraRates } from '../fleet/camera-monitor.ts';
import type { SessionOptions, SessionState } from '../answerer/session.ts';
import type { SessionStats } from '../answerer/stats.ts';
import type { SessionRecorderOptions } from '../recording/session-recorder.ts';
import type { ViewerOptions, ViewerState } from '../relay/viewer.ts';
import type { DtlsCertificate, SelectedPair } from '../webrtc/peer.ts';
import type { CodecName } from '../webrtc/codecs.ts';
import type { MediaKind } from './host.ts';

/** A camera session's options without what cannot cross (the logger, the publish callback). */
export type SessionSpec = Omit<SessionOptions, 'logger' | 'send'>;
/** A recording's options without its callbacks and logger (they become events). */
export type RecordingSpec = Pick<SessionRecorderOptions, 'dir' | 'segmentMs' | 'segmentBytes' | 'partSuffix'>;

/** A viewer's options without what cannot cross: its owner is named by user and key, its peer options come with serve. */
export type ViewerSpec = Pick<ViewerOptions, 'watch' | 'bridgeId' | 'connectTimeoutMs' | 'waitTimeoutMs'> & { owner: OwnerRef };
/** A viewer's owner as the worker knows it: what its messages go to is on the main thread. */
export type OwnerRef = { user: string; key: string };

/** What a worker gets at start (workerData). */
export interface WorkerData {
  /** Nice values its thread goes below the main thread (./thread-priority.ts); 0 = none. */
  nice: number;
}

export type Create =
  | { kind: 'viewer'; options: ViewerSpec }
  | { kind: 'session'; options: SessionSpec }
  | { kind: 'recording'; session: number; options: RecordingSpec }
  | { kind: 'monitor'; session: number };

export type ToWorker =
  | ({ t: 'create'; id: number; level: string } & Create)
  /** A method of object `id`; `call` set: the worker replies with its (awaited) result. */
  | { t: 'call'; id: number; method: string; args: unknown[]; call?: number }
  /** The DTLS certificate of every peer made from now on: the main thread's, one for all workers (no reply). */
  | { t: 'certificate'; certificate: DtlsCertificate }
  /** Pays werift's first-use cost now (a thread started ahead of its first camera), then the reply. */
  | { t: 'warm'; call: number }
  /** A tick now (counters and every object's mirrored state), then the reply. */
  | { t: 'refresh'; call: number }
  /** Closes every object still open, then replies; the main thread then terminates the worker. */
  | { t: 'close'; call: number };

export type SessionProps = { state: SessionState; stats: SessionStats; codecs: { kind: MediaKind; codec: CodecName }[] };
export type RecordingProps = { currentFile: string | undefined; partFiles: string[] };
export type MonitorProps = { streamingSince: number | undefined; rates: CameraRates };
export type ViewerProps = {
  state: ViewerState;
  selectedPair: SelectedPair | undefined;
  codecs: { kind: MediaKind; codec: CodecName }[];
  packetsSent: number;
  bytesSent: number;
};
export type Props = SessionProps | RecordingProps | MonitorProps | ViewerProps;

/** Packets and payload bytes per kind since the previous tick. */
export type Flow = Record<MediaKind, { packets: number; bytes: number }>;

/** The worker posts arrays of these, one per turn of its event loop (what one run fired arrives together). */
export type FromWorker =
  /** An object's event, with its state as it was when it fired. */
  | { t: 'event'; id: number; name: string; args: unknown[]; props: Props }
  /** The object is gone from the worker (closed, stopped): the handle lets go of it. */
  | { t: 'released'; id: number }
  /** A pino line of object `id`'s logger (the main thread writes it through that object's logger). */
  | { t: 'log'; id: number; line: string }
  | { t: 'reply'; call: number; value?: unknown; error?: string }
  /** Once a second and on refresh: packets in and out since the last tick, and every object's state. */
  | { t: 'tick'; received: Flow; sent: Flow; caughtUp: number; props: [number, Props][] };
