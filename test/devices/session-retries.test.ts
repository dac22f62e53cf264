/**
 * SessionKeeper's retry rules against a real bridge, over MQTT/TCP and MQTT/WebSocket: a bridge error whose hint is
 * "later" and the keeper's own deadlines lead to a new offer after a backoff delay.
 */
import { describe, expect, it } from 'vitest';
import type { Session } from '../../src/answerer/session.ts';
import type { ByeReason } from '../../src/protocol/index.ts';
import { startBridge, TRANSPORTS } from '../helpers/bridge.ts';
import { waitFor } from '../helpers/wait.ts';
import { createCamera, FAST_BACKOFF, next, record, startCamera } from './helpers.ts';

describe.each(TRANSPORTS)('session retries over %s', (transport) => {
  it('backs off on TALI_ERR_SESSION_LIMIT and connects once a slot is free', async () => {
    const tb = await startBridge({ maxSessions: 1 });
    const first = await startCamera(tb, transport, { deviceId: 'cam1' });
    await next(first.keeper, 'session-connected', undefined, 15_000);

    const second = await createCamera(tb, transport, { deviceId: 'cam2' });
    const retried = next(second.keeper, 'retry-scheduled');
    await second.start();
    const [retry] = await retried;
    expect(retry.reason).toBe('error:TALI_ERR_SESSION_LIMIT');
    expect(retry.delayMs).toBeGreaterThanOrEqual(FAST_BACKOFF.initialMs * (1 - FAST_BACKOFF.jitter));

    const connected = next(second.keeper, 'session-connected', undefined, 15_000);
    await first.stop(); // its bye frees the slot
    await connected;
    expect(second.keeper.counters.errorsReceived).toBeGreaterThanOrEqual(1);
    expect(second.keeper.counters.retries).toBeGreaterThanOrEqual(1);
  });

  it.each([
    ['answerTimeoutMs', 'answer-timeout', 'answerTimeouts'],
    ['connectTimeoutMs', 'connect-timeout', 'connectTimeouts'],
  ] as const)('gives up when %s passes, says bye "timeout" and offers again', async (option, reason, counter) => {
    // 1 ms: no bridge answers (or connects) that fast, so every attempt runs into the deadline.
    const tb = await startBridge();
    const camera = await createCamera(tb, transport, { [option]: 1 });
    const answered = waitFor<[Session]>(tb.bridge.answerer, 'session');
    const firstClosed = next(camera.keeper, 'session-closed', (s) => s.closeReason === reason);
    const firstRetry = next(camera.keeper, 'retry-scheduled', (r) => r.reason === reason);
    const opened = record(camera.keeper, 'session-open');
    const secondOpen = next(camera.keeper, 'session-open', () => opened.length === 2); // record's listener runs first
    await camera.start();

    const [bridgeSession] = await answered; // the first offer's
    const bridgeClosed = waitFor<[ByeReason]>(bridgeSession, 'closed');
    const [closed] = await firstClosed;
    const [retry] = await firstRetry;
    const [reopened] = await secondOpen;
    expect(closed.sessionId).toBe(bridgeSession.sessionId);
    expect((await bridgeClosed)[0]).toBe('timeout'); // ended on the camera's bye (its reason kept), not by the next offer
    expect(retry.attempt).toBeGreaterThanOrEqual(1);
    expect(reopened.sessionId).not.toBe(closed.sessionId);
    expect(camera.keeper.counters[counter]).toBeGreaterThanOrEqual(1);
  });
});
