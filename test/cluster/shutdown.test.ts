/**
 * SIGTERM of a cluster node whose Redis does not answer (issue 17, item 5: ~20 s were seen, past shutdownTimeoutMs):
 * a real `tali start --cluster` process recording a werift camera, and a real redis-server frozen with SIGSTOP (its
 * port still accepts, nothing answers, as when its host drops off the network) just before the signal. The process
 * exits within shutdownTimeoutMs (the bound is the option, not a benchmark), with the recording finalised on disk.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { CredentialStore } from '../../src/security/credentials.ts';
import { startStreamingCamera } from '../ops/camera.ts';
import { startTali } from '../helpers/tali-process.ts';
import { describeWith, startRedis } from '../helpers/services.ts';
import { until, withTimeout } from '../helpers/wait.ts';

const SHUTDOWN_TIMEOUT_MS = 5000;

describeWith(['redis-server'], 'SIGTERM while the cluster Redis does not answer', () => {
  it('the node exits within shutdownTimeoutMs, its recording finalised', { timeout: 60_000 }, async () => {
    const redis = await startRedis();
    onTestFinished(() => redis.close());
    const dataDir = await mkdtemp(join(tmpdir(), 'tali-redis-down-'));
    onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
    const tali = startTali([
      ...['--cluster', redis.url, '--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dataDir],
      ...['--record', '*', '--shutdown-timeout-ms', String(SHUTDOWN_TIMEOUT_MS), '--log-level', 'info'],
    ]);
    const { mqttPort } = await tali.ready();
    const secret = await new CredentialStore(dataDir).add('cam1', 'device');
    const camera = await startStreamingCamera({ url: `mqtt://127.0.0.1:${mqttPort}`, id: 'cam1', secret, codec: 'VP8' });
    await tali.log((r) => r.msg === 'recording file started', 'recording to start');
    const target = camera.video.framesSent + 30;
    await until(() => camera.video.framesSent >= target, 10_000, '1 s of media');

    redis.pause();
    const signalledAt = performance.now();
    tali.child.kill('SIGTERM');
    const exit = await withTimeout(tali.exited, SHUTDOWN_TIMEOUT_MS + 10_000, 'tali to exit');
    expect(exit.at - signalledAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    // The drain returned in time (exit 0), leaving behind what needed Redis, and said so.
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(tali.logs.find((l) => l.msg === 'tali stopped: some steps did not finish in time')).toMatchObject({ cut: expect.arrayContaining(['broker']) });
    // What is on the local disk does not wait for Redis: the file is finalised (renamed from its part file).
    const names = await readdir(join(dataDir, 'recordings', 'cam1'));
    expect(names).toEqual([expect.stringMatching(/^cam1-\d{8}T\d{9}Z\.webm$/)]);
  });
});
