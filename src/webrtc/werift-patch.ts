/**
 * Whether the installed werift carries tali's DTLS patch (patches/, docs/werift-patches.md). `npm ci` applies it
 * (postinstall); an app that installed tali with install scripts disabled may run without it, and then DTLS does
 * not check that a peer holds its certificate's key (anyone who has seen a camera's certificate can pose as it), does
 * not survive loss, and an early ClientHello costs a retransmission: the answerer warns at start.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function weriftPatched(): boolean {
  try {
    const bundle = readFileSync(fileURLToPath(import.meta.resolve('werift')), 'utf8');
    return ['[werift-dtls-loss]', '[werift-dtls-verify]'].every((marker) => bundle.includes(marker));
  } catch {
    return false;
  }
}
