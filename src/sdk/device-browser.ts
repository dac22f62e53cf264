/**
 * `tali/device` in browsers (the `browser` export condition): DeviceClient and SessionKeeper with mqtt.js's browser
 * build over WebSocket and an RTCPeerConnection offerer to extend with the camera's tracks
 * (devices/browser-camera/browser-peer.ts is the example).
 */
export * from './device-core.ts';
export { browserConnector, mqttUrlFor } from '../client/browser-connector.ts';
export { BrowserOffererPeer } from '../client/browser-offerer-peer.ts';
