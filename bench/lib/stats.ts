/**
 * Order statistics for benchmark samples. Every figure the suite prints is a median with p95/p99 over many runs,
 * and every comparison is a ratio against a baseline measured in the same run (these machines are shared and noisy).
 */

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of sorted samples (p in 0…100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const n = sorted.length;
  return {
    n,
    min: sorted[0] ?? Number.NaN,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[n - 1] ?? Number.NaN,
    mean: n === 0 ? Number.NaN : sorted.reduce((a, b) => a + b, 0) / n,
  };
}

/** value / baseline, NaN when either is missing. */
export function ratio(value: number, baseline: number): number {
  return Number.isFinite(value) && Number.isFinite(baseline) && baseline !== 0 ? value / baseline : Number.NaN;
}

/** Fixed decimals, or "–" for a missing figure. */
export function fmt(value: number | undefined, digits = 1): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  return value.toFixed(digits);
}

/** 12345 → "12 345": large counts stay readable in tables. */
export function fmtInt(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  return Math.round(value).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

export function fmtRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : '–';
}

/** "p50 / p95 / p99" in one cell. */
export function fmtDist(s: Summary, digits = 1): string {
  return `${fmt(s.p50, digits)} / ${fmt(s.p95, digits)} / ${fmt(s.p99, digits)}`;
}

/** Wall-clock milliseconds with sub-millisecond resolution that two processes on one machine agree on. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}
