/**
 * docs/security.md's table of issue 11's findings: every finding 1–16 has a row, and every test a row names exists
 * (a renamed or deleted test file would otherwise leave the table pointing at nothing).
 */
import { access, readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url);

it('docs/security.md has a row for each finding of issue 11, naming test files that exist', async () => {
  const doc = await readFile(new URL('docs/security.md', ROOT), 'utf8');
  const section = doc.split('## Hostile clients (issue 11)')[1]?.split('\n## ')[0] ?? '';
  const rows = section.split('\n').filter((line) => /^\| \d+ \|/.test(line));
  const findings = new Set(rows.map((row) => Number(row.split('|')[1])));
  expect([...findings].sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
  for (const row of rows) {
    const tests = [...row.matchAll(/`(test\/[^`]+\.test\.ts)`/g)].map((m) => m[1] as string);
    expect(tests.length, row.slice(0, 60)).toBeGreaterThan(0);
    for (const file of tests) await expect(access(new URL(file, ROOT)), file).resolves.toBeUndefined();
  }
});
