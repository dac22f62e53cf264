/**
 * `tali/viewer` in Node: the viewer SDK with a werift receive-only peer that counts what arrives (WeriftViewerPeer),
 * NodeViewer (what `tali watch` runs: ViewerClient + WatchSession + WeriftViewerPeer in one object) and the Node MQTT
 * connector.
 */
export * from './viewer-core.ts';
export { nodeConnector, type NodeConnectorOptions } from '../client/node-connector.ts';
export { WeriftViewerPeer, type ReceivedTrack, type WeriftViewerPeerOptions } from '../webrtc/werift-viewer-peer.ts';
export { NodeViewer, type NodeViewerOptions, type NodeViewerSummary } from '../viewer/node-viewer.ts';
