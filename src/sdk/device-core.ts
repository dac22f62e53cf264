/**
 * The browser-safe part of the device SDK, shared by `tali/device` in Node (./device.ts) and in browsers
 * (./device-browser.ts): the MQTT link (DeviceClient) and the session keeper that drives any DevicePeer.
 */
export * from './client.ts';
export { DeviceClient, type DeviceCard, type DeviceClientEvents, type DeviceClientOptions, type UpBody } from '../../devices/sdk/device-client.ts';
export { SessionKeeper, type SessionCounters, type SessionKeeperEvents, type SessionKeeperOptions } from '../../devices/sdk/session-keeper.ts';
export { randomSessionId, type SessionInfo, type SessionPhase, type SessionTimeline } from '../../devices/sdk/camera-session.ts';
export type { DevicePeer, DevicePeerFactory, DevicePeerState } from '../../devices/sdk/device-peer.ts';
