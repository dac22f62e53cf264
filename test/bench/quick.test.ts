/**
 * The benchmark suite cannot rot: `npm run bench -- --quick` runs every measurement with small counts and must
 * produce every table, the markdown summary and the chart. No assertion on speed: timing claims live in the
 * benchmark results, never in tests.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it, onTestFinished } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ALL = ['signaling', 'concurrency', 'broker', 'connections', 'relay', 'sigload', 'ingest', 'wire-bytes', 'interop', 'lossy', 'fleet', 'turn', 'startup'];

// Thirteen measurements, each with real processes: 160 s seen on a 2-core machine at load average 20.
it('npm run bench -- --quick produces every table, latest.md and the chart', { timeout: 300_000 }, async () => {
  const out = await mkdtemp(join(tmpdir(), 'tali-bench-quick-'));
  onTestFinished(() => rm(out, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['bench/run.ts', '--quick', '--out', out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  expect(code, output).toBe(0);

  const result = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as {
    errors: unknown[];
    machine: { cpu: string; cores: number; node: string };
    tables: { id: string; columns: string[]; rows: string[][]; notes: string[] }[];
  };
  expect(result.errors).toEqual([]);
  expect(result.tables.map((t) => t.id)).toEqual(ALL);
  for (const table of result.tables) {
    expect(table.rows.length, table.id).toBeGreaterThan(0);
    for (const row of table.rows) expect(row.length, table.id).toBe(table.columns.length);
  }
  expect(result.machine.cores).toBeGreaterThan(0);
  expect(result.machine.node).toMatch(/^v\d+/);

  const md = await readFile(join(out, 'latest.md'), 'utf8');
  expect(md.match(/^## \d+\. /gm)).toHaveLength(ALL.length);
  const svg = await readFile(join(out, 'latest.svg'), 'utf8');
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg).toContain('</svg>');
  // The terminal gets the tables too.
  for (const heading of ['Signaling overhead', 'Concurrency', 'Broker', 'Connections', 'Relay', 'Bytes on the wire']) expect(output).toContain(heading);
});
