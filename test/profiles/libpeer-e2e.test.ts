import { describe, expect, it } from 'vitest';
import { startLibpeerDevice, tlsBridge } from './helpers.ts';
import { withTimeout } from '../helpers/wait.ts';

describe('libpeer profile', () => {
  it('a libpeer device streams H264 + PCMA to the bridge', async () => {
    const tb = await tlsBridge();
    const { device } = await startLibpeerDevice(tb, 'cam-lp1');
    await withTimeout(device.until((d) => d.state === 'completed'), 15_000, 'libpeer call completed');
    const session = tb.bridge.answerer.sessions.get('cam-lp1');
    await withTimeout(new Promise<void>((resolve) => {
      const check = () => (session?.stats.tracks.length === 2 && session.stats.tracks.every((t) => t.packets > 20) ? resolve() : setTimeout(check, 50));
      check();
    }), 10_000, 'media');
    expect(session?.codecs).toEqual(expect.arrayContaining([{ kind: 'video', codec: 'H264' }, { kind: 'audio', codec: 'PCMA' }]));
  });
});
