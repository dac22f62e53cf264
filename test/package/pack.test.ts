/**
 * Issue 18, part 1: what `npm pack` makes installs in a folder outside the repository and works there without the
 * sources: the CLI starts a bridge (serving the dashboard), the example camera (examples/camera.ts on `tali/device`)
 * streams the clip, the example viewer (examples/viewer.ts on `tali/viewer`) receives keyframes through the relay,
 * and the examples type-check against the package's declarations.
 */
import { execFile } from 'node:child_process';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { JsonLines, packAndInstall, ROOT, type InstalledPackage } from './installed.ts';

const run = promisify(execFile);
let installed: InstalledPackage;

beforeAll(async () => {
  installed = await packAndInstall();
  // Measured, not asserted (speed goals live in npm run bench): how much of the suite this file costs.
  console.info(`npm pack (with the build) ${Math.round(installed.timings.packMs)} ms, npm ci --offline ${Math.round(installed.timings.installMs)} ms`);
}, 120_000);
afterAll(() => installed?.remove());

describe('the npm package', () => {
  it('ships built JavaScript and declarations for every export, the CLI, and no TypeScript sources', async () => {
    const pkgDir = join(installed.app, 'node_modules/tali');
    const pkg = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8')) as {
      engines: { node: string };
      exports: Record<string, string | Record<string, unknown>>;
      bin: Record<string, string>;
    };
    expect(pkg.engines.node).toMatch(/^>=\d+/);
    const targets = Object.values(pkg.exports).flatMap(function flatten(v: unknown): string[] {
      return typeof v === 'string' ? [v] : Object.values(v as object).flatMap(flatten);
    });
    expect(targets.length).toBeGreaterThan(8);
    for (const target of targets) expect(existsSync(join(pkgDir, target)), target).toBe(true);
    for (const target of targets.filter((t) => t.endsWith('.js'))) {
      expect(existsSync(join(pkgDir, target.replace(/\.js$/, '.d.ts'))), `${target} has declarations`).toBe(true);
    }
    expect(existsSync(join(pkgDir, 'src'))).toBe(false);
    const { stdout } = await run('tar', ['-tzf', installed.tarball]);
    const files = stdout.split('\n');
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.startsWith('package/examples/'))).toEqual([]);
    expect(files).toContain(`package/${pkg.bin.tali!.replace(/^\.\//, '')}`);
    // The examples compile against the declarations the package ships (a consumer's usual settings).
    for (const example of ['camera.ts', 'viewer.ts']) await copyFile(join(ROOT, 'examples', example), join(installed.app, example));
    const tsconfig = {
      compilerOptions: { target: 'es2024', module: 'nodenext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')] },
      include: ['*.ts'],
    };
    await writeFile(join(installed.app, 'tsconfig.json'), JSON.stringify(tsconfig));
    await run(join(ROOT, 'node_modules/.bin/tsc'), ['-p', installed.app]);
  });

  // Four processes (bridge, camera, viewer, and the CLI once): on a loaded two-core machine this takes a while.
  it('runs: the installed CLI starts a bridge, the example camera streams a clip, the example viewer gets keyframes', { timeout: 90_000 }, async () => {
    const app = installed.app;
    const dataDir = join(app, 'data');
    const tali = join(app, 'node_modules/.bin/tali');
    // The installed bin under process.execPath (Node 24; the system node may be older than the package's engines).
    const bridge = new JsonLines(process.execPath, [tali, 'start', '--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dataDir], { cwd: app });
    onTestFinished(() => bridge.kill());
    const ready = await bridge.next((r) => r.msg === 'tali ready', 20_000, 'the installed bridge to be ready');
    const mqttUrl = `mqtt://127.0.0.1:${ready.mqttPort as number}`;
    const httpUrl = `http://127.0.0.1:${ready.httpPort as number}`;

    // The dashboard is bundled from the package's JavaScript (no sources shipped) and served.
    const page = await fetch(`${httpUrl}/`);
    expect(page.status).toBe(200);
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(await page.text())?.[1];
    expect(script).toBeDefined();
    expect((await fetch(`${httpUrl}${script}`)).status).toBe(200);
    // So is <tali-player>, bundled from the package's JavaScript too.
    const player = await fetch(`${httpUrl}/tali-player.js`);
    expect(player.status).toBe(200);
    expect(await player.text()).toContain('tali-player');

    const { stdout: secret } = await run(process.execPath, [tali, 'device', 'add', 'cam1', '--quiet', '--data-dir', dataDir], { cwd: app });
    const adminSecret = (await readFile(join(dataDir, 'admin.secret'), 'utf8')).trim();

    const camera = new JsonLines(process.execPath, ['camera.ts'], { cwd: app, env: { TALI_URL: mqttUrl, TALI_DEVICE: 'cam1', TALI_SECRET: secret.trim() } });
    onTestFinished(() => camera.kill());
    await camera.next((r) => r.event === 'streaming', 20_000, 'the example camera to stream');

    const viewer = new JsonLines(process.execPath, ['viewer.ts'], {
      cwd: app,
      env: { TALI_URL: mqttUrl, TALI_USER: 'admin', TALI_PASSWORD: adminSecret, TALI_DEVICE: 'cam1', TALI_TIMEOUT_S: '20' },
    });
    onTestFinished(() => viewer.kill());
    const summary = await viewer.next((r) => r.deviceId === 'cam1', 25_000, 'the example viewer summary');
    expect(await viewer.exited).toBe(0);
    expect(summary.keyframes).toBeGreaterThan(0);
    expect(summary.tracks).toEqual([expect.objectContaining({ kind: 'video', codec: 'VP8' })]);

    // SIGINT: the camera ends its session with a bye and goes offline cleanly.
    camera.child.kill('SIGINT');
    const stopped = await camera.next((r) => r.event === 'stopped', 10_000, 'the example camera to stop');
    expect(stopped.keyframesSent).toBeGreaterThan(0);
    expect(await camera.exited).toBe(0);
  });
});
