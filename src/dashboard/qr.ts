/** A QR code of `text` drawn on a canvas (uqr computes the modules; a 4-module quiet zone as ISO/IEC 18004 asks). */
import { encode } from 'uqr';

export function drawQr(canvas: HTMLCanvasElement, text: string): void {
  const { data, size } = encode(text, { ecc: 'M', border: 4 });
  const scale = Math.max(2, Math.floor(Math.min(canvas.width, canvas.height) / size));
  canvas.width = canvas.height = size * scale;
  const ctx = canvas.getContext('2d');
  if (ctx === null) return;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#000';
  data.forEach((row, y) => row.forEach((dark, x) => dark && ctx.fillRect(x * scale, y * scale, scale, scale)));
  canvas.dataset.text = text;
}
