import { describe, expect, it } from 'vitest';
import {
  assertValidId,
  assertValidRoot,
  DEVICE_CHANNELS,
  isValidId,
  MAX_ID_LENGTH,
  Topics,
  VIEWER_CHANNELS,
} from '../../src/protocol/index.ts';

describe('isValidId', () => {
  it('accepts 1 to 64 characters from [A-Za-z0-9._-] starting with a letter or digit', () => {
    for (const id of ['a', '7', 'cam-7f3a2c', 'Cam_01.front', 'a.', 'a-', 'a_', 'x'.repeat(MAX_ID_LENGTH)]) {
      expect(isValidId(id), id).toBe(true);
    }
  });

  it('rejects 65 characters', () => {
    expect(isValidId('x'.repeat(MAX_ID_LENGTH + 1))).toBe(false);
  });

  it('rejects MQTT-special and non-ASCII characters', () => {
    const bad = ['', 'a+b', '+', 'a#', '#', 'a/b', '/', 'a\u0000b', '\u0000', '$SYS', 'a$', 'a b', 'café', 'a\tb'];
    for (const id of bad) expect(isValidId(id), JSON.stringify(id)).toBe(false);
  });

  it('rejects a leading ".", "-" or "_"', () => {
    for (const id of ['.cam', '-cam', '_cam', '..', '.']) expect(isValidId(id), id).toBe(false);
  });

  it('rejects a trailing newline (the pattern anchors at the real end)', () => {
    expect(isValidId('cam1\n')).toBe(false);
  });

  it('rejects non-strings', () => {
    for (const id of [undefined, null, 1, ['cam1'], { id: 'cam1' }]) expect(isValidId(id)).toBe(false);
  });

  it('assertValidId names what was wrong', () => {
    expect(() => assertValidId('a/b', 'device ID')).toThrow(/invalid device ID "a\/b"/);
    expect(() => assertValidId('cam1')).not.toThrow();
  });
});

describe('assertValidRoot', () => {
  it('accepts one or more plain levels', () => {
    for (const root of ['tali', 'acme/cams', 'a/b/c', 'x'.repeat(128)]) expect(() => assertValidRoot(root)).not.toThrow();
  });

  it('rejects empty levels, wildcards, U+0000, a leading $ and over 128 characters', () => {
    for (const root of ['', '/tali', 'tali/', 'a//b', 'ta+li', 'tali/#', 'a\u0000', '$SYS', '$tali/x', 'x'.repeat(129)]) {
      expect(() => assertValidRoot(root), JSON.stringify(root)).toThrow(TypeError);
    }
  });

  it('Topics refuses an invalid root', () => {
    expect(() => new Topics('tali/+')).toThrow(TypeError);
  });
});

describe('Topics', () => {
  const t = new Topics();

  it('builds the documented layout under the default root', () => {
    expect(t.root).toBe('tali');
    expect(t.device('cam1', 'up')).toBe('tali/v1/device/cam1/up');
    expect(t.device('cam1', 'down')).toBe('tali/v1/device/cam1/down');
    expect(t.device('cam1', 'status')).toBe('tali/v1/device/cam1/status');
    expect(t.device('cam1', 'metrics')).toBe('tali/v1/device/cam1/metrics');
    expect(t.viewer('ann', 'ann-tab1', 'up')).toBe('tali/v1/viewer/ann/ann-tab1/up');
    expect(t.viewerConnections('ann', 'up')).toBe('tali/v1/viewer/ann/+/up');
    expect(t.bridge('bridge-1')).toBe('tali/v1/bridge/bridge-1/status');
    expect(t.allDevices('up')).toBe('tali/v1/device/+/up');
    expect(t.allViewers('up')).toBe('tali/v1/viewer/+/+/up');
    expect(t.allBridges()).toBe('tali/v1/bridge/+/status');
  });

  it('round-trips every channel through parse, also under a multi-level root', () => {
    for (const topics of [t, new Topics('acme/cams')]) {
      for (const channel of DEVICE_CHANNELS) {
        expect(topics.parse(topics.device('cam-7f3a2c', channel))).toEqual({ kind: 'device', id: 'cam-7f3a2c', channel });
      }
      for (const channel of VIEWER_CHANNELS) {
        for (const connection of ['ann.b', 'ann.b-Tab_2', 'ann.b:tab2'])
          expect(topics.parse(topics.viewer('ann.b', connection, channel))).toEqual({ kind: 'viewer', id: 'ann.b', connection, channel });
      }
      expect(topics.parse(topics.bridge('bridge-1'))).toEqual({ kind: 'bridge', id: 'bridge-1', channel: 'status' });
    }
  });

  it('accepts a 64-character ID and rejects a 65-character one', () => {
    expect(t.parse(`tali/v1/device/${'x'.repeat(64)}/up`)?.id).toHaveLength(64);
    expect(t.parse(`tali/v1/device/${'x'.repeat(65)}/up`)).toBeUndefined();
  });

  it.each([
    ['wrong root', 'other/v1/device/cam1/up'],
    ['root as a prefix of a longer level', 'talix/v1/device/cam1/up'],
    ['root missing', 'v1/device/cam1/up'],
    ['other root than configured', 'acme/cams/v1/device/cam1/up'],
    ['wrong version', 'tali/v2/device/cam1/up'],
    ['version without v', 'tali/1/device/cam1/up'],
    ['extra level', 'tali/v1/device/cam1/up/x'],
    ['trailing slash', 'tali/v1/device/cam1/up/'],
    ['missing level', 'tali/v1/device/cam1'],
    ['empty ID', 'tali/v1/device//up'],
    ['+ as ID', 'tali/v1/device/+/up'],
    ['# as channel', 'tali/v1/device/cam1/#'],
    ['+ inside ID', 'tali/v1/device/ca+m/up'],
    ['U+0000 in ID', 'tali/v1/device/ca\u0000m/up'],
    ['leading . in ID', 'tali/v1/device/.cam/up'],
    ['leading - in ID', 'tali/v1/device/-cam/up'],
    ['$ prefix', '$SYS/broker/clients'],
    ['$ before root', '$tali/v1/device/cam1/up'],
    ['$ in ID', 'tali/v1/device/$cam/up'],
    ['unknown kind', 'tali/v1/camera/cam1/up'],
    ['unknown device channel', 'tali/v1/device/cam1/sideways'],
    ['viewer has no status channel', 'tali/v1/viewer/ann/ann-1/status'],
    ['viewer topic without its connection (the layout before per-connection topics)', 'tali/v1/viewer/ann/up'],
    ['+ as a viewer connection', 'tali/v1/viewer/ann/+/up'],
    ['# as a viewer connection', 'tali/v1/viewer/ann/#'],
    ['$ in a viewer connection', 'tali/v1/viewer/ann/$ann/up'],
    ['empty viewer connection', 'tali/v1/viewer/ann//up'],
    ['viewer connection of 130 characters', `tali/v1/viewer/ann/${'a'.repeat(130)}/up`],
    ['bridge has no up channel', 'tali/v1/bridge/b1/up'],
    ['case matters', 'tali/v1/Device/cam1/up'],
    ['empty topic', ''],
  ])('parse rejects %s', (_what, topic) => {
    expect(t.parse(topic)).toBeUndefined();
  });

  it('puts the ID at a fixed level, counted by idLevel', () => {
    for (const root of ['tali', 'acme/cams/eu']) {
      const topics = new Topics(root);
      expect(topics.device('cam1', 'up').split('/')[topics.idLevel]).toBe('cam1');
      expect(topics.bridge('b1').split('/')[topics.idLevel]).toBe('b1');
    }
  });
});
