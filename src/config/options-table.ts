/**
 * The table of every option, in markdown: docs/configuration.md (between its markers), `tali config options` and
 * the README are written from it, so the documentation cannot drift from OPTIONS.
 */
import { envOf, flagOf, OPTIONS, type OptionName } from './options.ts';

export function renderOptionsTable(): string {
  const rows = (Object.keys(OPTIONS) as OptionName[]).map((name) => {
    const o = OPTIONS[name];
    const unit = 'unit' in o ? o.unit : o.type === 'enum' ? o.values.join(', ') : '';
    const cells = [`\`${name}\``, `\`--${flagOf(name)}\``, `\`${envOf(name)}\``, defaultOf(name), unit, o.doc.replace(/\|/g, '\\|')];
    return `| ${cells.join(' | ')} |`;
  });
  return ['| Option (file) | Flag | Environment | Default | Unit | Meaning |', '|---|---|---|---|---|---|', ...rows].join('\n') + '\n';
}

function defaultOf(name: OptionName): string {
  const value: unknown = OPTIONS[name].default;
  if (value === null || value === '' || (Array.isArray(value) && value.length === 0)) return '';
  return `\`${JSON.stringify(value)}\``;
}
