/** docs/operations.md names every metric the bridge exports, and nothing it does not. */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { BridgeMetrics } from '../../src/metrics/bridge-metrics.ts';

it('docs/operations.md lists exactly the exported metrics', () => {
  const doc = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
  const metrics = new BridgeMetrics({ bridgeId: 'b', version: 'v' });
  try {
    const exported = metrics.registry.getMetricsAsArray().map((m) => m.name).sort();
    const documented = [...new Set([...doc.matchAll(/`((?:tali|process)_[a-z_]+)`/g)].map((m) => m[1]!))].sort();
    expect(documented).toEqual(exported);
  } finally {
    metrics.close();
  }
});
