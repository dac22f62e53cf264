/**
 * `tali/protocol`: protocol v1 as TypeScript types, TypeBox schemas and the edge decoder (decode/encode, topics,
 * sequence numbers, error codes). Browser-safe; imports neither werift nor Aedes.
 */
export * from '../protocol/index.ts';
