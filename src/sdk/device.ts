/**
 * `tali/device` in Node: a camera's side of the protocol. DeviceClient (MQTT link, status card, will) and
 * SessionKeeper (offers and re-offers one WebRTC session) on werift (WeriftPeer), an MQTT connector for mqtt://,
 * mqtts://, ws:// and wss://, and clip sources that loop a pre-encoded clip as RTP for demos and tests.
 */
export * from './device-core.ts';
export { nodeConnector, type NodeConnectorOptions } from '../client/node-connector.ts';
export { WeriftPeer, type WeriftPeerOptions } from '../../devices/sdk/werift-peer.ts';
export { VideoSource, DEFAULT_CLIPS, type VideoCodec, type VideoSourceOptions } from '../../devices/camera/media/video-source.ts';
export { ToneSource, type ToneSourceOptions } from '../../devices/camera/media/audio-source.ts';
export type { G711Law } from '../../devices/camera/media/g711.ts';
export { SimulatedCamera, type CameraSummary, type SimulatedCameraOptions } from '../../devices/camera/simulated-camera.ts';
