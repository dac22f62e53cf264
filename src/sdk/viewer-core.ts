/**
 * The browser-safe part of the viewer SDK, shared by `tali/viewer` in Node (./viewer.ts) and in browsers
 * (./viewer-browser.ts): ViewerClient (MQTT link as a viewer or admin, device cards) and WatchSession (one camera
 * watched through the bridge's relay, watched again after failures).
 */
export * from './client.ts';
export { ViewerClient, type Credential, type SignalRecord, type ViewerClientEvents, type ViewerClientOptions } from '../viewer/viewer-client.ts';
export { WatchSession, type StreamState, type WatchEvents, type WatchOptions, type WatchState, type WatchTimeline } from '../viewer/watch-session.ts';
export type { ViewerPeer, ViewerPeerFactory, ViewerPeerState } from '../viewer/viewer-peer.ts';
export type { DeviceEntry } from '../viewer/device-directory.ts';
