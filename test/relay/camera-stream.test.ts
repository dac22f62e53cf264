/**
 * A camera stream's upstream bookkeeping without a network (src/relay/camera-stream.ts): fake sessions and viewers
 * that emit what the real ones do, in the order they do it. A session that ends says `state: closed` (and sends its
 * bye) first and `closed` only once its peer has closed — with media in a worker thread, or a machine under load,
 * that can be long after the camera got its bye and a viewer watched again. The same through a real bridge: the
 * idleStopMs test in ./relay.test.ts.
 */
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import type { CameraSession } from '../../src/answerer/session.ts';
import { CameraStream } from '../../src/relay/camera-stream.ts';
import type { Viewer, ViewerState } from '../../src/relay/viewer.ts';

class FakeSession extends EventEmitter {
  readonly deviceId = 'cam1';
  readonly sessionId: string;
  state = 'connecting';
  readonly codecs = [{ kind: 'video', codec: 'VP8' }];
  keyframeRequests = 0;
  constructor(sessionId: string) {
    super();
    this.sessionId = sessionId;
  }
  requestKeyframe(): void {
    if (this.state !== 'closed') this.keyframeRequests++;
  }
  to(state: string): void {
    this.state = state;
    this.emit('state', state);
  }
}

class FakeViewer extends EventEmitter {
  state: ViewerState = 'waiting';
  readonly codecs = [{ kind: 'video', codec: 'VP8' }];
  readonly notified: string[] = [];
  served = 0;
  async serve(): Promise<undefined> {
    this.served++;
    this.state = 'connecting';
    return undefined;
  }
  notify(state: string): void {
    this.notified.push(state);
  }
  sourceChanged(): void {}
}

function stream(): { stream: CameraStream; starts: () => number } {
  let starts = 0;
  const created = new CameraStream({
    deviceId: 'cam1',
    keyframeIntervalMs: 0,
    keyframeRetryMs: 60_000,
    idleStopMs: 0,
    askToStart: () => starts++,
    wanted: () => false,
    logger: pino({ level: 'silent' }),
  });
  return { stream: created, starts: () => starts };
}

it('a viewer that watches after the camera session said closed, before its peer finished closing, asks the camera to start', () => {
  const { stream: s, starts } = stream();
  const first = new FakeSession('sess-1');
  s.attach(first as unknown as CameraSession);
  first.to('streaming');
  expect(s.state).toBe('live');

  first.to('closed'); // the bye is out: the camera may watch its next viewer come before `closed`
  expect(s.upstream).toBeUndefined();
  expect(s.state).toBe('ended');
  const viewer = new FakeViewer();
  s.add(viewer as unknown as Viewer);
  expect(starts()).toBe(1); // not served by the ended session, which would leave the camera idle for good
  expect(viewer.served).toBe(0);
  expect(viewer.notified).toEqual(['waiting']);

  first.emit('closed', 'normal'); // its peer closed: nothing more to do
  expect(starts()).toBe(1);

  const second = new FakeSession('sess-2');
  s.attach(second as unknown as CameraSession);
  second.to('connecting');
  expect(viewer.served).toBe(1);
  second.to('streaming');
  expect(viewer.notified).toEqual(['waiting', 'live']);
  expect(second.keyframeRequests).toBe(1);
});
