/**
 * SIGTERM of a cluster node whose Redis does not answer (issue 17, item 5: ~20 s were seen, past shutdownTimeoutMs):
 * a real `tali start --cluster` process recording a werift camera, and a real redis-server that is either frozen
 * with SIGSTOP just before the signal (its port still accepts, nothing answers, as when its host drops off the
 * network) or stopped long enough before it that the node knows. The process exits within shutdownTimeoutMs (the
 * bound is the option, not a benchmark), with the recording finalised on disk.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { CredentialStore } from '../../src/security/credentials.ts';
import { startStreamingCamera } from '../ops/camera.ts';
import { startTali } from '../helpers/tali-process.ts';
import { describeWith, startRedis, type Service } from '../helpers/services.ts';
import { until, withTimeout } from '../helpers/wait.ts';

const SHUTDOWN_TIMEOUT_MS = 5000;

async function readyz(httpPort: number): Promise<{ ready: boolean; reason?: string }> {
  return (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).json() as Promise<{ ready: boolean; reason?: string }>;
}

describeWith(['redis-server'], 'SIGTERM while the cluster Redis does not answer', () => {
  const cases: { name: string; away: (redis: Service, httpPort: number) => Promise<void> }[] = [
    { name: 'frozen just before the signal (SIGSTOP)', away: async (redis) => redis.pause() },
    {
      name: 'stopped a while before, and the node knows',
      away: async (redis, httpPort) => {
        await redis.stop();
        const deadline = performance.now() + 15_000;
        while ((await readyz(httpPort)).ready) {
          if (performance.now() > deadline) throw new Error('the node never noticed that Redis stopped');
          await new Promise((resolve) => setTimeout(resolve, 50)); // polling /readyz, as a load balancer would
        }
      },
    },
  ];
  for (const { name, away } of cases) {
    it(`${name}: the node exits within shutdownTimeoutMs, its recording finalised`, { timeout: 90_000 }, async () => {
      const redis = await startRedis();
      onTestFinished(() => redis.close());
      const dataDir = await mkdtemp(join(tmpdir(), 'tali-redis-down-'));
      onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
      const tali = startTali([
        ...['--cluster', redis.url, '--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dataDir],
        ...['--record', '*', '--shutdown-timeout-ms', String(SHUTDOWN_TIMEOUT_MS), '--log-level', 'info'],
      ]);
      const { mqttPort, httpPort } = await tali.ready();
      const secret = await new CredentialStore(dataDir).add('cam1', 'device');
      const camera = await startStreamingCamera({ url: `mqtt://127.0.0.1:${mqttPort}`, id: 'cam1', secret, codec: 'VP8' });
      await tali.log((r) => r.msg === 'recording file started', 'recording to start');
      const target = camera.video.framesSent + 30;
      await until(() => camera.video.framesSent >= target, 10_000, '1 s of media');

      await away(redis, httpPort);
      const signalledAt = performance.now();
      tali.child.kill('SIGTERM');
      const exit = await withTimeout(tali.exited, SHUTDOWN_TIMEOUT_MS + 10_000, 'tali to exit');
      const said = tali.logs.filter((l) => l.msg === 'shutting down' || String(l.msg).startsWith('tali stopped') || l.msg === 'shutdown timed out');
      expect(exit.at - signalledAt, JSON.stringify(said)).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
      // The drain returned in time (exit 0), leaving behind what needed Redis.
      expect(exit).toMatchObject({ code: 0, signal: null });
      // What is on the local disk does not wait for Redis: the file is finalised (renamed from its part file).
      const names = await readdir(join(dataDir, 'recordings', 'cam1'));
      expect(names).toEqual([expect.stringMatching(/^cam1-\d{8}T\d{9}Z\.webm$/)]);
    });
  }
});
