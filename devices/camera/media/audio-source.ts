import { randomInt } from 'node:crypto';
import { RtpHeader, RtpPacket } from 'werift';
import { encodeG711 } from './g711.ts';
import type { G711Law } from './g711.ts';
import { MediaTicker } from './media-ticker.ts';

export type ToneSourceOptions = {
  codec: G711Law;
  /** Tone frequency. Defaults to 440 Hz (A4). */
  frequencyHz?: number;
  /** Peak level, 0..1 of full scale. Defaults to 0.25 (-12 dBFS): audible, far from clipping. */
  amplitude?: number;
  /** Beep instead of a continuous tone: `onMs` of tone at the start of every `periodMs`. */
  beep?: { onMs: number; periodMs: number };
  /** Defaults to a random SSRC (RFC 3550 §8.1). */
  ssrc?: number;
};

/** G.711 is 8 kHz, one byte per sample (RFC 3551 §4.5.14). */
export const G711_SAMPLE_RATE = 8000;
/** RFC 3551 §4.5 default packetization: 20 ms per packet, i.e. 160 samples. */
export const SAMPLES_PER_PACKET = 160;
/** Static payload types from RFC 3551 Table 4. */
export const G711_PAYLOAD_TYPES: Record<G711Law, number> = { PCMU: 0, PCMA: 8 };

/** A simulated camera's microphone: a generated tone, G.711-encoded, one RTP packet per 20 ms. */
export class ToneSource {
  readonly codec: G711Law;
  readonly payloadType: number;
  readonly ssrc: number;
  packetsSent = 0;
  /** RTP payload bytes, as counted in RTCP sender reports (RFC 3550 §6.4.1). */
  bytesSent = 0;

  private readonly frequencyHz: number;
  private readonly peak: number;
  private readonly beep: { onSamples: number; periodSamples: number } | undefined;
  private readonly ticker = new MediaTicker({
    ticksPerSecond: G711_SAMPLE_RATE / SAMPLES_PER_PACKET,
    rtpClockRate: G711_SAMPLE_RATE,
  });
  /** Random initial value: RFC 3550 §5.1. */
  private sequenceNumber = randomInt(2 ** 16);
  /** Index of the next sample to generate; keeps the sine's phase continuous between packets. */
  private sampleIndex = 0;

  constructor(options: ToneSourceOptions) {
    this.codec = options.codec;
    this.payloadType = G711_PAYLOAD_TYPES[options.codec];
    this.ssrc = options.ssrc ?? randomInt(2 ** 32);
    this.frequencyHz = options.frequencyHz ?? 440;
    if (!(this.frequencyHz > 0 && this.frequencyHz < G711_SAMPLE_RATE / 2)) {
      throw new Error(`ToneSource: frequencyHz must be in (0, ${G711_SAMPLE_RATE / 2}) Hz, got ${this.frequencyHz}`);
    }
    const amplitude = options.amplitude ?? 0.25;
    if (!(amplitude >= 0 && amplitude <= 1)) {
      throw new Error(`ToneSource: amplitude must be in [0, 1], got ${amplitude}`);
    }
    this.peak = Math.round(amplitude * 32767);
    if (options.beep) {
      const toSamples = (ms: number) => Math.round((ms * G711_SAMPLE_RATE) / 1000);
      this.beep = { onSamples: toSamples(options.beep.onMs), periodSamples: toSamples(options.beep.periodMs) };
      if (this.beep.periodSamples <= 0) throw new Error('ToneSource: beep.periodMs must be positive');
    }
  }

  get running(): boolean {
    return this.ticker.running;
  }

  /** Emits one packet every 20 ms, the first one on the next turn of the event loop. */
  start(onPacket: (packet: RtpPacket) => void): void {
    // RFC 3551 §4.1: the marker flags the first packet of a talkspurt, here each (re)start.
    let firstPacket = true;
    this.ticker.start((rtpTimestamp) => {
      const payload = Buffer.from(encodeG711(this.codec, this.nextSamples()).buffer);
      const header = new RtpHeader({
        payloadType: this.payloadType,
        sequenceNumber: this.sequenceNumber,
        timestamp: rtpTimestamp,
        marker: firstPacket,
        ssrc: this.ssrc,
      });
      firstPacket = false;
      this.sequenceNumber = (this.sequenceNumber + 1) & 0xffff;
      this.packetsSent++;
      this.bytesSent += payload.length;
      onPacket(new RtpPacket(header, payload));
    });
  }

  /** Stops emitting; no packet is emitted after this returns. Idempotent. */
  stop(): void {
    this.ticker.stop();
  }

  private nextSamples(): Int16Array {
    const samples = new Int16Array(SAMPLES_PER_PACKET);
    for (let i = 0; i < samples.length; i++, this.sampleIndex++) {
      const silent = this.beep !== undefined && this.sampleIndex % this.beep.periodSamples >= this.beep.onSamples;
      const phase = (2 * Math.PI * this.frequencyHz * this.sampleIndex) / G711_SAMPLE_RATE;
      samples[i] = silent ? 0 : Math.round(this.peak * Math.sin(phase));
    }
    return samples;
  }
}
