/**
 * The status card the bridge keeps for a libpeer device, which publishes none itself: online when it subscribes to
 * its invoke topic, offline when its connection ends (by the adapter, or as the will the broker gives its connection).
 */
import { encode } from '../../protocol/codec.ts';
import { PROTOCOL_VERSION } from '../../protocol/topics.ts';

export function libpeerCard(state: 'online' | 'offline', ts = Date.now()): string {
  return encode({ v: PROTOCOL_VERSION, type: 'status', ts, state, sdk: 'libpeer' });
}
