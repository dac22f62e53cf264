/**
 * What `tali check-device` saw, in the order it saw it: the device's connection events (from the broker's $SYS
 * events), its subscriptions (Aedes' $SYS new/subscribes), every payload it published and every one the bridge sent
 * it, re-reads of retained cards, what the checker's own viewer received, and the checker's own actions. The rules
 * (./analysis.ts) are computed from this list alone; the driver (./checker.ts) waits on it.
 */
import type { DeviceConnected, DeviceDisconnected } from '../broker/connection-events.ts';
import type { MessageOnChannel, SessionMetrics, Status } from '../protocol/index.ts';

interface Stamp {
  /** ms since the check began (for the report). */
  t: number;
  /** Local wall clock, ms since the epoch (against message ts). */
  at: number;
}

/** What was observed, without its time stamps. */
export type ObservationBody =
  | { kind: 'connected'; event: DeviceConnected }
  | { kind: 'disconnected'; event: DeviceDisconnected }
  | { kind: 'subscribed'; filters: { topic: string; qos: number }[] }
  /** A payload the device published: as delivered to a QoS 1 subscription (so `qos` is the publish QoS, ≤ 1). */
  | { kind: 'published'; channel: 'status' | 'up'; qos: number; text: string; bytes: number; message: Status | MessageOnChannel<'up'> | undefined; invalid: { code: string; message: string } | undefined }
  | { kind: 'down'; message: MessageOnChannel<'down'> }
  | { kind: 'metrics'; message: SessionMetrics }
  /** A fresh subscription's view of a retained topic (the status card): its payload, or undefined for none. */
  | { kind: 'retained'; topic: string; text: string | undefined }
  | { kind: 'viewer'; event: 'connected' | 'keyframe' | 'keyframe-request' | 'closed' }
  | { kind: 'action'; action: CheckAction; result: string };

export type Observation = Stamp & ObservationBody;

export type CheckAction =
  | { type: 'disconnect' }
  | { type: 'bye'; reason: 'normal' | 'timeout' | 'ice-failed'; sessionId: string | undefined }
  | { type: 'watch' }
  | { type: 'unwatch' }
  | { type: 'wait-disconnect' };

export type ObservationKind = Observation['kind'];
export type ObservationOf<K extends ObservationKind> = Extract<Observation, { kind: K }>;

export function isKind<K extends ObservationKind>(kind: K): (o: Observation) => o is ObservationOf<K> {
  return (o): o is ObservationOf<K> => o.kind === kind;
}

/** Offers the device published, in order. */
export function offers(list: readonly Observation[]): (ObservationOf<'published'> & { message: MessageOnChannel<'up'> & { type: 'offer' } })[] {
  return list.filter(
    (o): o is ObservationOf<'published'> & { message: MessageOnChannel<'up'> & { type: 'offer' } } => o.kind === 'published' && o.message?.type === 'offer',
  );
}

/** The observations, and promises of the next one that matches (already seen from `from` on, or still to come). */
export class Timeline {
  readonly list: Observation[] = [];
  readonly #t0 = performance.now();
  readonly #waiters = new Set<() => void>();

  add(observation: ObservationBody): Observation {
    const stamped = { t: Math.round(performance.now() - this.#t0), at: Date.now(), ...observation } as Observation;
    this.list.push(stamped);
    for (const wake of [...this.#waiters]) wake();
    return stamped;
  }

  now(): number {
    return Math.round(performance.now() - this.#t0);
  }

  /** The first observation from index `from` on that matches, or undefined after `ms` (or on abort). */
  next<O extends Observation>(match: (o: Observation) => o is O, ms: number, from?: number, signal?: AbortSignal): Promise<O | undefined>;
  next(match: (o: Observation) => boolean, ms: number, from?: number, signal?: AbortSignal): Promise<Observation | undefined>;
  next(match: (o: Observation) => boolean, ms: number, from = 0, signal?: AbortSignal): Promise<Observation | undefined> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (found: Observation | undefined) => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        signal?.removeEventListener('abort', aborted);
        resolve(found);
      };
      const wake = () => {
        const found = this.list.slice(from).find(match);
        if (found) done(found);
      };
      const aborted = () => done(undefined);
      timer = setTimeout(() => done(undefined), ms);
      signal?.addEventListener('abort', aborted, { once: true });
      this.#waiters.add(wake);
      wake();
    });
  }
}

