/**
 * docs/security.md lists every process error code of src/errors.ts, with the same text.
 */
import { readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { PROCESS_ERRORS } from '../../src/errors.ts';

it('docs/security.md lists every process error code', async () => {
  const doc = await readFile(new URL('../../docs/security.md', import.meta.url), 'utf8');
  const table = doc.split('<!-- process-errors -->')[1]?.split('<!-- /process-errors -->')[0] ?? '';
  const rows = [...table.matchAll(/^\| `(TALI_ERR_[A-Z_]+)` \| (.+) \|$/gm)].map((m) => [m[1], m[2]]);
  expect(Object.fromEntries(rows)).toEqual(PROCESS_ERRORS);
});
