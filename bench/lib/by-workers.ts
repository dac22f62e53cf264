/**
 * One measurement run once per media-worker count (option mediaWorkers) in the same run, as one table: a leading
 * "media workers" column, the rows of each count in turn. Ratios between the counts are what is comparable on a
 * shared machine, not figures from different runs.
 */
import type { BenchTable } from './report.ts';

export async function runByWorkers(
  counts: number[],
  run: (mediaWorkers: number) => Promise<BenchTable>,
  summary: (table: BenchTable) => string,
): Promise<BenchTable> {
  const tables: BenchTable[] = [];
  for (const mediaWorkers of counts) tables.push(await run(mediaWorkers));
  const [first] = tables as [BenchTable];
  const label = (i: number) => `${counts[i]} media worker${counts[i] === 1 ? '' : 's'}`;
  return {
    ...first,
    columns: ['media workers', ...first.columns],
    rows: tables.flatMap((t, i) => t.rows.map((row) => [String(counts[i]), ...row])),
    notes: [
      ...first.notes,
      `Media workers 1 = every werift peer on the bridge's main thread (tali before workers); N = the peers in N worker threads (option mediaWorkers), signaling on the main thread. ${tables.map((t, i) => `${label(i)}: ${summary(t)}`).join('; ')}.`,
      ...tables.slice(1).flatMap((t, i) => t.notes.filter((n) => !first.notes.includes(n)).map((n) => `[${label(i + 1)}] ${n}`)),
    ],
    bottleneck: tables.flatMap((t, i) => (t.bottleneck ? [`[${label(i)}] ${t.bottleneck}`] : [])).join(' ') || undefined,
    data: Object.fromEntries(tables.map((t, i) => [counts[i], t.data])),
    charts: tables.flatMap((t, i) => (t.charts ?? []).map((c) => ({ ...c, title: `${c.title} (${label(i)})` }))),
  };
}
