/**
 * `tali/viewer` in browsers (the `browser` export condition): the viewer SDK with mqtt.js's browser build over
 * WebSocket and a receive-only RTCPeerConnection whose media is one MediaStream for a <video>. For a page that only
 * shows a camera, `<tali-player>` (`tali/player`) does all of this.
 */
export * from './viewer-core.ts';
export { browserConnector, mqttUrlFor } from '../client/browser-connector.ts';
export { BrowserOffererPeer } from '../client/browser-offerer-peer.ts';
export { BrowserViewerPeer } from '../player/browser-viewer-peer.ts';
