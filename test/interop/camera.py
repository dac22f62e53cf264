#!/usr/bin/python3
"""A camera on aiortc (Debian python3-aiortc 1.4), written from docs/protocol.md alone: connects (section 3),
offers on the first online bridge card (section 6), trickles or not (section 7), streams VP8 or H264 and Opus, PCMU or
PCMA (section 13), follows bye/start/error (sections 5.4-5.6, 11).

Prints one JSON event per line on stdout (online, offer, answer, connected, bye, error, ...). Reads commands on
stdin, one per line: "reoffer" (a new offer replacing the live session), "quit" (bye, offline card, disconnect;
end of input does the same).

aiortc 1.4 traps, worked around here and not in the bridge: it offers no 127.0.0.1 candidates (the bridge must be
reached on another address), and its H264 encoder ignores keyframe requests (the stream's own keyframes come every
few frames: gop size 12 in PyAV).
"""
import argparse
import asyncio
import os
import sys
import time

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from aiortc.sdp import candidate_from_sdp
from av import VideoFrame

from tali_signaling import PROTOCOL_VERSION, Session, Signaling, event, first_mid, now_ms, strip_candidates

VIDEO = {"vp8": "video/VP8", "h264": "video/H264"}
AUDIO = {"opus": "audio/opus", "pcmu": "audio/PCMU", "pcma": "audio/PCMA"}


class MovingPicture(VideoStreamTrack):
    """320x240 at 30 fps whose brightness changes every frame, so the encoder has something to do."""

    def __init__(self):
        super().__init__()
        self.n = 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=320, height=240, format="yuv420p")
        self.n += 1
        for i, plane in enumerate(frame.planes):
            plane.update(bytes([(self.n * 3) % 256 if i == 0 else 128]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        return frame


def prefer(transceiver, kind, mime):
    codecs = [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType == mime]
    transceiver.setCodecPreferences(codecs)


class Camera:
    def __init__(self, args, sig, topics):
        self.args = args
        self.sig = sig
        self.topics = topics
        self.ice_servers = []
        self.bridge_ts = None
        self.pc = None
        self.session = None
        self.offered_at = 0.0

    async def offer(self, why):
        await self.close_peer()
        servers = [RTCIceServer(**{k: v for k, v in s.items() if k in ("urls", "username", "credential")}) for s in self.ice_servers]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self.pc = pc
        session = Session()
        self.session = session
        if self.args.video != "none":
            prefer(pc.addTransceiver(MovingPicture(), direction="sendonly"), "video", VIDEO[self.args.video])
        if self.args.audio != "none":
            prefer(pc.addTransceiver(AudioStreamTrack(), direction="sendonly"), "audio", AUDIO[self.args.audio])

        @pc.on("connectionstatechange")
        def on_state():
            if self.session is session:
                event("state", sessionId=session.id, state=pc.connectionState, ms=round((time.monotonic() - self.offered_at) * 1000))
                if pc.connectionState == "connected":
                    event("connected", sessionId=session.id, ms=round((time.monotonic() - self.offered_at) * 1000))

        await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers every candidate first
        sdp = pc.localDescription.sdp
        self.offered_at = time.monotonic()
        if self.args.trickle:
            bare, candidates = strip_candidates(sdp)
            self.sig.publish(self.topics["up"], session.message("offer", sdp=bare))
            mid = first_mid(sdp)
            for c in candidates:
                self.sig.publish(self.topics["up"], session.message("candidate", candidate=c, sdpMid=mid, sdpMLineIndex=0))
        else:
            self.sig.publish(self.topics["up"], session.message("offer", sdp=sdp))
        # Section 7: gathering is complete either way.
        self.sig.publish(self.topics["up"], session.message("candidate", endOfCandidates=True))
        event("offer", sessionId=session.id, why=why, trickle=self.args.trickle)

    async def close_peer(self):
        if self.pc is not None:
            pc, self.pc = self.pc, None
            await pc.close()

    async def on_down(self, message):
        kind = message.get("type")
        if kind == "start":
            if self.session is None:
                await self.offer("start")
            return
        if kind == "error":
            event("error", code=message.get("code"), sessionId=message.get("sessionId"), ref=message.get("ref"))
            return
        if self.session is None or not self.session.fresh(message):
            return  # another session's message, or a duplicate (sections 6 and 8)
        if kind == "answer":
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="answer"))
            event("answer", sessionId=self.session.id, seq=message.get("seq"), bridgeId=message.get("bridgeId"),
                  ms=round((time.monotonic() - self.offered_at) * 1000))
        elif kind == "candidate" and "candidate" in message:
            candidate = candidate_from_sdp(message["candidate"].split(":", 1)[1])
            candidate.sdpMid = message.get("sdpMid")
            candidate.sdpMLineIndex = message.get("sdpMLineIndex")
            await self.pc.addIceCandidate(candidate)
            event("remote-candidate", sdpMid=message.get("sdpMid"), sdpMLineIndex=message.get("sdpMLineIndex"))
        elif kind == "bye":
            event("bye", sessionId=self.session.id, reason=message.get("reason"))
            self.session = None
            await self.close_peer()
            if message.get("reason") in ("timeout", "ice-failed", "error"):
                await asyncio.sleep(0.5)  # section 12, first backoff step
                await self.offer("retry")

    async def on_bridge_card(self, card):
        if card.get("state") != "online":
            self.bridge_ts = None
            self.session = None
            await self.close_peer()
            return
        if card.get("ts") == self.bridge_ts and self.session is not None:
            return  # section 6: the same card again
        self.bridge_ts = card.get("ts")
        self.ice_servers = card.get("iceServers", [])
        await self.offer("bridge-online")

    async def quit(self):
        if self.session is not None:
            self.sig.publish(self.topics["up"], self.session.message("bye", reason="normal"))
        await self.close_peer()


async def stdin_lines(queue):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        await queue.put(line.decode().strip() if line else "quit")
        if not line:
            return


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--id", required=True)
    # The password from the environment: arguments are visible to every user (ps), and a secret may start with "-".
    parser.add_argument("--secret", default=os.environ.get("TALI_SECRET"))
    parser.add_argument("--root", default="tali")
    parser.add_argument("--video", choices=["vp8", "h264", "none"], default="vp8")
    parser.add_argument("--audio", choices=["opus", "pcmu", "pcma", "none"], default="none")
    parser.add_argument("--trickle", action="store_true")
    args = parser.parse_args()

    base = "%s/v1/device/%s" % (args.root, args.id)
    topics = {"up": base + "/up", "down": base + "/down", "status": base + "/status"}
    card = {"v": PROTOCOL_VERSION, "type": "status", "ts": now_ms(), "model": "aiortc test camera", "sdk": "aiortc 1.4",
            "codecs": {"video": [] if args.video == "none" else [VIDEO[args.video].split("/")[1]],
                       "audio": [] if args.audio == "none" else [AUDIO[args.audio].split("/")[1]]}}
    sig = Signaling(args.url, args.id, args.id, args.secret, will=(topics["status"], {**card, "state": "offline"}, True))
    await sig.connect([topics["down"], "%s/v1/bridge/+/status" % args.root])
    sig.publish(topics["status"], {**card, "state": "online"}, retain=True)
    event("online")
    camera = Camera(args, sig, topics)

    commands = asyncio.Queue()
    reader = asyncio.ensure_future(stdin_lines(commands))  # kept: asyncio holds tasks weakly
    incoming = asyncio.ensure_future(sig.next())
    command = asyncio.ensure_future(commands.get())
    while True:
        done, _ = await asyncio.wait([incoming, command], return_when=asyncio.FIRST_COMPLETED)
        if command in done:
            what = command.result()
            if what == "quit":
                break
            if what == "reoffer":
                await camera.offer("reoffer")
            command = asyncio.ensure_future(commands.get())
        if incoming in done:
            topic, message = incoming.result()
            incoming = asyncio.ensure_future(sig.next())
            if topic == "disconnected":
                event("disconnected", rc=message)
                break
            if topic == topics["down"]:
                await camera.on_down(message)
            elif message.get("type") == "bridge-status":
                await camera.on_bridge_card(message)
    reader.cancel()
    await camera.quit()
    # Section 3: publish the offline card before a clean DISCONNECT (the broker discards the will).
    await sig.flushed(sig.publish(topics["status"], {**card, "state": "offline"}, retain=True))
    sig.close()
    event("stopped")


if __name__ == "__main__":
    asyncio.run(main())
