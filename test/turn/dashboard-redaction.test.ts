/** The dashboard's signaling log shows a viewer's `ice-servers` messages without their TURN passwords. */
import { describe, expect, it } from 'vitest';
import { redacted } from '../../src/dashboard/signal-log.ts';
import { IcePlan } from '../../src/turn/ice-plan.ts';
import { TurnCredentials } from '../../src/turn/credentials.ts';

describe('dashboard signal log', () => {
  it('hides the credential of every ICE server, keeps the rest, and leaves other messages as they are', () => {
    const turn = new TurnCredentials({ secret: 'log-secret', urls: ['turn:t.example:3478'], ttlS: 600 });
    const message = new IcePlan({ iceServers: [{ urls: 'stun:s.example:3478' }], turn, bridgeId: 'b1' }).forViewer('alice')!;
    const password = message.iceServers[0]!.credential!;
    const shown = redacted(message as unknown as Record<string, unknown>);
    expect(JSON.stringify(shown)).not.toContain(password);
    expect(shown).toEqual({ ...message, iceServers: [{ ...message.iceServers[0], credential: '(hidden)' }] });
    expect(message.iceServers[0]!.credential).toBe(password); // the message itself is not changed
    const offer = { v: 1, type: 'offer', sessionId: 's', seq: 1, ts: 1, sdp: 'v=0' };
    expect(redacted(offer)).toBe(offer);
  });
});
