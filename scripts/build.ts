/**
 * Builds the installable package: JavaScript and declarations for src/ and devices/ under dist/ (the same tree, so
 * paths a module computes from import.meta.url, such as the clips and the web apps' pages, still hold), plus every
 * file there that is not TypeScript (pages, stylesheets, clips, hand-written .d.ts). The bridge itself never needs
 * this: `npm start` and the tests run the TypeScript sources (Node's type stripping). `npm pack` runs it (prepack).
 *
 * Usage: node_modules/.bin/node scripts/build.ts
 */
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const DIST = join(ROOT, 'dist');
const SOURCES = ['src', 'devices'];

export function build(): void {
  rmSync(DIST, { recursive: true, force: true });
  // tsconfig.build.json: the project's compiler options, with emit on (declarations, rewritten .ts → .js imports).
  execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });
  for (const dir of SOURCES) {
    cpSync(join(ROOT, dir), join(DIST, dir), { recursive: true, filter: (path) => statSync(path).isDirectory() || !isTypeScriptSource(path) });
  }
  for (const file of walk(DIST)) if (file.endsWith('.d.ts')) rewriteDeclarationImports(file);
}

function isTypeScriptSource(path: string): boolean {
  return path.endsWith('.ts') && !path.endsWith('.d.ts');
}

/**
 * tsc rewrites relative `.ts` imports to `.js` in the JavaScript it emits but leaves them as written in the
 * declarations; a consumer's compiler (without allowImportingTsExtensions) wants the `.js` names there too.
 */
function rewriteDeclarationImports(file: string): void {
  const text = readFileSync(file, 'utf8');
  const rewritten = text.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1$2.js$3');
  if (rewritten !== text) writeFileSync(file, rewritten);
}

function* walk(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else yield path;
  }
}

if (import.meta.main) {
  const started = performance.now();
  build();
  console.log(`built ${relative(ROOT, DIST)}/ in ${Math.round(performance.now() - started)} ms`);
}
