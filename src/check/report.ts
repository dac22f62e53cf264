/**
 * The check's report for people: one line per rule (verdict, protocol section, rule, what it asks), then what was
 * seen under each. `--json` prints the CheckReport itself.
 */
import type { CheckReport } from './checker.ts';

const LABEL = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' } as const;

export function formatReport(report: CheckReport): string {
  const bridge = report.bridge ? `bridge ${report.bridge.bridgeId} (tali ${report.bridge.version})` : 'a bridge that showed no card';
  const verdict = report.verdict === 'incomplete' ? 'INCOMPLETE: the device did not connect' : report.verdict.toUpperCase();
  const lines = [`tali check-device ${report.deviceId} against ${bridge}: ${verdict} (${(report.durationMs / 1000).toFixed(1)} s)`, ''];
  const idWidth = Math.max(...report.rules.map((r) => r.id.length));
  const sectionWidth = Math.max(...report.rules.map((r) => r.section.length));
  for (const rule of report.rules) {
    lines.push(`${LABEL[rule.verdict]}  ${rule.section.padEnd(sectionWidth)}  ${rule.id.padEnd(idWidth)}  ${rule.title}`);
    for (const detail of rule.details) lines.push(`      ${detail}`);
  }
  const counts = (['pass', 'fail', 'skip'] as const).map((v) => `${report.rules.filter((r) => r.verdict === v).length} ${v === 'skip' ? 'not observed' : v === 'pass' ? 'passed' : 'failed'}`);
  lines.push('', counts.join(', '));
  return `${lines.join('\n')}\n`;
}
