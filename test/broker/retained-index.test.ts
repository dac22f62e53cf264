/**
 * The retained-message index returns exactly what MQTT 3.1.1 §4.7 says a filter matches: checked against a plain
 * level-by-level matcher written from the spec, over thousands of generated topics and filters; deletes prune.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RetainedIndex } from '../../src/broker/retained-index.ts';

/** MQTT 3.1.1 §4.7, written the obvious way: the reference the index must agree with. */
function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '#' || f[0] === '+')) return false; // MQTT-4.7.2-1
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true; // also the parent level: `a/#` matches `a`
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

const level = fc.constantFrom('a', 'b', 'tali', 'v1', '', '$SYS', 'device', 'cam-1');
const topic = fc.array(level, { minLength: 1, maxLength: 5 }).map((l) => l.join('/')).filter((t) => t.length > 0); // MQTT-4.7.3-1
const filter = fc
  .tuple(fc.array(fc.oneof(level, fc.constant('+')), { minLength: 0, maxLength: 5 }), fc.boolean())
  .filter(([l, hash]) => l.length > 0 || hash)
  .map(([l, hash]) => [...l, ...(hash ? ['#'] : [])].join('/'));

const packet = (t: string, body = `card of ${t}`) => ({ topic: t, payload: Buffer.from(body), qos: 1, retain: true });

describe('retained-message index', () => {
  it('matches what the spec says, for any stored topics and any filter', () => {
    fc.assert(
      fc.property(fc.uniqueArray(topic, { maxLength: 30 }), fc.array(topic, { maxLength: 10 }), filter, (stored, deleted, f) => {
        const index = new RetainedIndex();
        for (const t of stored) index.store(packet(t));
        for (const t of deleted) index.store(packet(t, ''));
        const live = stored.filter((t) => !deleted.includes(t));
        expect(index.size).toBe(live.length);
        const got = [...index.match(f)].map((p) => p.topic).sort();
        expect(got).toEqual(live.filter((t) => matches(f, t)).sort());
      }),
      { numRuns: 3000 },
    );
  });

  it('replaces a topic in place, keeps a copy, and prunes emptied levels', () => {
    const index = new RetainedIndex();
    const card = packet('tali/v1/device/cam1/status', 'online');
    index.store(card);
    card.payload = Buffer.from('changed after storing');
    index.store(packet('tali/v1/device/cam1/status', 'offline'));
    expect(index.size).toBe(1);
    expect([...index.match('tali/v1/device/+/status')].map((p) => p.payload.toString())).toEqual(['offline']);
    index.store(packet('tali/v1/device/cam1/status', ''));
    expect(index.size).toBe(0);
    expect([...index.match('#')]).toEqual([]);
  });
});
