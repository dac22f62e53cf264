#!/usr/bin/env node
// In the repository this runs the TypeScript sources directly: Node ≥ 22.18 strips types natively, so `npm start`
// needs no build. `npx tali` and npm scripts put the project's own Node 24 (the `node` dev dependency) first on PATH,
// so this shebang finds it. Installed from the package (npm pack), there are no sources and Node refuses to strip
// types under node_modules anyway: the built JavaScript in dist/ runs instead.
import { existsSync } from 'node:fs';
import module from 'node:module';
import { homedir } from 'node:os';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`tali needs Node ≥ 22.18 (this is ${process.version}); run it through npx or npm scripts.\n`);
  process.exit(1);
}
// Node's compile cache keeps each module compiled (and its types stripped) between runs: without it, compiling the
// ~200 modules a bridge loads is about half of start → ready (npm run bench, "Start-up"). Per user, in
// ~/.cache/tali (or $XDG_CACHE_HOME/tali): a directory only its user can write, since cached code runs as that user.
// NODE_COMPILE_CACHE=dir puts it elsewhere, NODE_DISABLE_COMPILE_CACHE=1 turns it off; unwritable, it is skipped.
if (process.env.NODE_DISABLE_COMPILE_CACHE === undefined) {
  module.enableCompileCache?.(join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'tali', 'compile'));
}
const source = new URL('../src/cli/main.ts', import.meta.url);
const installed = fileURLToPath(import.meta.url).split(sep).includes('node_modules');
const entry = !installed && existsSync(source) ? source.href : new URL('../dist/src/cli/main.js', import.meta.url).href;
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));
