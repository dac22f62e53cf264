#!/usr/bin/env node
// Runs the TypeScript sources directly: Node ≥ 22.18 strips types natively. `npx tali` and npm scripts put the
// project's own Node 24 (the `node` dev dependency) first on PATH, so this shebang finds it.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`tali needs Node ≥ 22.18 (this is ${process.version}); run it through npx or npm scripts.\n`);
  process.exit(1);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
