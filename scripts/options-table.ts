/**
 * Writes the options table of docs/configuration.md (between its `generated:options` markers) from OPTIONS.
 *
 * Usage: node_modules/.bin/node scripts/options-table.ts [--check | --print]
 *   --check  write nothing; exit 1 if the document is out of date (CI)
 *   --print  print the table (markdown) to stdout, e.g. for the README
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderOptionsTable } from '../src/config/options-table.ts';

export const CONFIG_DOC_PATH = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));
const BEGIN = '<!-- generated:options by scripts/options-table.ts; do not edit -->';
const END = '<!-- /generated:options -->';

/** `doc` with its table replaced; throws if the markers are missing. */
export function withOptionsTable(doc: string): string {
  const begin = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`docs/configuration.md: markers ${BEGIN} … ${END} not found`);
  return `${doc.slice(0, begin)}${BEGIN}\n${renderOptionsTable()}${doc.slice(end)}`;
}

function main(args: string[]): number {
  if (args.includes('--print')) {
    process.stdout.write(renderOptionsTable());
    return 0;
  }
  const current = readFileSync(CONFIG_DOC_PATH, 'utf8');
  const wanted = withOptionsTable(current);
  if (current === wanted) return 0;
  if (args.includes('--check')) {
    process.stderr.write(`${CONFIG_DOC_PATH} is out of date; run: node_modules/.bin/node scripts/options-table.ts\n`);
    return 1;
  }
  writeFileSync(CONFIG_DOC_PATH, wanted);
  process.stdout.write(`wrote ${CONFIG_DOC_PATH}\n`);
  return 0;
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2));
