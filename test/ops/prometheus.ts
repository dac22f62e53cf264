/** Scrapes a Prometheus text endpoint and reads samples by name and labels. */
import { eventually } from '../helpers/wait.ts';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  text: string;
  samples: Sample[];
  /** The one sample with this name whose labels include `labels`; undefined if none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

export async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  const text = await res.text();
  const samples = parse(text);
  return {
    text,
    samples,
    value: (name, labels = {}) =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value,
  };
}

export function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Video packets the bridge at `httpPort` has received (its /metrics refreshes the media workers' counters first). */
export async function receivedVideoPackets(httpPort: number): Promise<number> {
  return (await scrape(`http://127.0.0.1:${httpPort}/metrics`)).value('tali_rtp_received_packets_total', { kind: 'video' }) ?? 0;
}

/**
 * Waits until the bridge at `httpPort` has received `sent` video packets: what a camera says it sent is ahead of what a
 * bridge behind on its sockets (a busy media worker on a loaded machine) has read, by seconds under load.
 */
export async function untilReceived(httpPort: number, sent: number): Promise<void> {
  await eventually(async () => (await receivedVideoPackets(httpPort)) >= sent, 10_000, `the bridge to have received the ${sent} video packets sent`);
}
