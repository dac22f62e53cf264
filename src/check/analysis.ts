/**
 * The verdict on each rule (./rules.ts), computed from the observations alone (./observations.ts): a pure function,
 * so a test can feed it a timeline and the report says exactly what it saw. Every violation names the moment
 * (ms since the check began) and the message.
 */
import { decode, ERROR_CODES, isErrorCode, MAX_CANDIDATE_CHARS, MAX_SDP_CHARS, Topics, type MessageOnChannel } from '../protocol/index.ts';
import { isKind, offers, type Observation, type ObservationOf } from './observations.ts';
import { RULES, type RuleId, type RuleResult } from './rules.ts';

export interface AnalysisSettings {
  deviceId: string;
  root: string;
  /** From the bridge card. */
  maxMessageBytes: number;
  /** The bridge's accepted clock difference (its maxAgeMs option). */
  maxAgeMs: number;
  keyframeWithinMs: number;
  reofferWithinMs: number;
  /** A re-offer sooner than this after a bye that asks for a backoff has none (§12: 500 ms at least, less timing slack). */
  minBackoffMs: number;
  startWithinMs: number;
  /** When the check ended (ms since it began): a session still live then lived until then. */
  endT: number;
}

/** A session of the device needs its end of candidates once it has lived this long (werift sends it in ms). */
export const GATHERING_MS = 2000;
/** 64 random bits need at least 11 characters of a 64-character alphabet. */
const MIN_SESSION_ID_CHARS = 11;

type UpMessage = MessageOnChannel<'up'>;
type Published = ObservationOf<'published'>;

class Findings {
  readonly #results = new Map<RuleId, { fails: string[]; passes: string[]; skips: string[] }>();

  constructor() {
    for (const id of Object.keys(RULES) as RuleId[]) this.#results.set(id, { fails: [], passes: [], skips: [] });
  }

  fail(id: RuleId, detail: string): void {
    this.#results.get(id)!.fails.push(detail);
  }

  pass(id: RuleId, detail: string): void {
    this.#results.get(id)!.passes.push(detail);
  }

  skip(id: RuleId, why: string): void {
    this.#results.get(id)!.skips.push(why);
  }

  results(): RuleResult[] {
    return [...this.#results].map(([id, r]) => {
      const verdict = r.fails.length > 0 ? 'fail' : r.passes.length > 0 ? 'pass' : 'skip';
      const details = verdict === 'fail' ? r.fails : verdict === 'pass' ? [...r.passes, ...r.skips] : r.skips;
      return { id, section: RULES[id].section, title: RULES[id].title, verdict, details: details.length > 0 ? details : ['not observed'] };
    });
  }
}

export function analyse(list: readonly Observation[], settings: AnalysisSettings): RuleResult[] {
  const f = new Findings();
  const topics = new Topics(settings.root);
  const context = { list, settings, topics, f };
  checkConnections(context);
  checkPayloads(context);
  checkClock(context);
  checkSessions(context);
  checkKeyframes(context);
  checkReoffers(context, 'timeout', 'reoffer.timeout');
  checkReoffers(context, 'ice-failed', 'reoffer.ice-failed');
  checkStart(context);
  checkCleanDisconnect(context);
  return f.results();
}

interface Context {
  list: readonly Observation[];
  settings: AnalysisSettings;
  topics: Topics;
  f: Findings;
}

const at = (o: Observation) => `at ${(o.t / 1000).toFixed(1)} s`;

/** Each connection: from its `connected` to the next one (its `disconnected` and late retained cards included). */
function connections(list: readonly Observation[]): { start: number; end: number; connected: ObservationOf<'connected'> }[] {
  const starts = list.flatMap((o, i) => (o.kind === 'connected' ? [i] : []));
  return starts.map((start, k) => ({ start, end: starts[k + 1] ?? list.length, connected: list[start] as ObservationOf<'connected'> }));
}

function checkConnections({ list, settings, topics, f }: Context): void {
  const segments = connections(list);
  const noConnect = 'the device did not connect during the check';
  for (const id of ['connect.will', 'connect.keepalive', 'connect.subscribe-first', 'connect.card'] as const) if (segments.length === 0) f.skip(id, noConnect);
  const status = topics.device(settings.deviceId, 'status');
  const wanted = [topics.device(settings.deviceId, 'down'), topics.allBridges()];
  for (const { start, end, connected } of segments) {
    const { will, keepalive } = connected.event;
    const when = `connection ${at(connected)}`;
    // Will (MQTT-3.1.2-8 carries it; protocol §3 says what it must be).
    if (will === null) f.fail('connect.will', `${when}: no last will; the bridge and viewers would never learn the device went away`);
    else {
      const problems: string[] = [];
      if (will.topic !== status) problems.push(`topic ${will.topic}, not ${status}`);
      if (will.qos !== 1) problems.push(`QoS ${will.qos}, not 1`);
      if (!will.retain) problems.push('not retained');
      try {
        const card = decode('status', will.payload);
        if (card.state !== 'offline') problems.push(`its card says "${card.state}", not "offline"`);
      } catch (err) {
        problems.push(`its payload is not a status card (${(err as Error).message})`);
      }
      if (problems.length > 0) f.fail('connect.will', `${when}: will ${problems.join('; ')}`);
      else f.pass('connect.will', `${when}: will = offline card on ${status}, QoS 1, retained`);
    }
    if (keepalive < 1 || keepalive > 60) f.fail('connect.keepalive', `${when}: keep alive ${keepalive} s${keepalive === 0 ? ' (off: a dead device is never noticed)' : ''}`);
    else f.pass('connect.keepalive', `${when}: keep alive ${keepalive} s`);

    const segment = list.slice(start, end);
    const firstPublish = segment.find((o): o is Published => o.kind === 'published');
    const subscribed = new Map<string, number>();
    for (const o of segment) {
      if (o === firstPublish) break;
      if (o.kind === 'subscribed') for (const filter of o.filters) subscribed.set(filter.topic, filter.qos);
    }
    const missing = wanted.filter((filter) => !subscribed.has(filter));
    const qos0 = wanted.filter((filter) => subscribed.get(filter) === 0);
    if (missing.length > 0) {
      const everSubscribed = new Set(segment.filter(isKind('subscribed')).flatMap((o) => o.filters.map((x) => x.topic)));
      const what = firstPublish ? `its first publish (${describe(firstPublish)} ${at(firstPublish)}) came before it subscribed to` : 'it never subscribed to';
      f.fail('connect.subscribe-first', `${when}: ${what} ${missing.join(' and ')}${missing.some((m) => !everSubscribed.has(m)) && firstPublish ? ' (or never did)' : ''}`);
    } else if (qos0.length > 0) f.fail('connect.subscribe-first', `${when}: subscribed to ${qos0.join(' and ')} at QoS 0, not 1`);
    else f.pass('connect.subscribe-first', `${when}: subscribed to ${wanted.join(' and ')} at QoS ${[...new Set(wanted.map((w) => subscribed.get(w)))].join('/')} before publishing`);

    const card = segment.find((o): o is Published => o.kind === 'published' && o.channel === 'status' && (o.message as { state?: string } | undefined)?.state === 'online');
    const firstOffer = offers(segment)[0];
    if (card === undefined) {
      f.fail('connect.card', `${when}: no online status card${firstOffer ? ` (it offered ${at(firstOffer)} anyway)` : ''}`);
      continue;
    }
    const problems: string[] = [];
    if (card.qos !== 1) problems.push(`published at QoS ${card.qos}, not 1`);
    if (firstOffer !== undefined && firstOffer.t < card.t) problems.push(`its first offer (${at(firstOffer)}) came before the card`);
    const reread = list.slice(list.indexOf(card)).find((o): o is ObservationOf<'retained'> => o.kind === 'retained' && o.topic === status);
    const cards = new Set(segment.filter((o) => o.kind === 'published' && o.channel === 'status').map((o) => (o as Published).text));
    if (reread !== undefined && (reread.text === undefined || !cards.has(reread.text))) {
      problems.push(`not retained: a new subscriber got ${reread.text === undefined ? 'no card' : 'another card'} (§3: retain 1)`);
    }
    if (problems.length > 0) f.fail('connect.card', `${when}: online card ${at(card)} ${problems.join('; ')}`);
    else f.pass('connect.card', `${when}: online card ${at(card)}, QoS 1${reread ? ', retained (a new subscriber got it)' : ''}`);
  }
}

function describe(o: Published): string {
  if (o.channel === 'status') return `status card "${(o.message as { state?: string } | undefined)?.state ?? '?'}"`;
  const m = o.message as UpMessage | undefined;
  return m ? `${m.type}${'seq' in m && m.seq !== undefined ? ` seq ${m.seq}` : ''}` : 'an invalid payload';
}

function checkPayloads({ list, settings, f }: Context): void {
  const published = list.filter(isKind('published'));
  let largest = 0;
  for (const o of published) {
    largest = Math.max(largest, o.bytes);
    if (o.bytes > settings.maxMessageBytes) f.fail('limits.size', `${at(o)}: a ${o.bytes}-byte payload on ${o.channel}; the bridge card allows ${settings.maxMessageBytes}`);
    const raw = parseJson(o.text) as { candidate?: unknown; sdp?: unknown } | undefined;
    if (typeof raw?.candidate === 'string' && raw.candidate.length > MAX_CANDIDATE_CHARS) f.fail('limits.size', `${at(o)}: a ${raw.candidate.length}-character candidate (limit ${MAX_CANDIDATE_CHARS})`);
    if (typeof raw?.sdp === 'string' && raw.sdp.length > MAX_SDP_CHARS) f.fail('limits.size', `${at(o)}: a ${raw.sdp.length}-character SDP (limit ${MAX_SDP_CHARS})`);
    if (o.invalid && o.invalid.code !== 'TALI_ERR_PAYLOAD_TOO_LARGE') f.fail('messages.valid', `${at(o)} on ${o.channel}: ${o.invalid.code}: ${o.invalid.message}`);
    if (o.channel === 'up' && o.qos !== 1) f.fail('messages.valid', `${at(o)}: ${describe(o)} published at QoS ${o.qos}; signaling is QoS 1 (§2)`);
  }
  for (const o of list.filter(isKind('down'))) {
    const m = o.message;
    if (m.type !== 'error' || !isErrorCode(m.code)) continue;
    const about = `${m.ref?.type ?? 'a message'}${m.ref?.seq !== undefined ? ` seq ${m.ref.seq}` : ''}`;
    if (m.code === 'TALI_ERR_PAYLOAD_TOO_LARGE') f.fail('limits.size', `${at(o)}: the bridge refused ${about}: ${m.message}`);
    // A clock error is the clock rule's; a session the bridge no longer knows and the bridge's own trouble are not
    // the device's doing; anything else the bridge refused is.
    else if (m.code !== 'TALI_ERR_STALE' && m.code !== 'TALI_ERR_UNKNOWN_SESSION' && (ERROR_CODES[m.code].retry !== 'later' || m.code === 'TALI_ERR_RATE_LIMITED')) {
      f.fail('messages.valid', `${at(o)}: the bridge refused ${about}: ${m.code}: ${m.message}`);
    }
  }
  // A publish the access rules deny closes the connection (MQTT 3.1.1 has no negative PUBACK).
  for (const [i, o] of list.entries()) {
    if (o.kind !== 'disconnected' || o.event.reason !== 'closed-by-bridge') continue;
    const since = list.slice(0, i).findLastIndex((x) => x.kind === 'connected');
    const asked = list.slice(Math.max(0, since), i).some((x) => x.kind === 'action' && x.action.type === 'disconnect');
    if (!asked) f.fail('messages.valid', `${at(o)}: the bridge closed the connection: a publish its access rules deny (another topic, a wrong root, or retain on up)`);
  }
  if (published.length === 0) {
    f.skip('messages.valid', 'the device published nothing');
    f.skip('limits.size', 'the device published nothing');
    return;
  }
  f.pass('messages.valid', `${published.length} payloads, each valid for its topic`);
  f.pass('limits.size', `largest payload ${largest} bytes (limit ${settings.maxMessageBytes})`);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function checkClock({ list, settings, f }: Context): void {
  // The bridge stamps what it sends with its clock: its offset from ours, from the freshest evidence.
  const down = list.filter(isKind('down'));
  const offsets = down.map((o) => o.message.ts - o.at).sort((a, b) => a - b);
  const offset = offsets[Math.floor(offsets.length / 2)] ?? 0;
  const stamped = list.filter((o): o is Published & { message: UpMessage } => o.kind === 'published' && o.channel === 'up' && o.message !== undefined);
  if (stamped.length === 0) return f.skip('clock.window', 'the device sent no signaling');
  const late = stamped.filter((o) => Math.abs(o.message.ts - (o.at + offset)) > settings.maxAgeMs);
  const lastLate = late.at(-1);
  if (lastLate === undefined) {
    const worst = Math.max(...stamped.map((o) => Math.abs(o.message.ts - (o.at + offset))));
    return f.pass('clock.window', `every ts within ${Math.round(worst)} ms of the bridge clock (window ${settings.maxAgeMs} ms)`);
  }
  const skew = Math.round((lastLate.message.ts - (lastLate.at + offset)) / 1000);
  // §9: a device without a clock corrects itself from the bridge's TALI_ERR_STALE and offers again.
  const corrected = offers(list.slice(list.indexOf(lastLate) + 1)).find((o) => Math.abs(o.message.ts - (o.at + offset)) <= settings.maxAgeMs);
  if (corrected) f.pass('clock.window', `${late.length} message(s) off the bridge clock (${skew} s), corrected ${at(corrected)} after TALI_ERR_STALE`);
  else f.fail('clock.window', `${late.length} message(s) off the bridge clock, the last ${at(lastLate)} by ${skew} s (window ${settings.maxAgeMs / 1000} s), never corrected`);
}

interface SessionBook {
  id: string;
  offer: Published & { message: UpMessage & { type: 'offer' } };
  /** The device's messages of this session after the offer, in order. */
  messages: (Published & { message: UpMessage })[];
  /** Until the session ended: a bye either way, the device's error, its next offer, or its connection. */
  endT: number;
}

function checkSessions({ list, settings, f }: Context): void {
  const all = offers(list);
  if (all.length === 0) {
    for (const id of ['session.id', 'session.seq', 'trickle.candidates'] as const) f.skip(id, 'the device made no offer');
    return;
  }
  // session.id
  const seen = new Set<string>();
  let previous: string | undefined;
  for (const o of all) {
    const id = o.message.sessionId;
    if (seen.has(id)) f.fail('session.id', `${at(o)}: offer reuses sessionId ${id}`);
    if (id.length < MIN_SESSION_ID_CHARS) f.fail('session.id', `${at(o)}: sessionId ${id} has ${id.length} characters: room for fewer than 64 random bits`);
    if (/^\d+$/.test(id) || (previous !== undefined && isCounterStep(previous, id))) f.fail('session.id', `${at(o)}: sessionId ${id} after ${previous ?? 'none'} looks like a counter, not random`);
    seen.add(id);
    previous = id;
  }
  f.pass('session.id', `${all.length} offers, ${seen.size} distinct sessionIds of ${Math.min(...all.map((o) => o.message.sessionId.length))}+ characters`);

  const books = sessionBooks(list, all, settings.endT);
  for (const book of books) {
    checkSeq(book, f);
    checkTrickle(book, f);
  }
  // Candidates for a session never offered (before the check, or never).
  const offered = new Set(all.map((o) => o.message.sessionId));
  for (const o of list) {
    if (o.kind !== 'published' || o.message?.type !== 'candidate' || offered.has(o.message.sessionId)) continue;
    const later = all.find((x) => x.message.sessionId === (o.message as UpMessage & { sessionId: string }).sessionId);
    if (later) f.fail('trickle.candidates', `${at(o)}: candidate seq ${o.message.seq} of ${o.message.sessionId} before its offer (${at(later)})`);
  }
}

function isCounterStep(a: string, b: string): boolean {
  const ma = /^(.*?)(\d+)$/.exec(a);
  const mb = /^(.*?)(\d+)$/.exec(b);
  return ma !== null && mb !== null && ma[1] === mb[1] && Number(mb[2]) - Number(ma[2]) === 1;
}

function sessionBooks(list: readonly Observation[], all: ReturnType<typeof offers>, endT: number): SessionBook[] {
  return all.map((offer, k) => {
    const id = offer.message.sessionId;
    const from = list.indexOf(offer);
    const messages: SessionBook['messages'] = [];
    let end = endT;
    for (const o of list.slice(from + 1)) {
      if (o.kind === 'published' && o.message !== undefined && 'sessionId' in o.message && o.message.sessionId === id && o.message.type !== 'offer') {
        messages.push(o as Published & { message: UpMessage });
        if (o.message.type === 'bye' || o.message.type === 'error') end = Math.min(end, o.t);
      }
      const ended =
        (o.kind === 'down' && o.message.type === 'bye' && o.message.sessionId === id) ||
        o.kind === 'disconnected' ||
        (o === all[k + 1]);
      if (ended) end = Math.min(end, o.t);
    }
    return { id, offer, messages, endT: end };
  });
}

function checkSeq(book: SessionBook, f: Findings): void {
  const { offer } = book;
  if (offer.message.seq !== 1) f.fail('session.seq', `${at(offer)}: offer of ${book.id} has seq ${offer.message.seq}, not 1`);
  const bySeq = new Map<number, string>([[offer.message.seq, offer.text]]);
  let max = offer.message.seq;
  let ok = true;
  for (const o of book.messages) {
    const seq = (o.message as { seq?: number }).seq;
    if (seq === undefined) continue; // an error need not number itself
    const earlier = bySeq.get(seq);
    if (earlier !== undefined) {
      // QoS 1 may deliver a message twice (§8): the same seq must mean the same message.
      if (earlier !== o.text) (f.fail('session.seq', `${at(o)}: ${book.id} seq ${seq} used again for another ${o.message.type}`), (ok = false));
      continue;
    }
    if (seq !== max + 1) (f.fail('session.seq', `${at(o)}: ${book.id} ${o.message.type} has seq ${seq} after ${max}`), (ok = false));
    bySeq.set(seq, o.text);
    max = Math.max(max, seq);
  }
  if (ok && offer.message.seq === 1) f.pass('session.seq', `${book.id}: seq 1…${max} in order`);
}

function checkTrickle(book: SessionBook, f: Findings): void {
  const candidates = book.messages.filter((o) => o.message.type === 'candidate');
  const ends = candidates.filter((o) => (o.message as { endOfCandidates?: boolean }).endOfCandidates === true);
  const real = candidates.filter((o) => (o.message as { candidate?: string }).candidate !== undefined);
  const inSdp = /\r?\na=candidate:/.test(book.offer.message.sdp);
  const lived = book.endT - book.offer.t >= GATHERING_MS;
  const problems: string[] = [];
  if (!inSdp && real.length === 0 && lived) problems.push('no candidate at all, in the offer or trickled');
  if (ends.length === 0 && lived) problems.push(`no endOfCandidates in ${Math.round((book.endT - book.offer.t) / 1000)} s`);
  if (ends.length > 1) problems.push(`${ends.length} endOfCandidates`);
  const end = ends[0];
  if (end !== undefined && real.some((o) => o.t > end.t)) problems.push('candidates after endOfCandidates');
  if (problems.length > 0) f.fail('trickle.candidates', `session ${book.id} (offer ${at(book.offer)}): ${problems.join('; ')}`);
  else if (ends.length === 1) f.pass('trickle.candidates', `session ${book.id}: ${inSdp ? 'candidates in the offer' : ''}${inSdp && real.length ? ' and ' : ''}${real.length ? `${real.length} trickled` : ''}, then endOfCandidates`);
}

function checkKeyframes({ list, settings, f }: Context): void {
  const viewer = list.filter(isKind('viewer'));
  f.skip('keyframe.request', 'FIR is not checked: the bridge asks cameras for keyframes with PLI only');
  if (!viewer.some((o) => o.event === 'connected')) return f.skip('keyframe.request', 'the checker did not watch the camera');
  const keyframes = viewer.filter((o) => o.event === 'keyframe');
  if (keyframes.length === 0) {
    return f.fail('keyframe.request', 'the checker watched the camera but no keyframe reached it: the bridge asked the camera for one (PLI) when the viewer joined, and again every second');
  }
  const requests = viewer.filter((o) => o.event === 'keyframe-request');
  for (const request of requests) {
    const next = keyframes.find((k) => k.t > request.t);
    const ms = next === undefined ? undefined : next.t - request.t;
    if (ms === undefined || ms > settings.keyframeWithinMs) {
      f.fail('keyframe.request', `keyframe request ${at(request)}: ${ms === undefined ? 'no keyframe followed' : `the next keyframe came ${ms} ms later`} (limit ${settings.keyframeWithinMs} ms)`);
    } else {
      f.pass('keyframe.request', `keyframe ${ms} ms after the request ${at(request)}`);
    }
  }
}

function checkReoffers({ list, settings, f }: Context, reason: 'timeout' | 'ice-failed', id: RuleId): void {
  const actions = list.filter((o): o is ObservationOf<'action'> => o.kind === 'action' && o.action.type === 'bye' && o.action.reason === reason);
  if (actions.length === 0) return f.skip(id, `the checker did not end a session with bye "${reason}"`);
  for (const action of actions) {
    const ended = action.action.type === 'bye' ? action.action.sessionId : undefined;
    if (action.result !== 'ok' || ended === undefined) {
      f.skip(id, `ending the session with bye "${reason}" failed: ${action.result}`);
      continue;
    }
    const from = list.indexOf(action);
    const bye = list.slice(from).find((o): o is ObservationOf<'down'> => o.kind === 'down' && o.message.type === 'bye' && o.message.sessionId === ended);
    const start = bye ?? action;
    const next = offers(list.slice(from)).find((o) => o.t >= start.t);
    const stale = list.slice(list.indexOf(start) + 1).find(
      (o) => o.kind === 'published' && o.message !== undefined && 'sessionId' in o.message && o.message.sessionId === ended && o.message.type !== 'error',
    );
    if (stale) f.fail(id, `${at(stale)}: kept using session ${ended} after the bridge's bye "${reason}"`);
    if (next === undefined || next.t - start.t > settings.reofferWithinMs) {
      f.fail(id, `bye "${reason}" ${at(start)}: no new offer within ${settings.reofferWithinMs / 1000} s`);
    } else if (next.message.sessionId === ended) {
      f.fail(id, `${at(next)}: offered again with the ended session's ID ${ended}`);
    } else if (next.t - start.t < settings.minBackoffMs && !startedBetween(list, start.t, next.t)) {
      f.fail(id, `bye "${reason}" ${at(start)}: offered again ${next.t - start.t} ms later, without a backoff (§12: 0.5–1 s for the first retry)`);
    } else {
      f.pass(id, `bye "${reason}" ${at(start)}: new offer ${next.t - start.t} ms later with a new sessionId`);
    }
  }
}

/** A start from the bridge between two moments asks for an offer at once (§12): no backoff is due after it. */
function startedBetween(list: readonly Observation[], from: number, to: number): boolean {
  return list.some((o) => o.kind === 'down' && o.message.type === 'start' && o.t >= from && o.t <= to);
}

function checkStart({ list, settings, f }: Context): void {
  const actions = list.filter((o): o is ObservationOf<'action'> => o.kind === 'action' && o.action.type === 'bye' && o.action.reason === 'normal');
  if (actions.length === 0) return f.skip('start.honoured', 'the checker did not end a session with bye "normal"');
  for (const action of actions) {
    if (action.result !== 'ok') {
      f.skip('start.honoured', `ending the session with bye "normal" failed: ${action.result}`);
      continue;
    }
    const rest = list.slice(list.indexOf(action) + 1);
    const start = rest.find((o): o is ObservationOf<'down'> => o.kind === 'down' && o.message.type === 'start');
    const early = offers(rest).find((o) => start === undefined || o.t < start.t);
    if (early) f.fail('start.honoured', `bye "normal" ${at(action)}: offered ${early.t - action.t} ms later without a start (it should wait IDLE)`);
    if (start === undefined) {
      if (!early) f.skip('start.honoured', 'the bridge sent no start after bye "normal"');
      continue;
    }
    const answered = offers(rest).find((o) => o.t >= start.t);
    if (answered === undefined || answered.t - start.t > settings.startWithinMs) {
      f.fail('start.honoured', `start ${at(start)}: no offer within ${settings.startWithinMs} ms`);
    } else if (!early) {
      f.pass('start.honoured', `stayed idle after bye "normal" ${at(action)}; offered ${answered.t - start.t} ms after start`);
    }
  }
}

function checkCleanDisconnect({ list, settings, topics, f }: Context): void {
  const status = topics.device(settings.deviceId, 'status');
  const segments = connections(list);
  let clean = 0;
  for (const { start, end } of segments) {
    const segment = list.slice(start, end);
    const gone = segment.find((o): o is ObservationOf<'disconnected'> => o.kind === 'disconnected');
    if (gone === undefined) continue;
    if (gone.event.reason !== 'disconnect') {
      f.skip('bye.disconnect', `${at(gone)}: the connection ended without DISCONNECT (${gone.event.reason}); the will went out`);
      continue;
    }
    clean++;
    const live = liveSession(segment, gone);
    const byes = segment.slice(0, segment.indexOf(gone)).filter((o) => o.kind === 'published' && o.message?.type === 'bye');
    const problems: string[] = [];
    if (live !== undefined) problems.push(`no bye for its live session ${live}`);
    // A retained card is routed after the broker stored it, so it may arrive just after the event.
    const card = segment.find((o) => o.kind === 'published' && o.channel === 'status' && (o.message as { state?: string } | undefined)?.state === 'offline');
    if (card === undefined) problems.push(`no offline card on ${status} (the broker discards the will on DISCONNECT: the card stays "online")`);
    if (problems.length > 0) f.fail('bye.disconnect', `clean disconnect ${at(gone)}: ${problems.join('; ')}`);
    else f.pass('bye.disconnect', `clean disconnect ${at(gone)}: ${byes.length > 0 ? 'bye, ' : ''}offline card, then DISCONNECT`);
  }
  if (clean === 0) f.skip('bye.disconnect', 'the device did not disconnect cleanly during the check (give --wait-disconnect and stop it)');
}

/** The session live when the connection ended: offered on it and not ended by a bye either way, or an error. */
function liveSession(segment: readonly Observation[], gone: Observation): string | undefined {
  const before = segment.slice(0, segment.indexOf(gone));
  const last = offers(before).at(-1);
  if (last === undefined) return undefined;
  const id = last.message.sessionId;
  const ended = before.some(
    (o) =>
      (o.kind === 'down' && (o.message.type === 'bye' || o.message.type === 'error') && o.message.sessionId === id) ||
      (o.kind === 'published' && (o.message?.type === 'bye' || o.message?.type === 'error') && o.message.sessionId === id),
  );
  return ended ? undefined : id;
}

