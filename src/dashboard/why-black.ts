/**
 * Why the player shows no picture, in words, from what the page knows: the bridge connection, the camera's card, the
 * watch's and the stream's state, an error from the bridge, the browser refusing to play. Empty when it plays.
 */
import type { DeviceEntry } from '../viewer/device-directory.ts';
import type { StreamState, WatchState } from '../viewer/watch-session.ts';
import { ago, clock } from './dom.ts';

export interface PlayerFacts {
  deviceId: string;
  /** ms since the epoch the MQTT connection dropped; undefined while connected. */
  unreachableSince: number | undefined;
  /** The camera's card is known (undefined: no card, yet or ever). */
  entry: DeviceEntry | undefined;
  /** No card came although the retained cards had time to arrive: no such camera (or not for this login). */
  unknown: boolean;
  watch: WatchState | undefined;
  stream: StreamState | undefined;
  error: { code: string; message: string } | undefined;
  playing: boolean;
  autoplayBlocked: boolean;
}

export function whyBlack(f: PlayerFacts, now = Date.now()): string {
  if (f.unreachableSince !== undefined) return `The bridge is unreachable since ${clock(f.unreachableSince)} (${ago(f.unreachableSince, now)}): reconnecting. What this page shows may be out of date.`;
  if (f.unknown) return `No camera named ${f.deviceId} on this bridge (or not one this login may see).`;
  if (f.playing) return f.autoplayBlocked ? 'The browser did not start the video by itself: press play.' : '';
  if (f.error) return `The bridge refused: ${f.error.message} (${f.error.code}).`;
  if (f.watch === 'failed') return 'The watch failed; open the camera again.';
  const status = f.entry?.status;
  if (status?.state === 'offline') return `${f.deviceId} is offline (last seen ${ago(status.ts, now)}): the picture comes back when it reconnects.`;
  if (f.stream === 'ended') return `${f.deviceId} stopped streaming: waiting for it to come back.`;
  if (f.stream === 'waiting' || f.watch === 'waiting') return `Waiting for ${f.deviceId} to send video (the bridge asked it to start).`;
  if (f.watch === 'retrying') return 'The watch is being set up again after a failure.';
  if (f.watch === 'connected') return 'Connected: waiting for the first picture (a keyframe).';
  if (f.watch === 'answered') return 'Connecting the media path (ICE and DTLS)…';
  return 'Asking the bridge for the video…';
}
