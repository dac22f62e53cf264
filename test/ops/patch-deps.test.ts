/**
 * scripts/patch-deps.js: the reviewed werift patch is applied by `npm ci` (postinstall), and the applier is strict and
 * idempotent.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { applyHunks, parsePatch } from '../../scripts/patch-deps.js';
import { weriftPatched } from '../../src/webrtc/werift-patch.ts';

const run = promisify(execFile);

const DIFF = `--- a/x.js
+++ b/x.js
@@ -1,4 +1,3 @@
 one
-two
+TWO
 three
--- four
@@ -8,2 +7,3 @@
 eight
+eight and a half
 nine
`;

describe('patch-deps', () => {
  it('finds the installed werift patched', async () => {
    const { stdout, stderr } = await run('node_modules/.bin/node', ['scripts/patch-deps.js', '--check']);
    expect(stderr).toBe('');
    expect(stdout).toBe('');
    expect(weriftPatched()).toBe(true); // what the answerer checks at start, else it warns
  });

  it('applies a diff once, leaves a patched file as it is, and refuses a file that matches neither', () => {
    const hunks = parsePatch(DIFF).get('x.js')!;
    expect(hunks.map((h) => h.before.length)).toEqual([4, 2]); // "--- four" is a removed line, not a header
    const original = 'one\ntwo\nthree\n-- four\nfive\nsix\nseven\neight\nnine\n';
    const patched = applyHunks(original, hunks, 'x.js');
    expect(patched).toEqual({ state: 'patched', text: 'one\nTWO\nthree\nfive\nsix\nseven\neight\neight and a half\nnine\n' });
    expect(applyHunks(patched.text, hunks, 'x.js')).toEqual({ state: 'applied', text: patched.text });
    expect(() => applyHunks(original.replace('two', 'deux'), hunks, 'x.js')).toThrow(/matches neither/);
  });
});
