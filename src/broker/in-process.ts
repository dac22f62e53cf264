/**
 * An in-process MQTT connection for the bridge's own client (answerer, relay): a pair of linked streams, one end
 * given to the broker, the other to mqtt.js. The bridge thus speaks plain MQTT to its embedded broker, exactly as it
 * would over TCP to an external one, with no socket in between. Only this folder can create one, so only the bridge
 * gets the internal identity.
 */
import { duplexPair, type Duplex } from 'node:stream';
import type { Broker } from './broker.ts';

export function connectInProcess(broker: Broker): Duplex {
  const [clientEnd, brokerEnd] = duplexPair();
  // A linked pair only passes data and EOF; a destroy on one side (Aedes destroys its end on close) must end the
  // other too, as a socket's would, or the client waits for 'close' forever.
  brokerEnd.once('close', () => clientEnd.destroy());
  clientEnd.once('close', () => brokerEnd.destroy());
  broker.accept(brokerEnd, 'internal', 'internal');
  return clientEnd;
}
