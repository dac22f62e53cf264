/**
 * Protocol v1, shared by the bridge, devices/ and the dashboard. Imports neither werift nor Aedes, nor anything
 * Node-only: it runs in firmware test harnesses, browsers and the bridge alike.
 */
export * from './candidate.ts';
export * from './client-ids.ts';
export * from './codec.ts';
export * from './errors.ts';
export * from './limits.ts';
export * from './messages.ts';
export * from './sequence.ts';
export * from './topics.ts';
