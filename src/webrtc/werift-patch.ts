/**
 * Whether the installed werift carries tali's DTLS patch (patches/, docs/werift-patches.md). `npm ci` applies it
 * (postinstall); an app that installed tali with install scripts disabled may run without it, and then DTLS does
 * not survive loss and an early ClientHello costs a retransmission: the answerer warns at start.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function weriftPatched(): boolean {
  try {
    return readFileSync(fileURLToPath(import.meta.resolve('werift')), 'utf8').includes('[werift-dtls-loss]');
  } catch {
    return false;
  }
}
