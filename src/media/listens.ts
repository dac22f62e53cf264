/**
 * `on`, `once` and `off` of an EventEmitter<E>, typed per event: what a media object and its handle on the main thread
 * both offer (src/media/). An overload per event, so an EventEmitter whose events include E's (a Session also emits
 * `rtp`) satisfies it; Node's generic listener signatures do not satisfy a generic one.
 */
type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

type Overloads<E, Self> = UnionToIntersection<
  { [K in keyof E]: (event: K, listener: (...args: E[K] extends unknown[] ? E[K] : never) => void) => Self }[keyof E]
>;

export interface Listens<E, Self> {
  on: Overloads<E, Self>;
  once: Overloads<E, Self>;
  off: Overloads<E, Self>;
}
