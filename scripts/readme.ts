/**
 * Writes the generated tables of README.md (between their markers): every option (from src/config/options.ts) and
 * every error code in one table (protocol errors sent to devices and viewers, HTTP API errors, process and CLI
 * errors).
 *
 * Usage: node_modules/.bin/node scripts/readme.ts [--check]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderOptionsTable } from '../src/config/options-table.ts';
import { HTTP_ERRORS, PROCESS_ERRORS } from '../src/errors.ts';
import { ERROR_CODES } from '../src/protocol/errors.ts';

export const README_PATH = fileURLToPath(new URL('../README.md', import.meta.url));

export function renderErrorTable(): string {
  const rows = [
    ...Object.entries(ERROR_CODES).map(([code, e]) => [code, 'protocol `error` message', `${e.text}; the sender should ${RETRY[e.retry]}`]),
    ...Object.entries(HTTP_ERRORS).map(([code, text]) => [code, 'HTTP API', text]),
    ...Object.entries(PROCESS_ERRORS).map(([code, text]) => [code, 'process, CLI', text]),
  ];
  return ['| Code | Where | Meaning |', '|---|---|---|', ...rows.map((r) => `| \`${r[0]}\` | ${r[1]} | ${r[2]} |`)].join('\n') + '\n';
}

const RETRY = { fix: 'fix the message', offer: 'offer again (new session)', later: 'back off and retry' } as const;

const SECTIONS = { options: renderOptionsTable, errors: renderErrorTable };

export function withTables(doc: string): string {
  let out = doc;
  for (const [name, render] of Object.entries(SECTIONS)) {
    const begin = `<!-- generated:${name} by scripts/readme.ts; do not edit -->`;
    const end = `<!-- /generated:${name} -->`;
    const b = out.indexOf(begin);
    const e = out.indexOf(end);
    if (b < 0 || e < b) throw new Error(`README.md: markers for ${name} not found`);
    out = `${out.slice(0, b)}${begin}\n${render()}${out.slice(e)}`;
  }
  return out;
}

function main(args: string[]): number {
  const current = readFileSync(README_PATH, 'utf8');
  const wanted = withTables(current);
  if (current === wanted) return 0;
  if (args.includes('--check')) {
    process.stderr.write('README.md is out of date; run: node_modules/.bin/node scripts/readme.ts\n');
    return 1;
  }
  writeFileSync(README_PATH, wanted);
  return 0;
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2));
