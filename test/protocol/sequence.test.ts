import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_AGE_MS, DuplicateFilter, isFresh, SequenceCounter } from '../../src/protocol/index.ts';

describe('SequenceCounter', () => {
  it('numbers each session from 1, independently', () => {
    const counter = new SequenceCounter();
    expect([counter.next('a'), counter.next('a'), counter.next('b'), counter.next('a'), counter.next('b')]).toEqual([
      1, 2, 1, 3, 2,
    ]);
  });

  it('starts again at 1 after forget', () => {
    const counter = new SequenceCounter();
    counter.next('a');
    counter.next('a');
    counter.forget('a');
    expect(counter.next('a')).toBe(1);
  });
});

describe('DuplicateFilter', () => {
  it('accepts the first (sessionId, seq) and drops repeats, also out of order', () => {
    const filter = new DuplicateFilter();
    expect([1, 2, 3].map((seq) => filter.accept('s1', seq))).toEqual([true, true, true]);
    expect(filter.accept('s1', 2)).toBe(false);
    expect(filter.accept('s1', 1)).toBe(false);
    expect(filter.accept('s1', 5)).toBe(true);
    expect(filter.accept('s1', 4)).toBe(true);
    expect(filter.accept('s1', 5)).toBe(false);
  });

  it('keeps sessions apart', () => {
    const filter = new DuplicateFilter();
    expect(filter.accept('s1', 1)).toBe(true);
    expect(filter.accept('s2', 1)).toBe(true);
    expect(filter.accept('s2', 1)).toBe(false);
  });

  it('forget makes a session new again', () => {
    const filter = new DuplicateFilter();
    filter.accept('s1', 1);
    filter.forget('s1');
    expect(filter.accept('s1', 1)).toBe(true);
  });

  it('remembers at most `sessions` sessions, forgetting the oldest first', () => {
    const filter = new DuplicateFilter({ sessions: 3 });
    for (const id of ['a', 'b', 'c', 'd']) filter.accept(id, 1);
    expect(filter.accept('a', 1)).toBe(true); // evicted by 'd', so seen as new
    // 'a' came back as the newest and pushed out 'b'; 'c' and 'd' are still remembered.
    expect(filter.accept('c', 1)).toBe(false);
    expect(filter.accept('d', 1)).toBe(false);
    expect(filter.accept('b', 1)).toBe(true);
  });

  it('remembers at most `perSession` seq values per session, forgetting the oldest first', () => {
    const filter = new DuplicateFilter({ perSession: 3 });
    for (const seq of [1, 2, 3, 4]) filter.accept('s', seq);
    expect(filter.accept('s', 4)).toBe(false);
    expect(filter.accept('s', 3)).toBe(false);
    expect(filter.accept('s', 1)).toBe(true);
  });

  it('stays bounded and correct when a peer floods session IDs', () => {
    const filter = new DuplicateFilter({ sessions: 64, perSession: 256 });
    for (let i = 0; i < 100_000; i++) filter.accept(`flood-${i}`, 1);
    // The most recent 64 sessions are remembered, anything older is not.
    expect(filter.accept('flood-99999', 1)).toBe(false);
    expect(filter.accept('flood-99936', 1)).toBe(false);
    expect(filter.accept('flood-0', 1)).toBe(true);
  });

  it('defaults to 64 sessions', () => {
    const filter = new DuplicateFilter();
    for (let i = 0; i <= 64; i++) filter.accept(`s${i}`, 1);
    expect(filter.accept('s64', 1)).toBe(false);
    expect(filter.accept('s1', 1)).toBe(false);
    expect(filter.accept('s0', 1)).toBe(true);
  });
});

describe('isFresh', () => {
  const now = 1_764_038_401_250;

  it('accepts ts within ±maxAgeMs, inclusive', () => {
    expect(DEFAULT_MAX_AGE_MS).toBe(60_000);
    for (const ts of [now, now - 60_000, now + 60_000, now - 1]) expect(isFresh(ts, now, DEFAULT_MAX_AGE_MS)).toBe(true);
  });

  it('rejects ts outside the window on either side', () => {
    for (const ts of [now - 60_001, now + 60_001, 0, 41_250]) expect(isFresh(ts, now, DEFAULT_MAX_AGE_MS)).toBe(false);
  });

  it('maxAgeMs 0 turns the check off', () => {
    expect(isFresh(0, now, 0)).toBe(true);
  });
});
