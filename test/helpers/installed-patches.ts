/**
 * Vitest global setup: the run stops before any test when node_modules does not carry patches/ as they are in this
 * checkout (scripts/patch-deps.js --check). A worktree rebased onto a new werift patch without `npm ci` ran the old
 * patch: in one full-suite run on 8cecb30 that made 8 cases of test/webrtc/dtls-auth.test.ts fail (impostors
 * connected; "a second ServerKeyExchange … the camera streams" timed out waiting for its session to connect), read
 * as a flaky test under load. Only test/ops/patch-deps.test.ts named the cause, among the failures.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  try {
    execFileSync(process.execPath, ['scripts/patch-deps.js', '--check'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? err).trim();
    throw new Error(`node_modules does not match patches/ (run npm ci): ${stderr}`);
  }
}
