/**
 * What each measurement hands back, and how the runner prints it: a plain-text table for the terminal and a
 * markdown section for bench/results/latest.md.
 */

/** A distribution to draw in the chart: one row of a box plot. */
export interface ChartSeries {
  label: string;
  samples: number[];
}

export interface ChartPanel {
  title: string;
  unit: string;
  series: ChartSeries[];
}

export interface BenchTable {
  /** signaling | concurrency | broker | connections | relay | wire-bytes */
  id: string;
  title: string;
  columns: string[];
  rows: string[][];
  /** How it was measured, and lines for parts that were skipped (with why). */
  notes: string[];
  /** What limited this measurement, with the evidence. */
  bottleneck?: string;
  /** Machine-readable figures for the JSON file. */
  data?: unknown;
  charts?: ChartPanel[];
  /** Seconds the measurement took. */
  seconds?: number;
  /** When it ran, and the machine's 1-minute load average then (a shared machine: say how busy it was). */
  ranAt?: string;
  loadAverage?: number;
}

export function textTable(columns: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(columns), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function markdownTable(columns: readonly string[], rows: readonly (readonly string[])[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${columns.map(esc).join(' | ')} |`,
    `|${columns.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

export function printTable(table: BenchTable): string {
  const parts = [`\n== ${table.title} ==`, textTable(table.columns, table.rows)];
  for (const note of table.notes) parts.push(`  · ${note}`);
  if (table.bottleneck) parts.push(`  bottleneck: ${table.bottleneck}`);
  return parts.join('\n');
}

export function markdownSection(table: BenchTable, index: number): string {
  const when = table.ranAt ? `Ran ${table.ranAt.replace('T', ' ').slice(0, 19)} UTC in ${table.seconds ?? '?'} s; machine load average ${table.loadAverage ?? '?'} (1 min) when it started.` : '';
  const parts = [`## ${index}. ${table.title}`, '', ...(when ? [when, ''] : []), markdownTable(table.columns, table.rows), ''];
  for (const note of table.notes) parts.push(`- ${note}`);
  if (table.bottleneck) parts.push(`- **Bottleneck:** ${table.bottleneck}`);
  parts.push('');
  return parts.join('\n');
}
