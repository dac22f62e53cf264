import type { RtpPacket } from 'werift';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ToneSource } from '../../devices/camera/media/audio-source.ts';
import { aLawToLinear, muLawToLinear } from '../../devices/camera/media/g711.ts';
import { collectPackets, expectConsecutiveSequenceNumbers, timestampSteps } from './helpers.ts';

const decoders = { PCMU: muLawToLinear, PCMA: aLawToLinear };

describe.each([
  { codec: 'PCMU' as const, payloadType: 0 },
  { codec: 'PCMA' as const, payloadType: 8 },
])('ToneSource $codec', ({ codec, payloadType }) => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends 20 ms packets of 160 samples, timestamps +160, marker on the first packet only', async () => {
    const source = new ToneSource({ codec, ssrc: 7 });
    const packets = await collectPackets(source, (packets) => packets.length === 5);

    for (const packet of packets) {
      expect(packet.header).toMatchObject({ payloadType, ssrc: 7 });
      expect(packet.payload).toHaveLength(160);
    }
    expect(packets.map((packet) => packet.header.marker)).toEqual([true, false, false, false, false]);
    expect(timestampSteps(packets)).toEqual([160, 160, 160, 160]);
    expectConsecutiveSequenceNumbers(packets);
    expect(source).toMatchObject({ packetsSent: 5, bytesSent: 5 * 160, running: false });
  });

  it('carries a continuous 440 Hz sine at the requested amplitude', async () => {
    const source = new ToneSource({ codec, amplitude: 0.5 });
    const packets = await collectPackets(source, (packets) => packets.length === 3);
    const decoded = packets.flatMap((packet) => [...packet.payload].map(decoders[codec]));

    const peak = 0.5 * 32767;
    decoded.forEach((sample, n) => {
      const expected = peak * Math.sin((2 * Math.PI * 440 * n) / 8000);
      // G.711 steps are at most 1024 at this level (half a step of error), plus rounding.
      expect(Math.abs(sample - expected), `sample ${n}`).toBeLessThanOrEqual(520);
    });
    expect(Math.max(...decoded)).toBeGreaterThan(peak * 0.95);
  });

  it('beeps: tone for onMs, then silence until the end of the period', () => {
    vi.useFakeTimers();
    const source = new ToneSource({ codec, beep: { onMs: 20, periodMs: 60 } });
    const packets: RtpPacket[] = [];
    source.start((packet) => packets.push(packet));
    vi.advanceTimersByTime(110); // packets at 0, 20, 40, 60, 80 and 100 ms
    source.stop();

    const silentCode = codec === 'PCMU' ? 0xff : 0xd5;
    const isSilent = (packet: RtpPacket) => packet.payload.every((code) => code === silentCode);
    expect(packets.map(isSilent)).toEqual([false, true, true, false, true, true]);
  });

  it('stops emitting when stop() is called, idempotently', () => {
    vi.useFakeTimers();
    const source = new ToneSource({ codec });
    const packets: RtpPacket[] = [];
    source.start((packet) => packets.push(packet));
    vi.advanceTimersByTime(50);
    source.stop();
    source.stop();
    vi.advanceTimersByTime(1000);
    expect(packets).toHaveLength(3);
  });

  it('rejects out-of-range settings', () => {
    expect(() => new ToneSource({ codec, frequencyHz: 5000 })).toThrow(/frequencyHz/);
    expect(() => new ToneSource({ codec, amplitude: 2 })).toThrow(/amplitude/);
  });
});
