/**
 * Receive statistics of the watched video from RTCPeerConnection.getStats(), once a second: bitrate and frame rate
 * drawn as two lines on a canvas (the last minute), and the running numbers beside it. The numbers also sit in
 * data-* attributes, which is how the end-to-end tests read framesDecoded.
 */
import { el } from './dom.ts';

export interface VideoSample {
  at: number;
  kbps: number;
  fps: number;
  framesDecoded: number;
  framesDropped: number;
  packetsLost: number;
  width: number;
  height: number;
  codec: string;
}

const WINDOW = 60;

export class StatsChart {
  readonly #canvas: HTMLCanvasElement;
  readonly #numbers: HTMLElement;
  readonly #samples: VideoSample[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #last: { at: number; bytes: number; frames: number } | undefined;
  #pc: RTCPeerConnection | undefined;

  constructor(canvas: HTMLCanvasElement, numbers: HTMLElement) {
    this.#canvas = canvas;
    this.#numbers = numbers;
  }

  /** Samples `pc` every second until stop() or the next follow(). */
  follow(pc: RTCPeerConnection): void {
    this.stop();
    this.#pc = pc;
    this.#samples.length = 0;
    this.#last = undefined;
    const sample = () => void this.#sample(pc);
    this.#timer = setInterval(sample, 1000);
    sample();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#pc = undefined;
  }

  async #sample(pc: RTCPeerConnection): Promise<void> {
    if (pc.connectionState === 'closed') return;
    const report = await pc.getStats();
    let inbound: Record<string, number | string> | undefined;
    const byId = new Map<string, Record<string, number | string>>();
    report.forEach((entry: Record<string, number | string>) => {
      byId.set(entry.id as string, entry);
      if (entry.type === 'inbound-rtp' && entry.kind === 'video') inbound = entry;
    });
    if (inbound === undefined || pc !== this.#pc) return; // no video yet, or a report of a connection no longer followed
    const at = performance.now();
    const bytes = Number(inbound.bytesReceived ?? 0);
    const frames = Number(inbound.framesDecoded ?? 0);
    const last = this.#last;
    const seconds = last ? (at - last.at) / 1000 : 0;
    this.#last = { at, bytes, frames };
    const codec = byId.get(inbound.codecId as string)?.mimeType;
    const s: VideoSample = {
      at,
      kbps: last && seconds > 0 ? ((bytes - last.bytes) * 8) / 1000 / seconds : 0,
      fps: Number(inbound.framesPerSecond ?? (last && seconds > 0 ? (frames - last.frames) / seconds : 0)),
      framesDecoded: frames,
      framesDropped: Number(inbound.framesDropped ?? 0),
      packetsLost: Number(inbound.packetsLost ?? 0),
      width: Number(inbound.frameWidth ?? 0),
      height: Number(inbound.frameHeight ?? 0),
      codec: typeof codec === 'string' ? codec.replace('video/', '') : '',
    };
    this.#samples.push(s);
    if (this.#samples.length > WINDOW) this.#samples.shift();
    this.#render(s);
  }

  #render(s: VideoSample): void {
    const rows: [string, string, string][] = [
      ['bitrate', `${s.kbps.toFixed(0)} kbit/s`, 'kbps'],
      ['frame rate', `${s.fps.toFixed(1)} fps`, 'fps'],
      ['decoded', String(s.framesDecoded), 'frames-decoded'],
      ['dropped', String(s.framesDropped), 'frames-dropped'],
      ['lost', String(s.packetsLost), 'packets-lost'],
      ['size', s.width ? `${s.width}×${s.height}` : '–', 'size'],
      ['codec', s.codec || '–', 'codec'],
    ];
    this.#numbers.replaceChildren(...rows.flatMap(([label, value]) => [el('dt', {}, label), el('dd', {}, value)]));
    this.#numbers.dataset.framesDecoded = String(s.framesDecoded);
    this.#numbers.dataset.kbps = s.kbps.toFixed(0);
    this.#numbers.dataset.fps = s.fps.toFixed(1);
    this.#draw();
  }

  #draw(): void {
    const canvas = this.#canvas;
    const ctx = canvas.getContext('2d');
    if (ctx === null) return;
    const { width, height } = canvas;
    ctx.clearRect(0, 0, width, height);
    const line = (values: number[], colour: string, label: string, row: number) => {
      const max = Math.max(1, ...values) * 1.15;
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.beginPath();
      values.forEach((v, i) => {
        const x = (i / (WINDOW - 1)) * width;
        const y = height - (v / max) * (height - 4) - 2;
        if (i === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      });
      ctx.stroke();
      ctx.fillStyle = colour;
      ctx.font = '12px system-ui, sans-serif';
      ctx.fillText(label, 6, 14 * row);
    };
    const last = this.#samples.at(-1);
    line(this.#samples.map((s) => s.kbps), '#0969da', `kbit/s ${last?.kbps.toFixed(0) ?? ''}`, 1);
    line(this.#samples.map((s) => s.fps), '#bf3989', `fps ${last?.fps.toFixed(1) ?? ''}`, 2);
  }
}
