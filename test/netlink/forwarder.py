#!/usr/bin/python3
"""A lossy, slow link in user space: the kernel here has no netem.

Opens two TUN devices (argv[1], the namespace side, and argv[2], the host side) and copies IP packets between them,
dropping and delaying them as told. "up" is namespace → host, "down" is host → namespace. Non-persistent TUN
devices vanish with this process, which exits when its stdin closes (the Node side went away).

Control, one JSON object per line on stdin; one JSON line per command on stdout:
  {"cmd": "shape", "dir": "up"|"down", "loss": 0.15, "delayMs": 20}
  {"cmd": "drop", "dir": "down", "pattern": "16fefd0001", "count": 1}
      drop the next `count` UDP packets whose payload starts with this pattern: hex bytes, ".." matches any byte
  {"cmd": "watch", "dir": "up", "pattern": "16fefd", "name": "dtls"}  count matching UDP packets (not dropped)
  {"cmd": "rtp", "dir": "down"}  account RTP packets going that way per SSRC (stats "rtp"; see RtpAccount)
  {"cmd": "allow", "endpoints": [["100.64.0.1", 3478], ...]}
      a firewall: from now on only TCP/UDP packets to (up) or from (down) one of these address:port pairs pass;
      the others are dropped and counted as "blocked". An empty list lifts it.
  {"cmd": "stats"}  ->  {"up": {"packets", "dropped", "matched", "blocked", "watched": {name: n}, "rtp": {ssrc: {...}}},
                         "down": {...}}
  {"cmd": "seed", "value": 1}
"""
import collections
import fcntl
import json
import os
import random
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Direction:
    def __init__(self, source, sink, endpoint_of):
        self.source = source
        self.sink = sink
        self.loss = 0.0
        self.delay = 0.0
        self.queue = collections.deque()  # (due, packet): one delay for all keeps the order
        self.rules = []  # [pattern, drops left]
        self.watches = []  # [pattern, name]
        self.endpoint_of = endpoint_of  # packet -> the (address, port) the firewall looks at
        self.allowed = None  # set of (address, port), or None: no firewall
        self.stats = {"packets": 0, "dropped": 0, "matched": 0, "blocked": 0, "watched": {}}
        self.rtp = None  # RtpAccount, once asked for

    def receive(self, now):
        try:
            packet = os.read(self.source, 65535)
        except BlockingIOError:
            return
        self.stats["packets"] += 1
        if self.allowed is not None and self.endpoint_of(packet) not in self.allowed:
            self.stats["blocked"] += 1
            self.stats["dropped"] += 1
            return
        for pattern, name in self.watches:
            if udp_payload_matches(packet, pattern):
                self.stats["watched"][name] = self.stats["watched"].get(name, 0) + 1
        for rule in self.rules:
            if rule[1] > 0 and udp_payload_matches(packet, rule[0]):
                rule[1] -= 1
                self.stats["matched"] += 1
                self.stats["dropped"] += 1
                return
        lost = self.loss > 0 and random.random() < self.loss
        if self.rtp is not None:
            self.rtp.add(packet, lost)
        if lost:
            self.stats["dropped"] += 1
            return
        self.queue.append((now + self.delay, packet))

    def flush(self, now):
        while self.queue and self.queue[0][0] <= now:
            _, packet = self.queue.popleft()
            try:
                os.write(self.sink, packet)
            except OSError:
                pass  # the other side is down or full: a lost packet, as on a real link

    def next_due(self):
        return self.queue[0][0] if self.queue else None


class RtpAccount:
    """Per SSRC, what the link did to RTP packets (SRTP leaves the RTP header in the clear, RFC 3711 §3.1):
    packets: seen; dropped: copies lost to random loss; lost: sequence numbers whose first copy was dropped; repeats:
    copies of a sequence number already seen on that SSRC (resends in the original stream: a NACK answered without
    RTX); recovered: lost sequence numbers that have since got through; altered: repeats whose bytes differ from the
    first copy's (SRTP's AES counter mode encrypts the same packet at the same index to the same bytes, RFC 3711
    §4.1.1, so a resend that differs is not the packet first sent). Packets a drop rule or the firewall took are not
    counted. The last HISTORY sequence numbers per SSRC are remembered."""

    HISTORY = 4096

    def __init__(self):
        self.streams = {}  # ssrc -> {"counts": {...}, "seen": OrderedDict(seq -> [passed, first copy's bytes])}

    def add(self, packet, lost):
        payload = udp_payload(packet)
        # RFC 7983 §7: 128..191 is RTP or RTCP; RFC 5761 §4: RTCP's payload types 64..95 (with the marker bit) are not RTP.
        if payload is None or len(payload) < 12 or not 128 <= payload[0] <= 191 or 64 <= payload[1] & 0x7F <= 95:
            return
        (seq,), (ssrc,) = struct.unpack_from("!H", payload, 2), struct.unpack_from("!I", payload, 8)
        if ssrc not in self.streams:
            counts = {"packets": 0, "dropped": 0, "lost": 0, "repeats": 0, "recovered": 0, "altered": 0}
            self.streams[ssrc] = {"counts": counts, "seen": collections.OrderedDict()}
        counts, seen = self.streams[ssrc]["counts"], self.streams[ssrc]["seen"]
        counts["packets"] += 1
        counts["dropped"] += lost
        first = seen.get(seq)
        if first is None:
            seen[seq] = [not lost, bytes(payload)]
            counts["lost"] += lost
            if len(seen) > self.HISTORY:
                seen.popitem(last=False)
            return
        counts["repeats"] += 1
        counts["altered"] += first[1] != payload
        if not first[0] and not lost:
            counts["recovered"] += 1
        first[0] = first[0] or not lost

    def stats(self):
        return {str(ssrc): dict(stream["counts"]) for ssrc, stream in self.streams.items()}


def compile_pattern(text):
    """ "16fefd..01" -> [(0, 0x16), (1, 0xfe), (2, 0xfd), (4, 0x01)] """
    pairs = [text[i : i + 2] for i in range(0, len(text), 2)]
    return [(i, int(p, 16)) for i, p in enumerate(pairs) if p != ".."]


def endpoint(packet, which):
    """The (address, port) of an IPv4 TCP or UDP packet (RFC 791, 793, 768): "dst" or "src"; None for anything else."""
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] not in (6, 17):
        return None
    start = (packet[0] & 0x0F) * 4
    if len(packet) < start + 4:
        return None
    at, port_at = (16, start + 2) if which == "dst" else (12, start)
    return (".".join(str(b) for b in packet[at : at + 4]), struct.unpack("!H", packet[port_at : port_at + 2])[0])


def udp_payload(packet):
    """The payload of an IPv4 UDP packet (RFC 791: header length from IHL, then the 8-byte UDP header), or None."""
    if len(packet) < 28 or packet[0] >> 4 != 4 or packet[9] != 17:
        return None
    return memoryview(packet)[(packet[0] & 0x0F) * 4 + 8 :]


def udp_payload_matches(packet, pattern):
    payload = udp_payload(packet)
    return payload is not None and all(i < len(payload) and payload[i] == b for i, b in pattern)


def main():
    inner = open_tun(sys.argv[1])
    outer = open_tun(sys.argv[2])
    dirs = {"up": Direction(inner, outer, lambda p: endpoint(p, "dst")), "down": Direction(outer, inner, lambda p: endpoint(p, "src"))}
    by_fd = {inner: dirs["up"], outer: dirs["down"]}
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    control = sys.stdin.buffer
    pending = b""
    while True:
        now = time.monotonic()
        dues = [d for d in (x.next_due() for x in dirs.values()) if d is not None]
        timeout = max(0.0, min(dues) - now) if dues else None
        readable, _, _ = select.select([inner, outer, control], [], [], timeout)
        now = time.monotonic()
        for fd in readable:
            if fd is control:
                chunk = os.read(control.fileno(), 65536)
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip():
                        out.write(json.dumps(command(json.loads(line), dirs)) + "\n")
                        out.flush()
            else:
                # Drain what is there: many small reads per wake-up keep up with media rates.
                for _ in range(64):
                    before = by_fd[fd].stats["packets"]
                    by_fd[fd].receive(now)
                    if by_fd[fd].stats["packets"] == before:
                        break
        for d in dirs.values():
            d.flush(now)


def command(msg, dirs):
    cmd = msg.get("cmd")
    if cmd == "shape":
        d = dirs[msg["dir"]]
        d.loss = float(msg.get("loss", d.loss))
        d.delay = float(msg.get("delayMs", d.delay * 1000)) / 1000
        return {"ok": True}
    if cmd == "drop":
        dirs[msg["dir"]].rules.append([compile_pattern(msg["pattern"]), int(msg.get("count", 1))])
        return {"ok": True}
    if cmd == "watch":
        dirs[msg["dir"]].watches.append([compile_pattern(msg["pattern"]), msg["name"]])
        return {"ok": True}
    if cmd == "allow":
        allowed = {(str(a), int(p)) for a, p in msg.get("endpoints", [])} or None
        for d in dirs.values():
            d.allowed = allowed
        return {"ok": True}
    if cmd == "rtp":
        dirs[msg["dir"]].rtp = dirs[msg["dir"]].rtp or RtpAccount()
        return {"ok": True}
    if cmd == "seed":
        random.seed(msg["value"])
        return {"ok": True}
    if cmd == "stats":
        return {name: dict(d.stats, **({"rtp": d.rtp.stats()} if d.rtp else {})) for name, d in dirs.items()}
    return {"error": "unknown command %r" % cmd}


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
