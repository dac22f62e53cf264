/**
 * DeviceIce, the bridge's in-band supply of TURN credentials to online devices, on fake timers: one message at the
 * online card, a fresh one every half lifetime (never later), none after the offline card, none from a cluster node
 * the device is not connected to.
 */
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeviceIce } from '../../src/answerer/device-ice.ts';
import type { IceServers } from '../../src/protocol/index.ts';
import { IcePlan } from '../../src/turn/ice-plan.ts';
import { TurnCredentials } from '../../src/turn/credentials.ts';

const TTL_S = 600;

describe('DeviceIce', () => {
  let sent: [string, IceServers][];
  let here: Set<string>;
  let ice: DeviceIce;
  beforeEach(() => {
    vi.useFakeTimers();
    sent = [];
    here = new Set(['cam1', 'cam2']);
    const plan = new IcePlan({ iceServers: [], turn: new TurnCredentials({ secret: 's', urls: ['turn:t:3478'], ttlS: TTL_S }), bridgeId: 'b1' });
    ice = new DeviceIce({ plan, send: (id, m) => sent.push([id, m]), here: (id) => here.has(id), log: pino({ level: 'silent' }) });
  });
  afterEach(() => {
    ice.close();
    vi.useRealTimers();
  });

  it('sends at the online card, then before half the lifetime has passed, each with a full lifetime', () => {
    ice.online('cam1');
    expect(sent.map(([id]) => id)).toEqual(['cam1']);
    const first = sent[0]![1];
    expect(first.expiresAt - Date.now()).toBeGreaterThan((TTL_S - 1) * 1000);
    vi.advanceTimersByTime((TTL_S / 2) * 1000);
    expect(sent).toHaveLength(2);
    expect(sent[1]![1].ts).toBeLessThan(first.expiresAt);
    vi.advanceTimersByTime((TTL_S / 2) * 1000);
    expect(sent).toHaveLength(3);
    // Never more than one timer per device, however often its card says online.
    ice.online('cam1');
    ice.online('cam1');
    expect(ice.size).toBe(1);
  });

  it('stops at the offline card and at close', () => {
    ice.online('cam1');
    ice.online('cam2');
    ice.offline('cam1');
    vi.advanceTimersByTime(TTL_S * 1000);
    expect(sent.filter(([id]) => id === 'cam1')).toHaveLength(1);
    ice.close();
    const count = sent.length;
    vi.advanceTimersByTime(TTL_S * 1000);
    ice.online('cam2');
    expect(sent).toHaveLength(count);
  });

  it('leaves a device connected to another cluster node to that node, also once it moved there', () => {
    ice.online('cam3');
    expect(sent).toEqual([]);
    ice.online('cam1');
    here.delete('cam1'); // it reconnected elsewhere
    vi.advanceTimersByTime(TTL_S * 1000);
    expect(sent.map(([id]) => id)).toEqual(['cam1']);
    expect(ice.size).toBe(0);
  });
});
