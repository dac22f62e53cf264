/**
 * Bad input from a device gets an `error` with a stable code on that device's down topic, is logged once, and
 * costs nobody else anything. Run over MQTT/TCP and MQTT/WebSocket.
 */
import { describe, expect, it } from 'vitest';
import { startBridge, TRANSPORTS, type TestBridge } from '../helpers/bridge.ts';
import { createOfferer } from '../helpers/offerer.ts';
import { connectRawDevice, type RawDevice } from '../helpers/raw-device.ts';

const VP9_ONLY_SDP_MARKER = 'VP9';

describe.each(TRANSPORTS)('bad input over %s', (transport) => {
  async function setup(): Promise<{ tb: TestBridge; cam: RawDevice }> {
    const tb = await startBridge({ maxMessageBytes: 4096 });
    const cam = await connectRawDevice(tb, transport);
    return { tb, cam };
  }

  async function expectError(cam: RawDevice, code: string): Promise<Record<string, unknown>> {
    return cam.down.next((m) => m.type === 'error' && m.code === code, 5000, code);
  }

  it.each([
    ['not JSON', '{"v":1,', 'TALI_ERR_MALFORMED_JSON'],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'TALI_ERR_MALFORMED_JSON'],
    ['a JSON array', '[1,2]', 'TALI_ERR_MALFORMED_JSON'],
    ['no version', '{"type":"offer"}', 'TALI_ERR_INVALID_MESSAGE'],
    ['protocol version 2', '{"v":2,"type":"offer","sessionId":"abcdefgh","seq":1,"ts":1}', 'TALI_ERR_UNSUPPORTED_VERSION'],
    ['an unknown type', '{"v":1,"type":"hello","sessionId":"abcdefgh","seq":3,"ts":1}', 'TALI_ERR_UNKNOWN_TYPE'],
    ['an answer (bridge → device only)', '{"v":1,"type":"answer","sessionId":"abcdefgh","seq":1,"ts":1,"sdp":"v=0"}', 'TALI_ERR_UNEXPECTED_TYPE'],
    ['a bad sessionId', `{"v":1,"type":"bye","sessionId":"a/b","seq":1,"ts":${Date.now()}}`, 'TALI_ERR_INVALID_MESSAGE'],
  ])('%s', async (_what, payload, code) => {
    const { tb, cam } = await setup();
    await cam.send(payload);
    const error = await expectError(cam, code);
    expect(error).toMatchObject({ v: 1, type: 'error', code });
    expect(typeof error.message).toBe('string');
    expect(tb.logs.filter((l) => l.event === 'rejected' && l.code === code)).toHaveLength(1);
  });

  it('an oversized payload', async () => {
    const { cam } = await setup();
    await cam.send(cam.message('offer', 'big-session', 1, { sdp: `v=0\r\n${'a=x\r\n'.repeat(2000)}` }));
    await expectError(cam, 'TALI_ERR_PAYLOAD_TOO_LARGE');
  });

  it('an error names the rejected message', async () => {
    const { cam } = await setup();
    await cam.send('{"v":1,"type":"hello","sessionId":"sess-ref-1","seq":7,"ts":1}');
    const error = await expectError(cam, 'TALI_ERR_UNKNOWN_TYPE');
    expect(error).toMatchObject({ sessionId: 'sess-ref-1', ref: { type: 'hello', seq: 7 } });
  });

  it('SDP that is not SDP, SDP without DTLS, an m= section without a=mid', async () => {
    const { cam } = await setup();
    await cam.send(cam.message('offer', 'sess-bad-sdp', 1, { sdp: 'hello world' }));
    expect((await expectError(cam, 'TALI_ERR_INVALID_SDP')).sessionId).toBe('sess-bad-sdp');
    const { sdp } = await createOfferer();
    await cam.send(cam.message('offer', 'sess-no-dtls', 1, { sdp: sdp.replace(/^a=fingerprint:.*\r\n/gm, '') }));
    expect((await expectError(cam, 'TALI_ERR_INVALID_SDP')).message).toMatch(/fingerprint/);
    await cam.send(cam.message('offer', 'sess-no-mid', 1, { sdp: sdp.replace(/^a=mid:.*\r\n/gm, '') }));
    expect((await expectError(cam, 'TALI_ERR_INVALID_SDP')).message).toMatch(/a=mid/);
  });

  it('an offer with no codec the bridge receives', async () => {
    const { tb, cam } = await setup();
    const { sdp } = await createOfferer();
    const vp9 = sdp.replace(/VP8\/90000/g, `${VP9_ONLY_SDP_MARKER}/90000`);
    await cam.send(cam.message('offer', 'sess-vp9', 1, { sdp: vp9 }));
    await expectError(cam, 'TALI_ERR_NO_COMMON_CODEC');
    expect(tb.bridge.answerer.sessions.size).toBe(0);
  });

  it('garbage and orphan candidates', async () => {
    const { cam } = await setup();
    await cam.send(cam.message('candidate', 'sess-none', 2, { candidate: 'candidate:garbage' }));
    await expectError(cam, 'TALI_ERR_INVALID_CANDIDATE');
    await cam.send(cam.message('candidate', 'sess-none', 3, { candidate: 'candidate:1 1 udp 2130706431 192.0.2.9 5000 typ host' }));
    await expectError(cam, 'TALI_ERR_UNKNOWN_SESSION');
  });

  it('a stale message, with the bridge clock in the reply', async () => {
    const { cam } = await setup();
    const { sdp } = await createOfferer();
    const before = Date.now();
    await cam.send({ ...cam.message('offer', 'sess-stale', 1, { sdp }), ts: before - 10 * 60_000 });
    const error = await expectError(cam, 'TALI_ERR_STALE');
    expect(error.ts as number).toBeGreaterThanOrEqual(before);
  });

  it('a duplicate (same session and seq) is dropped', async () => {
    const { tb, cam } = await setup();
    const { sdp } = await createOfferer();
    const offer = cam.message('offer', 'sess-dup', 1, { sdp });
    await cam.send(offer);
    await cam.send(offer);
    await cam.down.next((m) => m.type === 'answer', 5000, 'answer');
    // Messages on one topic are handled in order: once the reply to this marker is back, the duplicate was seen.
    await cam.send('{');
    await expectError(cam, 'TALI_ERR_MALFORMED_JSON');
    expect(cam.down.messages.filter((m) => m.json?.type === 'answer')).toHaveLength(0); // the first was taken above
    expect(tb.logs.filter((l) => l.msg === 'duplicate dropped')).toHaveLength(1);
  });

  it('after all of it, the device and its neighbour still negotiate', async () => {
    const { tb, cam } = await setup();
    const neighbour = await connectRawDevice(tb, transport, 'cam2');
    for (const junk of ['{', '[]', '{"v":9}', Buffer.alloc(64, 0xff)]) await cam.send(junk);
    for (const device of [cam, neighbour]) {
      const { sdp } = await createOfferer();
      await device.send(device.message('offer', `sess-ok-${device.id}`, 1, { sdp }));
      const answer = await device.down.next((m) => m.type === 'answer', 5000, `answer for ${device.id}`);
      expect(answer.sdp).toMatch(/^v=0/);
    }
    expect(neighbour.down.messages.filter((m) => m.json?.type === 'error')).toHaveLength(0);
  });
});
