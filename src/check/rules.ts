/**
 * The rules `tali check-device` checks a device against, each with the section of docs/protocol.md that states it.
 * The order is the report's. Browser-safe data, no I/O.
 */
export const RULES = {
  'connect.will': { section: '§3', title: 'last will: the offline status card on its own status topic, QoS 1, retained' },
  'connect.keepalive': { section: '§3', title: 'keep alive between 1 and 60 s' },
  'connect.subscribe-first': { section: '§3', title: 'subscribes to its down topic and the bridge cards (QoS 1) before it publishes' },
  'connect.card': { section: '§3, §5.7', title: 'publishes its online status card, QoS 1, retained, on every connection' },
  'messages.valid': { section: '§4, §5, §11', title: 'every payload is a valid message for its topic; the bridge refuses none' },
  'limits.size': { section: '§10', title: "payloads within the bridge card's maxMessageBytes and the string limits" },
  'clock.window': { section: '§9', title: "ts within the accepted window of the bridge's clock" },
  'session.id': { section: '§4', title: 'a fresh random sessionId for every offer (≥ 64 random bits, never reused)' },
  'session.seq': { section: '§4, §8', title: 'the offer is seq 1 and each further message of the session the next seq' },
  'trickle.candidates': { section: '§7', title: 'candidates only after the offer; exactly one endOfCandidates, last' },
  'keyframe.request': { section: '§13', title: 'a keyframe soon after a keyframe request (RTCP PLI)' },
  'reoffer.timeout': { section: '§5.4, §6, §12', title: 'after bye "timeout": a new offer (new sessionId) after a backoff' },
  'reoffer.ice-failed': { section: '§5.4, §6, §12', title: 'after bye "ice-failed": a new offer (new sessionId) after a backoff' },
  'start.honoured': { section: '§5.6, §6', title: 'after bye "normal": no offer until start; then an offer at once' },
  'bye.disconnect': { section: '§3, §6', title: 'before a clean DISCONNECT: bye for the live session and the offline card' },
} as const;

export type RuleId = keyof typeof RULES;

/** `skip`: the check could not observe what the rule is about (the report says why); it fails nothing. */
export type Verdict = 'pass' | 'fail' | 'skip';

export interface RuleResult {
  id: RuleId;
  section: string;
  title: string;
  verdict: Verdict;
  /** What was seen: each violation for `fail`, the evidence for `pass`, why not observed for `skip`. */
  details: string[];
}
