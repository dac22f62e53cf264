"""MQTT signaling for a tali camera or viewer, written from docs/protocol.md alone (no tali code).

paho-mqtt 1.6 runs its network loop in a thread; messages are handed to asyncio (aiortc's world) through a queue.
Every line this side prints on stdout is one JSON event, for the test that runs it.
"""
import asyncio
import json
import secrets
import sys
import time

import paho.mqtt.client as mqtt

PROTOCOL_VERSION = 1  # section 4: "v" is 1


def event(name, **fields):
    """One JSON line on stdout: what happened, for the test that reads it."""
    sys.stdout.write(json.dumps({"event": name, **fields}) + "\n")
    sys.stdout.flush()


def new_session_id():
    # Section 4: at least 64 random bits; 16 random bytes in base64url are 22 characters.
    return secrets.token_urlsafe(16)


def now_ms():
    return int(time.time() * 1000)


class Signaling:
    """One MQTT 3.1.1 connection (section 3): connect, subscribe, publish JSON, receive JSON into a queue."""

    def __init__(self, url, client_id, username, password, will=None):
        # url: mqtt://host:port
        hostport = url.split("://", 1)[1]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.loop = asyncio.get_running_loop()
        self.inbox = asyncio.Queue()
        self.client = mqtt.Client(client_id=client_id, clean_session=True, protocol=mqtt.MQTTv311)
        self.client.username_pw_set(username, password)
        if will is not None:
            topic, payload, retain = will
            self.client.will_set(topic, json.dumps(payload), qos=1, retain=retain)
        self._connack = self.loop.create_future()
        self._subacks = {}
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda c, u, rc: self.loop.call_soon_threadsafe(self.inbox.put_nowait, ("disconnected", rc))

    async def connect(self, subscriptions):
        """CONNECT (keep alive 30 s), then SUBSCRIBE at QoS 1 and wait for the SUBACK: section 3, step 1."""
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        rc = await asyncio.wait_for(self._connack, 10)
        if rc != 0:
            raise RuntimeError("CONNACK %d" % rc)
        result, mid = self.client.subscribe([(t, 1) for t in subscriptions])
        done = self.loop.create_future()
        self._subacks[mid] = done  # before any await: _suback (run on this loop) finds it
        granted = await asyncio.wait_for(done, 10)
        if any(q == 0x80 for q in granted):
            raise RuntimeError("SUBACK refused a filter: %r" % (granted,))

    def publish(self, topic, message, retain=False):
        """QoS 1; never an empty payload (section 3). Returns paho's MQTTMessageInfo."""
        return self.client.publish(topic, json.dumps(message), qos=1, retain=retain)

    async def flushed(self, info):
        """Waits until the broker acknowledged a publish (PUBACK)."""
        await self.loop.run_in_executor(None, info.wait_for_publish)

    async def next(self, timeout=None):
        """The next (topic, message) pair; ("disconnected", rc) if the connection went away."""
        return await asyncio.wait_for(self.inbox.get(), timeout)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, rc):
        self.loop.call_soon_threadsafe(lambda: self._connack.done() or self._connack.set_result(rc))

    def _on_subscribe(self, client, userdata, mid, granted):
        # paho's network thread can read the SUBACK before subscribe() has returned the mid to connect(): looking the
        # mid up here lost that SUBACK and connect() waited its 10 s (22 of 150 connects with 4 processes on 2 cores).
        # The lookup runs on the event loop instead, which connect() does not leave between subscribe() and storing
        # the future.
        self.loop.call_soon_threadsafe(self._suback, mid, list(granted))

    def _suback(self, mid, granted):
        future = self._subacks.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(granted)

    def _on_message(self, client, userdata, msg):
        try:
            message = json.loads(msg.payload.decode("utf-8"))  # section 4: one UTF-8 JSON object
        except ValueError:
            return
        if isinstance(message, dict):
            self.loop.call_soon_threadsafe(self.inbox.put_nowait, (msg.topic, message))


class Session:
    """Numbering and de-duplication of one session's messages (sections 4 and 8)."""

    def __init__(self):
        self.id = new_session_id()
        self.seq = 0
        self.seen = set()

    def message(self, kind, **fields):
        self.seq += 1
        return {"v": PROTOCOL_VERSION, "type": kind, "sessionId": self.id, "seq": self.seq, "ts": now_ms(), **fields}

    def fresh(self, message):
        """False for another session's message or a duplicate (sessionId, seq): section 8."""
        if message.get("sessionId") != self.id:
            return False
        key = message.get("seq")
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def strip_candidates(sdp):
    """The SDP without a=candidate and a=end-of-candidates lines, and the candidates (to trickle them: section 7)."""
    lines = sdp.split("\r\n")
    candidates = [l[2:] for l in lines if l.startswith("a=candidate:")]
    kept = [l for l in lines if not l.startswith("a=candidate:") and l != "a=end-of-candidates"]
    return "\r\n".join(kept), candidates


def first_mid(sdp):
    for line in sdp.split("\r\n"):
        if line.startswith("a=mid:"):
            return line[6:]
    return "0"
