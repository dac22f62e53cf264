/**
 * WatchSession's rules without MQTT or WebRTC: a fake link records what would be published, a fake peer plays the
 * WebRTC stack. Timers are vitest's fake ones, so timeouts are exact and nothing sleeps.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { IceCandidateInit, ViewerPeer, ViewerPeerState } from '../../src/viewer/viewer-peer.ts';
import { WatchSession, type ViewerUpBody, type WatchLink } from '../../src/viewer/watch-session.ts';
import type { MessageOnChannel } from '../../src/protocol/index.ts';

class FakePeer implements ViewerPeer {
  onLocalCandidate: ((candidate: IceCandidateInit | null) => void) | undefined;
  onStateChange: ((state: ViewerPeerState) => void) | undefined;
  remote: (IceCandidateInit | null)[] = [];
  answer: string | undefined;
  closed = 0;
  async createOffer(): Promise<string> {
    // A browser's candidates can come before the offer is handed back.
    this.onLocalCandidate?.({ candidate: 'candidate:1 1 udp 2122260223 192.0.2.7 50000 typ host', sdpMid: '0' });
    return 'v=0\r\n';
  }
  async applyAnswer(sdp: string): Promise<void> {
    this.answer = sdp;
  }
  addRemoteCandidate(candidate: IceCandidateInit | null): void {
    this.remote.push(candidate);
  }
  async close(): Promise<void> {
    this.closed++;
  }
}

class FakeLink implements WatchLink {
  connected = true;
  onlineBridge = undefined;
  connection = 'conn-00000001';
  sent: { sessionId: string; body: ViewerUpBody }[] = [];
  #n = 0;
  newSessionId(): string {
    return `session-${++this.#n}`;
  }
  async send(sessionId: string, body: ViewerUpBody): Promise<void> {
    this.sent.push({ sessionId, body });
  }
  forget(): void {}
  route(): void {}
  iceConfig() {
    return { iceServers: [], iceTransportPolicy: 'all' as const, withGrant: false };
  }
  types(sessionId?: string): string[] {
    return this.sent.filter((s) => sessionId === undefined || s.sessionId === sessionId).map((s) => s.body.type);
  }
}

const BACKOFF = { initialMs: 1000, maxMs: 1000, jitter: 0 };

function down(sessionId: string, seq: number, body: Record<string, unknown>): MessageOnChannel<'viewer-down'> {
  return { v: 1, sessionId, seq, ts: Date.now(), ...body } as MessageOnChannel<'viewer-down'>;
}

describe('WatchSession', () => {
  let link: FakeLink;
  let peers: FakePeer[];
  let watch: WatchSession;

  beforeEach(() => {
    vi.useFakeTimers();
    link = new FakeLink();
    peers = [];
    watch = new WatchSession('cam1', link, () => peers[peers.push(new FakePeer()) - 1]!, { replyTimeoutMs: 5000, connectTimeoutMs: 8000, backoff: BACKOFF });
  });
  afterEach(async () => {
    await watch.close();
    vi.useRealTimers();
  });

  async function begin(): Promise<string> {
    watch.begin();
    await vi.advanceTimersByTimeAsync(0);
    return watch.sessionId!;
  }

  it('sends watch first (seq 1, with its connection), then the candidates gathered meanwhile', async () => {
    const id = await begin();
    expect(link.types(id)).toEqual(['watch', 'candidate']);
    expect(link.sent[0]?.body).toMatchObject({ type: 'watch', deviceId: 'cam1', connection: 'conn-00000001' });
    peers[0]!.onLocalCandidate?.(null);
    expect(link.sent.at(-1)?.body).toEqual({ type: 'candidate', endOfCandidates: true });
  });

  it('holds bridge candidates until the answer is applied, then connects', async () => {
    const id = await begin();
    watch.receive(down(id, 1, { type: 'candidate', candidate: 'candidate:2 1 udp 1 192.0.2.9 4000 typ host' }));
    expect(peers[0]!.remote).toEqual([]);
    watch.receive(down(id, 2, { type: 'answer', sdp: 'v=0\r\n' }));
    await vi.advanceTimersByTimeAsync(0);
    expect(peers[0]!.answer).toBe('v=0\r\n');
    expect(peers[0]!.remote).toHaveLength(1);
    peers[0]!.onStateChange?.('connected');
    expect(watch.state).toBe('connected');
    expect(Object.keys(watch.timeline)).toEqual(['watchSent', 'answer', 'connected']);
  });

  it('no reply in time: bye, then a new session after the backoff', async () => {
    const id = await begin();
    await vi.advanceTimersByTimeAsync(5000);
    expect(link.types(id)).toContain('bye');
    expect(watch.state).toBe('retrying');
    expect(peers[0]!.closed).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(watch.sessionId).not.toBe(id);
    expect(link.types(watch.sessionId)).toEqual(['watch', 'candidate']);
  });

  it('"waiting" means the bridge heard us: no reply timeout while the camera starts', async () => {
    const id = await begin();
    watch.receive(down(id, 1, { type: 'stream', deviceId: 'cam1', state: 'waiting' }));
    expect(watch.state).toBe('waiting');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(watch.sessionId).toBe(id);
  });

  it('a bye from the bridge starts over without answering it; "replaced" at once', async () => {
    const first = await begin();
    watch.receive(down(first, 1, { type: 'bye', reason: 'timeout' }));
    await vi.advanceTimersByTimeAsync(0);
    expect(link.types(first)).not.toContain('bye');
    await vi.advanceTimersByTimeAsync(1000);
    const second = watch.sessionId!;
    expect(second).not.toBe(first);
    watch.receive(down(second, 1, { type: 'bye', reason: 'replaced' }));
    await vi.advanceTimersByTimeAsync(0);
    expect(watch.sessionId).not.toBe(second);
  });

  it('errors: "fix" stops for good (except about a candidate), TALI_ERR_STALE retries at once', async () => {
    const id = await begin();
    watch.receive(down(id, 1, { type: 'error', code: 'TALI_ERR_INVALID_CANDIDATE', message: 'x', ref: { type: 'candidate', seq: 2 } }));
    expect(watch.sessionId).toBe(id);
    watch.receive({ v: 1, type: 'error', ts: Date.now(), code: 'TALI_ERR_STALE', message: 'x', sessionId: id });
    await vi.advanceTimersByTimeAsync(0);
    const again = watch.sessionId!;
    expect(again).not.toBe(id);
    watch.receive({ v: 1, type: 'error', ts: Date.now(), code: 'TALI_ERR_NO_COMMON_CODEC', message: 'x', sessionId: again });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(watch.state).toBe('failed');
    expect(watch.sessionId).toBeUndefined();
  });

  it('a failed peer starts over; losing MQTT ends the attempt until the client begins again', async () => {
    const id = await begin();
    peers[0]!.onStateChange?.('failed');
    await vi.advanceTimersByTimeAsync(1000);
    expect(watch.sessionId).not.toBe(id);
    watch.connectionLost();
    expect(watch.state).toBe('retrying');
    expect(watch.sessionId).toBeUndefined();
    await begin();
    expect(peers).toHaveLength(3);
  });

  it('close() is idempotent: one bye, the peer closed once', async () => {
    const id = await begin();
    await Promise.all([watch.close(), watch.close()]);
    await watch.close();
    expect(link.types(id).filter((t) => t === 'bye')).toHaveLength(1);
    expect(peers[0]!.closed).toBe(1);
    expect(watch.state).toBe('closed');
  });
});
