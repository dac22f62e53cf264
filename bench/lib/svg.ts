/**
 * A small SVG writer for the suite's chart: per panel, one horizontal box plot per series (box p25–p75, whiskers
 * p5–p95, a bar at the median, a diamond at p99), on a linear axis from 0. No charting dependency.
 */
import type { ChartPanel } from './report.ts';
import { percentile } from './stats.ts';

const WIDTH = 900;
const LABEL = 230;
const ROW = 26;
const PANEL_HEAD = 34;
const AXIS = 30;
const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#9c755f'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A "nice" axis end: 1, 2, 2.5 or 5 × 10^k at or above `max`. */
function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const base = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * base >= max) return m * base;
  return 10 * base;
}

export function boxPlotSvg(title: string, panels: readonly ChartPanel[]): string {
  const shown = panels.filter((p) => p.series.some((s) => s.samples.length > 0));
  const heights = shown.map((p) => PANEL_HEAD + p.series.length * ROW + AXIS);
  const total = 40 + heights.reduce((a, b) => a + b, 0) + 10;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${total}" viewBox="0 0 ${WIDTH} ${total}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="24" font-size="16" font-weight="bold">${esc(title)}</text>`,
  ];
  let y = 40;
  shown.forEach((panel, pi) => {
    const plotW = WIDTH - LABEL - 30;
    const stats = panel.series.map((s) => {
      const sorted = [...s.samples].sort((a, b) => a - b);
      return {
        label: s.label,
        n: sorted.length,
        p5: percentile(sorted, 5),
        p25: percentile(sorted, 25),
        p50: percentile(sorted, 50),
        p75: percentile(sorted, 75),
        p95: percentile(sorted, 95),
        p99: percentile(sorted, 99),
      };
    });
    const max = niceMax(Math.max(...stats.map((s) => (Number.isFinite(s.p99) ? s.p99 : 0))) * 1.05);
    const x = (v: number) => LABEL + (Math.max(0, Math.min(v, max)) / max) * plotW;
    out.push(`<text x="10" y="${y + 20}" font-size="13" font-weight="bold">${esc(panel.title)} (${esc(panel.unit)})</text>`);
    const top = y + PANEL_HEAD;
    stats.forEach((s, i) => {
      const cy = top + i * ROW + ROW / 2;
      const color = COLORS[i % COLORS.length];
      out.push(`<text x="${LABEL - 8}" y="${cy + 4}" text-anchor="end">${esc(s.label)} (n=${s.n})</text>`);
      if (s.n === 0) return;
      out.push(`<line x1="${x(s.p5)}" x2="${x(s.p95)}" y1="${cy}" y2="${cy}" stroke="#555"/>`);
      out.push(`<line x1="${x(s.p5)}" x2="${x(s.p5)}" y1="${cy - 5}" y2="${cy + 5}" stroke="#555"/>`);
      out.push(`<line x1="${x(s.p95)}" x2="${x(s.p95)}" y1="${cy - 5}" y2="${cy + 5}" stroke="#555"/>`);
      out.push(
        `<rect x="${x(s.p25)}" y="${cy - 8}" width="${Math.max(1, x(s.p75) - x(s.p25))}" height="16" fill="${color}" fill-opacity="0.55" stroke="${color}"/>`,
      );
      out.push(`<line x1="${x(s.p50)}" x2="${x(s.p50)}" y1="${cy - 9}" y2="${cy + 9}" stroke="black" stroke-width="2"/>`);
      const d = x(s.p99);
      out.push(`<path d="M${d} ${cy - 5} L${d + 5} ${cy} L${d} ${cy + 5} L${d - 5} ${cy} Z" fill="#c00"/>`);
    });
    const axisY = top + stats.length * ROW + 4;
    out.push(`<line x1="${LABEL}" x2="${LABEL + plotW}" y1="${axisY}" y2="${axisY}" stroke="#999"/>`);
    for (let t = 0; t <= 5; t++) {
      const v = (max * t) / 5;
      const tx = x(v);
      out.push(`<line x1="${tx}" x2="${tx}" y1="${top - 4}" y2="${axisY + 4}" stroke="#ddd"/>`);
      out.push(`<text x="${tx}" y="${axisY + 17}" text-anchor="middle" fill="#444">${Number(v.toPrecision(3))}</text>`);
    }
    y += heights[pi] as number;
  });
  out.push(
    `<text x="${WIDTH - 10}" y="${total - 6}" text-anchor="end" fill="#666" font-size="11">box p25–p75 · whiskers p5–p95 · bar median · red diamond p99</text>`,
  );
  out.push('</svg>');
  return out.join('\n');
}
