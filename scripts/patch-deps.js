/**
 * Applies the reviewed patches in patches/ to installed dependencies (`postinstall`, so `npm ci` runs it; the
 * Dockerfile runs it after `npm ci --ignore-scripts`). A patch is a unified diff named `<package>+<version>.patch`
 * (patch-package's naming, so that tool can take over if it is ever wanted); docs/werift-patches.md says what each
 * changes and why.
 *
 * Strict on purpose: every hunk must match the installed file exactly (context and removed lines); a hunk whose
 * result is already there counts as applied, so running twice changes nothing. A different installed version, or a
 * file that matches neither, fails the install with a message instead of shipping an unpatched dependency.
 *
 *   node scripts/patch-deps.js           apply
 *   node scripts/patch-deps.js --check   exit 1 unless every patch is applied (no changes made)
 *
 * Plain JavaScript: it also runs inside an app's node_modules, where Node does not strip types.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(join(root, 'package.json'));

/**
 * Where a package is installed: node_modules/<pkg> here in the repository; in an app that installed tali it may be
 * hoisted beside tali instead.
 */
/** @param {string} pkg */
function packageDir(pkg) {
  // Its entry point, then up to its package.json (werift's exports do not include package.json).
  for (let dir = dirname(require.resolve(pkg)); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name === pkg) return dir;
  }
  throw new Error(`${pkg} is not installed`);
}
const check = process.argv.includes('--check');

/** @typedef {{ oldStart: number, before: string[], after: string[] }} Hunk */

/** Files of a unified diff (paths relative to the project root, from the `+++ b/…` line) and their hunks. */
/** @param {string} text @returns {Map<string, Hunk[]>} */
export function parsePatch(text) {
  /** @type {Map<string, Hunk[]>} */
  const files = new Map();
  /** @type {Hunk[] | undefined} */
  let hunks;
  /** @type {Hunk | undefined} */
  let hunk;
  // Lines still expected in the current hunk (old side, new side): headers are only read between hunks.
  let oldLeft = 0;
  let newLeft = 0;
  for (const line of text.split('\n')) {
    if (hunk && (oldLeft > 0 || newLeft > 0)) {
      const body = line.slice(1);
      if (line.startsWith('-')) (hunk.before.push(body), oldLeft--);
      else if (line.startsWith('+')) (hunk.after.push(body), newLeft--);
      else if (line.startsWith(' ') || line === '') (hunk.before.push(body), hunk.after.push(body), oldLeft--, newLeft--);
      continue;
    }
    if (line.startsWith('+++ ')) {
      hunks = [];
      files.set(String(line.slice(4).split('\t')[0]).replace(/^b\//, ''), hunks);
    } else if (line.startsWith('@@ ')) {
      const m = /^@@ -(\d+)(?:,(\d+))? \+\d+(?:,(\d+))? @@/.exec(line);
      if (!m || !hunks) throw new Error(`bad hunk header: ${line}`);
      hunk = { oldStart: Number(m[1]), before: [], after: [] };
      oldLeft = Number(m[2] ?? 1);
      newLeft = Number(m[3] ?? 1);
      hunks.push(hunk);
    }
  }
  return files;
}

/** Index of `block` in `lines` nearest to `hint`, or -1. */
/** @param {string[]} lines @param {string[]} block @param {number} hint */
function find(lines, block, hint) {
  let best = -1;
  for (let i = 0; i + block.length <= lines.length; i++) {
    if (block.every((l, j) => lines[i + j] === l) && (best === -1 || Math.abs(i - hint) < Math.abs(best - hint))) best = i;
  }
  return best;
}

/** Applies hunks to text; 'applied' when every hunk's result is already there. Throws when a hunk matches neither. */
/**
 * @param {string} text @param {Hunk[]} hunks @param {string} name
 * @returns {{ text: string, state: 'patched' | 'applied' }}
 */
export function applyHunks(text, hunks, name) {
  const lines = text.split('\n');
  let done = 0;
  let offset = 0;
  for (const hunk of hunks) {
    const at = find(lines, hunk.before, hunk.oldStart - 1 + offset);
    if (at !== -1) {
      lines.splice(at, hunk.before.length, ...hunk.after);
      offset += hunk.after.length - hunk.before.length;
    } else if (find(lines, hunk.after, hunk.oldStart - 1 + offset) !== -1) {
      done++;
    } else {
      throw new Error(`${name}: hunk at line ${hunk.oldStart} matches neither the original nor the patched text`);
    }
  }
  if (done > 0 && done < hunks.length) throw new Error(`${name}: partly patched (${done} of ${hunks.length} hunks); reinstall the package`);
  return { text: lines.join('\n'), state: done === hunks.length ? 'applied' : 'patched' };
}

function main() {
  let failed = false;
  for (const file of readdirSync(join(root, 'patches')).filter((f) => f.endsWith('.patch')).sort()) {
    const [, pkg, version] = /^(.+)\+([^+]+)\.patch$/.exec(file) ?? [];
    const dir = packageDir(String(pkg));
    const installed = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
    if (installed !== version) {
      console.error(`patch-deps: ${file} is for ${pkg} ${version}, but ${installed} is installed: port the patch (docs/werift-patches.md)`);
      process.exit(1);
    }
    for (const [path, hunks] of parsePatch(readFileSync(join(root, 'patches', file), 'utf8'))) {
      const target = join(dir, path.replace(`node_modules/${pkg}/`, ''));
      const result = applyHunks(readFileSync(target, 'utf8'), hunks, `${file} → ${path}`);
      if (result.state === 'applied') continue;
      if (check) {
        console.error(`patch-deps: ${file} is not applied to ${path}`);
        failed = true;
        continue;
      }
      writeFileSync(target, result.text);
      console.log(`patch-deps: applied ${file} to ${path}`);
    }
  }
  if (failed) process.exit(1);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (err) {
    console.error(`patch-deps: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  }
}
