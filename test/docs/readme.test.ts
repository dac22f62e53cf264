/**
 * The README's generated tables (options, error codes) match the code, and the error table is complete: every
 * TALI_ERR_ code the sources use is in it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { README_PATH, renderErrorTable, withTables } from '../../scripts/readme.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

describe('README.md', () => {
  it('has the current tables (node_modules/.bin/node scripts/readme.ts)', () => {
    const readme = readFileSync(README_PATH, 'utf8');
    expect(withTables(readme)).toBe(readme);
  });

  it('lists every error code the sources use', () => {
    const table = renderErrorTable();
    const used = new Set(
      [...sources(join(ROOT, 'src')), ...sources(join(ROOT, 'devices'))].flatMap((file) =>
        [...readFileSync(file, 'utf8').matchAll(/TALI_ERR_[A-Z][A-Z_]*[A-Z]/g)].map((m) => m[0]),
      ),
    );
    expect(used.size).toBeGreaterThan(20);
    for (const code of used) expect(table, code).toContain(`\`${code}\``);
  });

  it('gives the two commands that set up a fresh machine', () => {
    const readme = readFileSync(README_PATH, 'utf8');
    expect(readme).toContain('npm ci && npm start\nnpm test\n');
  });
});
