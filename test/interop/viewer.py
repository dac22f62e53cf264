#!/usr/bin/python3
"""A viewer on aiortc (Debian python3-aiortc 1.4), written from docs/protocol.md alone (section 16): connects as a
viewer, reads the camera's status card, sends `watch` with a recvonly offer, follows `stream`, applies the answer,
and decodes the video. Prints one JSON event per line on stdout (online, watch, stream, answer, connected, frame,
frames (every 10th), bye, error, ...); "quit" on stdin (or end of input) sends `bye` and disconnects; "stats <tag>"
prints a "stats" event with that tag: aiortc's inbound-rtp counts for the video (packetsReceived, packetsLost: its
RTCP receiver report's cumulative loss, RFC 3550 §6.4.1, so a retransmission that fills a gap makes it smaller), the
frames decoded, the last decoded frame's pts (90 kHz, from 0) and the longest wait between two decoded frames since
the previous "stats".

aiortc 1.4 traps, worked around here: it rejects an answer whose audio section was refused with port 0, which the
bridge does when the camera has no audio, so audio is asked for only when the camera's card lists an audio codec;
it offers no 127.0.0.1 candidates (the bridge must be reached on another address).
"""
import argparse
import asyncio
import os
import secrets
import sys
import time

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from tali_signaling import PROTOCOL_VERSION, Session, Signaling, event, first_mid, now_ms, strip_candidates


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--secret", default=os.environ.get("TALI_SECRET"), help="password or viewer token (default $TALI_SECRET)")
    parser.add_argument("--root", default="tali")
    parser.add_argument("--device", required=True)
    parser.add_argument("--audio", action="store_true", help="ask for audio if the camera has some")
    parser.add_argument("--trickle", action="store_true")
    args = parser.parse_args()

    # Section 16: the client ID is the user name, or the user name, ":" and a suffix; it is also the last level but
    # one of this connection's own topics.
    client_id = "%s:%s" % (args.user, secrets.token_hex(4))
    viewer = "%s/v1/viewer/%s/%s" % (args.root, args.user, client_id)
    up, down = viewer + "/up", viewer + "/down"
    camera_status = "%s/v1/device/%s/status" % (args.root, args.device)
    # Section 16.1: a random secret in every watch, which only lets a later connection of ours adopt the session.
    connection = "c-" + secrets.token_urlsafe(9)
    will = {"v": PROTOCOL_VERSION, "type": "leave", "ts": now_ms()}
    sig = Signaling(args.url, client_id, args.user, args.secret, will=(up, will, False))
    await sig.connect([down, camera_status, "%s/v1/bridge/+/status" % args.root])
    event("online")

    # The camera's retained card says which codecs it sends (section 5.7).
    card = None
    while card is None:
        topic, message = await sig.next(10)
        if topic == camera_status:
            card = message
    camera_audio = (card.get("codecs") or {}).get("audio") or []
    want_audio = args.audio and len(camera_audio) > 0

    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    if want_audio:
        pc.addTransceiver("audio", direction="recvonly")
    started = 0.0
    frames = {"video": 0, "audio": 0}
    video = {"pts": None, "at": None, "longest_wait": 0.0}

    @pc.on("track")
    def on_track(track):
        async def consume():
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                frames[track.kind] += 1
                if track.kind == "video":
                    now = time.monotonic()
                    if video["at"] is not None:
                        video["longest_wait"] = max(video["longest_wait"], now - video["at"])
                    video["pts"], video["at"] = frame.pts, now
                if track.kind == "video" and frames["video"] == 1:
                    event("frame", ms=round((time.monotonic() - started) * 1000), width=frame.width, height=frame.height)
                elif track.kind == "video" and frames["video"] % 10 == 0:
                    event("frames", count=frames["video"])

        event("track", kind=track.kind)
        asyncio.ensure_future(consume())

    @pc.on("connectionstatechange")
    def on_state():
        if pc.connectionState == "connected":
            event("connected", ms=round((time.monotonic() - started) * 1000))

    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    session = Session()
    started = time.monotonic()
    if args.trickle:
        bare, candidates = strip_candidates(sdp)
        sig.publish(up, session.message("watch", deviceId=args.device, sdp=bare, connection=connection))
        for c in candidates:
            sig.publish(up, session.message("candidate", candidate=c, sdpMid=first_mid(sdp), sdpMLineIndex=0))
    else:
        sig.publish(up, session.message("watch", deviceId=args.device, sdp=sdp, connection=connection))
    sig.publish(up, session.message("candidate", endOfCandidates=True))
    event("watch", sessionId=session.id, audio=want_audio, trickle=args.trickle)

    quit_requested = asyncio.get_running_loop().create_future()

    async def report(tag):
        inbound = {}
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video":
                for stats in (await transceiver.receiver.getStats()).values():
                    if stats.type == "inbound-rtp":
                        inbound = {"ssrc": stats.ssrc, "packetsReceived": stats.packetsReceived, "packetsLost": stats.packetsLost}
        longest, video["longest_wait"] = video["longest_wait"], 0.0
        event("stats", tag=tag, frames=frames["video"], pts=video["pts"], longestWaitMs=round(longest * 1000), **inbound)

    async def read_stdin():
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line or line.strip() == b"quit":
                quit_requested.done() or quit_requested.set_result(True)
                return
            words = line.decode().split()
            if words[:1] == ["stats"]:
                await report(" ".join(words[1:]))

    stdin_task = asyncio.ensure_future(read_stdin())  # kept: asyncio holds tasks weakly
    incoming = asyncio.ensure_future(sig.next())
    while True:
        done, _ = await asyncio.wait([incoming, quit_requested], return_when=asyncio.FIRST_COMPLETED)
        if quit_requested in done:
            break
        topic, message = incoming.result()
        incoming = asyncio.ensure_future(sig.next())
        if topic == "disconnected":
            event("disconnected", rc=message)
            break
        if topic != down:
            continue
        kind = message.get("type")
        if kind == "error":
            event("error", code=message.get("code"), ref=message.get("ref"), message=message.get("message"))
            continue
        if not session.fresh(message):
            continue
        if kind == "stream":
            event("stream", state=message.get("state"), seq=message.get("seq"))
        elif kind == "answer":
            await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="answer"))
            # rtx: whether the answer negotiated RFC 4588 retransmission streams (else resends reuse the media SSRC).
            rtx = " rtx/" in message["sdp"].lower()
            event("answer", seq=message.get("seq"), ms=round((time.monotonic() - started) * 1000), rtx=rtx)
        elif kind == "candidate" and "candidate" in message:
            candidate = candidate_from_sdp(message["candidate"].split(":", 1)[1])
            candidate.sdpMid = message.get("sdpMid")
            candidate.sdpMLineIndex = message.get("sdpMLineIndex")
            await pc.addIceCandidate(candidate)
        elif kind == "bye":
            event("bye", reason=message.get("reason"))
            session = None
            break
    stdin_task.cancel()
    if session is not None:  # not after the bridge's own bye (section 5.4)
        await sig.flushed(sig.publish(up, session.message("bye", reason="normal")))
    await pc.close()
    sig.close()
    event("stopped", frames=frames["video"])


if __name__ == "__main__":
    asyncio.run(main())
