/**
 * Protocol v1 messages: one TypeBox schema per type. The schemas are JSON Schema (docs/protocol.schema.json is
 * generated from them) and also give the TypeScript types, so the document, the validator and the code cannot drift.
 *
 * Unknown fields are ignored, so that v1 can grow optional fields without breaking old firmware.
 */
import Type, { type Static } from 'typebox';
import { MAX_CANDIDATE_CHARS, MAX_SDP_CHARS } from './limits.ts';
import { PROTOCOL_VERSION } from './topics.ts';

const Version = Type.Literal(PROTOCOL_VERSION, { description: 'protocol version' });
const Timestamp = Type.Integer({
  minimum: 0,
  maximum: Number.MAX_SAFE_INTEGER,
  description: "sender's clock, milliseconds since the Unix epoch (see Clocks)",
});
export const SESSION_ID_PATTERN = '^[A-Za-z0-9_-]{8,64}$';
const SessionId = Type.String({
  pattern: SESSION_ID_PATTERN,
  description: 'chosen by the device for each offer; 8–64 characters from A–Z a–z 0–9 _ -',
});
const Seq = Type.Integer({
  minimum: 1,
  maximum: 2_147_483_647,
  description: "per sender and session, starting at 1; a repeated (sessionId, seq) is a duplicate",
});
const Sdp = Type.String({ minLength: 1, maxLength: MAX_SDP_CHARS, description: 'the complete SDP (RFC 8866), CRLF line ends' });
const ShortText = (description: string) => Type.String({ maxLength: 64, description });

const session = { v: Version, sessionId: SessionId, seq: Seq, ts: Timestamp };

export const Offer = Type.Object({ ...session, type: Type.Literal('offer'), sdp: Sdp }, { title: 'offer' });
export const Answer = Type.Object(
  {
    ...session,
    type: Type.Literal('answer'),
    sdp: Sdp,
    bridgeId: Type.Optional(
      ShortText('the bridge node that answered and now serves this session (its media comes from there); when its card goes offline the session is gone'),
    ),
  },
  { title: 'answer' },
);

export const Candidate = Type.Object(
  {
    ...session,
    type: Type.Literal('candidate'),
    candidate: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_CANDIDATE_CHARS,
        description: 'the a=candidate attribute value, e.g. "candidate:1 1 udp 2130706431 192.0.2.7 50000 typ host"',
      }),
    ),
    sdpMid: Type.Optional(Type.String({ maxLength: 32, description: 'a=mid of the m= section; default: the first' })),
    sdpMLineIndex: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 63, description: 'index of the m= section, from 0; used when sdpMid is absent' }),
    ),
    endOfCandidates: Type.Optional(
      Type.Literal(true, { description: 'no more candidates will follow (end-of-candidates, RFC 8838 §13); then omit candidate' }),
    ),
  },
  { title: 'candidate' },
);

export const BYE_REASONS = ['normal', 'replaced', 'timeout', 'ice-failed', 'offline', 'shutdown', 'error'] as const;
export type ByeReason = (typeof BYE_REASONS)[number];
export const Bye = Type.Object(
  { ...session, type: Type.Literal('bye'), reason: Type.Optional(ShortText(`why; one of ${BYE_REASONS.join(', ')}`)) },
  { title: 'bye' },
);

export const ErrorMessage = Type.Object(
  {
    v: Version,
    type: Type.Literal('error'),
    ts: Timestamp,
    code: Type.String({ pattern: '^TALI_ERR_[A-Z_]{1,48}$', description: 'stable code, see the error table' }),
    message: Type.String({ maxLength: 256, description: 'for humans and logs; do not parse' }),
    sessionId: Type.Optional(SessionId),
    seq: Type.Optional(Seq),
    ref: Type.Optional(
      Type.Object(
        { type: Type.Optional(ShortText('type of the rejected message')), seq: Type.Optional(Seq) },
        { description: 'the message this error is about, when it could be read' },
      ),
    ),
  },
  { title: 'error' },
);

export const Start = Type.Object(
  {
    v: Version,
    type: Type.Literal('start'),
    ts: Timestamp,
    reason: Type.Optional(ShortText('why the bridge wants media, e.g. "viewer" or "record"')),
  },
  { title: 'start', description: 'the bridge asks the device to offer; ignored if a session is live or being set up' },
);

const CodecName = Type.String({ maxLength: 16, description: 'rtpmap encoding name, e.g. VP8, H264, opus, PCMU' });
export const Status = Type.Object(
  {
    v: Version,
    type: Type.Literal('status'),
    ts: Timestamp,
    state: Type.Union([Type.Literal('online'), Type.Literal('offline')]),
    model: Type.Optional(ShortText('device model')),
    firmware: Type.Optional(ShortText('firmware version')),
    sdk: Type.Optional(ShortText('device SDK name and version')),
    codecs: Type.Optional(
      Type.Object({
        video: Type.Optional(Type.Array(CodecName, { maxItems: 8 })),
        audio: Type.Optional(Type.Array(CodecName, { maxItems: 8 })),
      }),
    ),
    lastSeen: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: Number.MAX_SAFE_INTEGER,
        description: "offline cards the bridge restored after a restart: when the device was last known connected, bridge's clock, ms since the Unix epoch",
      }),
    ),
  },
  { title: 'status', description: 'retained device card; the same card with state "offline" is the last will' },
);

export const IceServer = Type.Object({
  urls: Type.Union([Type.String({ maxLength: 256 }), Type.Array(Type.String({ maxLength: 256 }), { maxItems: 8 })]),
  username: Type.Optional(Type.String({ maxLength: 256 })),
  credential: Type.Optional(Type.String({ maxLength: 256 })),
});
export type IceServer = Static<typeof IceServer>;

export const BridgeStatus = Type.Object(
  {
    v: Version,
    type: Type.Literal('bridge-status'),
    ts: Timestamp,
    state: Type.Union([Type.Literal('online'), Type.Literal('offline')]),
    bridgeId: ShortText('the bridge node'),
    version: ShortText('tali version'),
    iceServers: Type.Array(IceServer, { maxItems: 8, description: 'STUN/TURN servers devices should use' }),
    udpPortRange: Type.Optional(
      Type.Tuple([Type.Integer({ minimum: 1, maximum: 65535 }), Type.Integer({ minimum: 1, maximum: 65535 })], {
        description: "the bridge's media ports (for firewall rules)",
      }),
    ),
    maxMessageBytes: Type.Integer({ minimum: 1, description: 'largest payload the bridge accepts from a device' }),
    iceServersPerDevice: Type.Optional(
      Type.Boolean({
        description: 'true: each device gets its own ICE servers (TURN credentials) in an `ice-servers` message on its down topic after its online card; wait for it before offering',
      }),
    ),
  },
  { title: 'bridge-status', description: "retained bridge card; devices re-offer when it goes offline → online" },
);

export const IceServers = Type.Object(
  {
    v: Version,
    type: Type.Literal('ice-servers'),
    ts: Timestamp,
    iceServers: Type.Array(IceServer, {
      maxItems: 8,
      description: 'ICE servers for this device or viewer only (TURN with time-limited credentials), used with those of the bridge card',
    }),
    expiresAt: Type.Integer({
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      description: "when these credentials stop working for new allocations, ms since the Unix epoch on the bridge's clock (compare with this message's ts)",
    }),
    iceTransportPolicy: Type.Optional(
      Type.Union([Type.Literal('all'), Type.Literal('relay')], {
        description: 'relay: gather and use TURN relay candidates only (RTCIceTransportPolicy); default all',
      }),
    ),
  },
  {
    title: 'ice-servers',
    description: 'credentials for TURN, minted for one device or viewer; a newer one replaces the older; the bridge sends devices fresh ones before these expire',
  },
);

const DeviceId = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
  description: 'the camera to watch',
});

const Connection = Type.String({
  pattern: SESSION_ID_PATTERN,
  description: "a secret the viewer chose at random and keeps across its token refreshes: an `adopt` naming it may move the session to the viewer's new connection",
});

export const Watch = Type.Object(
  { ...session, type: Type.Literal('watch'), deviceId: DeviceId, sdp: Sdp, connection: Type.Optional(Connection) },
  { title: 'watch', description: "a viewer's recvonly offer for one camera's media; answered as soon as the camera's codecs are known (at once if it has a session, else once its new offer is answered)" },
);

export const Adopt = Type.Object(
  { ...session, type: Type.Literal('adopt'), deviceId: DeviceId, connection: Connection },
  {
    title: 'adopt',
    description:
      "sent on a viewer's new connection (a token refresh): that connection takes over the session; the watch's deviceId and connection, the session's next seq. The bridge confirms with `stream` on the new connection",
  },
);

export const Stream = Type.Object(
  {
    ...session,
    type: Type.Literal('stream'),
    deviceId: DeviceId,
    state: Type.Union([Type.Literal('waiting'), Type.Literal('live'), Type.Literal('ended')], {
      description: 'waiting: the camera was asked to start; live: media flows (again); ended: the camera left',
    }),
  },
  { title: 'stream', description: "the state of the camera a viewer session watches; the session itself stays up" },
);

export const Leave = Type.Object(
  { v: Version, type: Type.Literal('leave'), ts: Timestamp },
  {
    title: 'leave',
    description: "a viewer connection ended (its last will, or said by the bridge's broker): its sessions end, those of the user's other connections do not",
  },
);

const CandidateType = (description: string) =>
  Type.Union([Type.Literal('host'), Type.Literal('srflx'), Type.Literal('prflx'), Type.Literal('relay')], { description: `${description}: its type (RFC 8445 §5.1.1)` });
const Milestone = (description: string) =>
  Type.Optional(Type.Number({ minimum: 0, maximum: 86_400_000, description: `ms after the offer: ${description}` }));
const Count = (description: string) => Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description });

export const SessionMetrics = Type.Object(
  {
    v: Version,
    type: Type.Literal('metrics'),
    ts: Timestamp,
    sessionId: SessionId,
    bridgeId: ShortText('the bridge node that answered'),
    state: Type.Union(
      [
        Type.Literal('answering'),
        Type.Literal('connecting'),
        Type.Literal('connected'),
        Type.Literal('streaming'),
        Type.Literal('closed'),
      ],
      { description: 'where the session is: answering, connecting, connected (ICE + DTLS), streaming (RTP flows), closed' },
    ),
    closeReason: Type.Optional(ShortText('why it closed: a bye reason')),
    timeline: Type.Object(
      {
        offer: Type.Literal(0, { description: 'the bridge received the offer (the origin)' }),
        answer: Milestone('answer published'),
        iceConnected: Milestone('ICE connected'),
        connected: Milestone('DTLS connected (media can flow)'),
        firstRtp: Milestone('first RTP packet'),
        firstKeyframe: Milestone('first video keyframe'),
        closed: Milestone('session closed'),
      },
      { description: "milestones in ms since the bridge received the offer, on the bridge's monotonic clock" },
    ),
    tracks: Type.Array(
      Type.Object({
        kind: Type.Union([Type.Literal('audio'), Type.Literal('video')]),
        codec: CodecName,
        packets: Count('RTP packets received'),
        bytes: Count('RTP payload bytes received'),
        keyframes: Count('keyframes received (video)'),
      }),
      { maxItems: 4, description: 'media received so far, one entry per track' },
    ),
    viewers: Type.Optional(Count('viewer sessions watching this camera through the bridge now (optional: older bridges leave it out)')),
    selectedPair: Type.Optional(
      Type.Object(
        {
          local: CandidateType("the bridge's candidate"),
          remote: CandidateType("the device's candidate"),
          protocol: Type.Union([Type.Literal('udp'), Type.Literal('tcp')]),
        },
        { description: 'the ICE candidate pair media flows over, from connected on; relay on either side: through a TURN server' },
      ),
    ),
  },
  {
    title: 'metrics',
    description: "the negotiation timeline of the device's latest session; published at each milestone and when it closes",
  },
);

export type Offer = Static<typeof Offer>;
export type Watch = Static<typeof Watch>;
export type Adopt = Static<typeof Adopt>;
export type Stream = Static<typeof Stream>;
export type Leave = Static<typeof Leave>;
export type Answer = Static<typeof Answer>;
export type Candidate = Static<typeof Candidate>;
export type Bye = Static<typeof Bye>;
export type ErrorMessage = Static<typeof ErrorMessage>;
export type Start = Static<typeof Start>;
export type Status = Static<typeof Status>;
export type BridgeStatus = Static<typeof BridgeStatus>;
export type IceServers = Static<typeof IceServers>;
/** RTCIceTransportPolicy: `relay` uses TURN relay candidates only. */
export type IceTransportPolicy = NonNullable<IceServers['iceTransportPolicy']>;
export type SessionMetrics = Static<typeof SessionMetrics>;

export const MESSAGE_SCHEMAS = {
  offer: Offer,
  answer: Answer,
  candidate: Candidate,
  bye: Bye,
  error: ErrorMessage,
  start: Start,
  status: Status,
  'bridge-status': BridgeStatus,
  'ice-servers': IceServers,
  watch: Watch,
  adopt: Adopt,
  stream: Stream,
  leave: Leave,
  metrics: SessionMetrics,
} as const;

export type MessageType = keyof typeof MESSAGE_SCHEMAS;
export type Message = Offer | Answer | Candidate | Bye | ErrorMessage | Start | Status | BridgeStatus | IceServers | Watch | Adopt | Stream | Leave | SessionMetrics;
export type SessionMessage = Offer | Answer | Candidate | Bye;
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

/** What may be published on each channel; anything else is TALI_ERR_UNEXPECTED_TYPE. */
export const CHANNEL_TYPES = {
  up: ['offer', 'candidate', 'bye', 'error'],
  down: ['answer', 'candidate', 'bye', 'error', 'start', 'ice-servers'],
  status: ['status'],
  bridge: ['bridge-status'],
  metrics: ['metrics'],
  'viewer-up': ['watch', 'adopt', 'candidate', 'bye', 'leave'],
  'viewer-down': ['answer', 'candidate', 'bye', 'error', 'stream', 'ice-servers'],
} as const satisfies Record<string, readonly MessageType[]>;
export type Channel = keyof typeof CHANNEL_TYPES;
export type MessageOnChannel<C extends Channel> = MessageOf<(typeof CHANNEL_TYPES)[C][number]>;
