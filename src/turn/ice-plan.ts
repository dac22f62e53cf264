/**
 * Which ICE servers and transport policy each peer gets, from the options in one place:
 *
 *   the bridge card           iceServers as configured: public (STUN, or TURN the operator chose to publish)
 *   a device (ice-servers)    minted TURN credentials for its ID, policy relay if forced for it
 *   a viewer (ice-servers)    minted TURN credentials for its user name, policy relay if forced for everyone
 *   the bridge's own peers    iceServers + TURN credentials minted for the bridge's ID, with the session's policy
 *
 * Credentials are minted when used, so the bridge's own peers and each message carry a full lifetime.
 */
import type { BridgeConfig } from '../config/config.ts';
import type { IceServer, IceServers, IceTransportPolicy } from '../protocol/messages.ts';
import { PROTOCOL_VERSION } from '../protocol/topics.ts';
import { TurnCredentials } from './credentials.ts';

export interface IcePlanOptions {
  /** Servers every peer may use and the bridge card shows. */
  iceServers: readonly IceServer[];
  turn?: TurnCredentials | undefined;
  /** Forced for every peer. */
  iceTransportPolicy?: IceTransportPolicy | undefined;
  /** Devices forced to relay (their sessions, on both ends). */
  relayDevices?: '*' | readonly string[] | undefined;
  /** Identity of the bridge's own TURN credentials. */
  bridgeId: string;
  /** Longest wait of an answer for the bridge's own relay candidate (Peer relayWaitMs). */
  turnAnswerWaitMs?: number | undefined;
}

/** What a peer is created with. */
export interface PeerIce {
  iceServers: IceServer[];
  iceTransportPolicy: IceTransportPolicy;
  relayWaitMs?: number | undefined;
}

export class IcePlan {
  readonly turn: TurnCredentials | undefined;
  readonly #options: IcePlanOptions;
  /** Whether the bridge's own peers may gather TURN candidates now (see TurnProbe). */
  #bridgeTurn: () => boolean = () => true;

  constructor(options: IcePlanOptions) {
    this.#options = options;
    this.turn = options.turn;
  }

  static fromConfig(config: BridgeConfig): IcePlan {
    const turn = config.turnSecret === '' ? undefined : new TurnCredentials({ secret: config.turnSecret, urls: config.turnUrls, ttlS: config.turnTtlS });
    return new IcePlan({
      iceServers: config.iceServers,
      turn,
      iceTransportPolicy: config.iceTransportPolicy as IceTransportPolicy,
      relayDevices: config.relayDevices,
      bridgeId: config.bridgeId,
      turnAnswerWaitMs: config.turnAnswerWaitMs,
    });
  }

  /** Lets `usable` decide when the bridge's own peers use TURN (a TurnProbe: not while the server does not answer). */
  gateBridgeTurn(usable: () => boolean): void {
    this.#bridgeTurn = usable;
  }

  /** The bridge card's servers: only what every reader of the card may see. */
  get cardServers(): IceServer[] {
    return this.#options.iceServers.map((s) => ({ ...s }));
  }

  /** Whether devices get an `ice-servers` message of their own (the card says so, and devices wait for it). */
  get perDevice(): boolean {
    const relay = this.#options.relayDevices;
    return this.turn !== undefined || this.#options.iceTransportPolicy === 'relay' || relay === '*' || (relay?.length ?? 0) > 0;
  }

  /** Lifetime of minted credentials in ms (devices get fresh ones at half of it); undefined without TURN. */
  get ttlMs(): number | undefined {
    return this.turn && this.turn.ttlS * 1000;
  }

  /** The policy of a device's sessions (deviceId), or of viewer sessions (undefined). */
  policy(deviceId?: string): IceTransportPolicy {
    if (this.#options.iceTransportPolicy === 'relay') return 'relay';
    const relay = this.#options.relayDevices;
    return deviceId !== undefined && (relay === '*' || relay?.includes(deviceId) === true) ? 'relay' : 'all';
  }

  /**
   * The bridge's own peer for a device's session (deviceId) or a viewer's (undefined). A relay-only peer keeps TURN
   * whatever the probe says: without it, it has no candidate at all and its session can only time out (15 s), while a
   * probe can be wrong (one Allocate that met a busy event loop, a 5-tuple coturn still holds, its start-up window).
   * Only peers with host candidates to fall back on go without TURN while the probe says it is unusable.
   */
  bridgePeer(deviceId?: string): PeerIce {
    const iceTransportPolicy = this.policy(deviceId);
    const useTurn = iceTransportPolicy === 'relay' || this.#bridgeTurn();
    const minted = (useTurn && this.turn?.mint(this.#options.bridgeId).iceServers) || [];
    return { iceServers: [...this.cardServers, ...minted], iceTransportPolicy, relayWaitMs: this.#options.turnAnswerWaitMs };
  }

  /** The `ice-servers` message for a device; undefined when devices get none (perDevice false). */
  forDevice(deviceId: string, now = Date.now()): IceServers | undefined {
    return this.perDevice ? this.#message(deviceId, this.policy(deviceId), now) : undefined;
  }

  /** The `ice-servers` message for a viewer (user name); undefined when there is nothing of its own to tell it. */
  forViewer(user: string, now = Date.now()): IceServers | undefined {
    return this.turn !== undefined || this.#options.iceTransportPolicy === 'relay' ? this.#message(user, this.policy(), now) : undefined;
  }

  #message(identity: string, policy: IceTransportPolicy, now: number): IceServers {
    const grant = this.turn?.mint(identity);
    const message: IceServers = {
      v: PROTOCOL_VERSION,
      type: 'ice-servers',
      ts: now,
      iceServers: grant?.iceServers ?? [],
      // Without TURN of ours (static TURN in iceServers), the message only carries the policy: it does not expire.
      expiresAt: grant?.expiresAt ?? Number.MAX_SAFE_INTEGER,
    };
    if (policy === 'relay') message.iceTransportPolicy = 'relay';
    return message;
  }
}
