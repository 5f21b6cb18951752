#!/usr/bin/env python3
"""paho-mqtt (v2 callback API) against `mqtt-lwa broker`.

Usage: paho_interop.py PORT SCENARIO. Each scenario exits 0 when every check
holds and 1 with a message otherwise; tests/interop_paho.rs runs them all.
Every wait is for a condition (a message, a SUBACK, a disconnect) with a
deadline; the only fixed wait is where a test must show that something does
*not* arrive (receive maximum).
"""

import itertools
import os
import queue
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

WAIT = 15.0
HOST = "127.0.0.1"
PORT = 0
_counter = itertools.count()


def unique(prefix):
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def props(packet_type, **values):
    p = Properties(packet_type)
    for k, v in values.items():
        setattr(p, k, v)
    return p


class Peer:
    """One paho client with its callbacks turned into queues and events."""

    def __init__(self, version=5, connect_props=None, manual_ack=False):
        self.version = version
        self.messages = queue.Queue()
        self.subacks = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.disconnect_reason = None
        self.connack_props = None
        kwargs = {}
        if version == 5:
            proto = mqtt.MQTTv5
        else:
            proto = mqtt.MQTTv311
            kwargs["clean_session"] = True
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=unique("paho"),
            protocol=proto,
            manual_ack=manual_ack,
            **kwargs,
        )
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put((mid, rcs))
        self.c.on_disconnect = self._on_disconnect
        if version == 5:
            self.c.connect(HOST, PORT, keepalive=30, clean_start=True, properties=connect_props)
        else:
            self.c.connect(HOST, PORT, keepalive=30)
        self.c.loop_start()
        check(self.connected.wait(WAIT), "no CONNACK")

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            raise Failed(f"CONNACK refused: {reason_code}")
        self.connack_props = properties
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.disconnect_reason = reason_code
        self.disconnected.set()

    def subscribe(self, topic, qos=1, sub_props=None, **options):
        if self.version == 5:
            opts = SubscribeOptions(qos=qos, **options)
            rc, mid = self.c.subscribe(topic, options=opts, properties=sub_props)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        check(rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe {topic}: {rc}")
        got_mid, codes = self.subacks.get(timeout=WAIT)
        check(got_mid == mid, "SUBACK for another SUBSCRIBE")
        for code in codes:
            value = code.value if hasattr(code, "value") else code
            check(value < 0x80, f"SUBACK refused {topic}: {code}")

    def publish(self, topic, payload, qos=1, retain=False, pub_props=None):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=pub_props)
        check(info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish rc {info.rc}")
        if qos > 0:
            info.wait_for_publish(WAIT)
            check(info.is_published(), f"publish to {topic!r} not acknowledged")

    def next(self, what="a message"):
        try:
            return self.messages.get(timeout=WAIT)
        except queue.Empty:
            raise Failed(f"no {what} within {WAIT}s") from None

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def expect(msg, topic=None, payload=None, qos=None, retain=None):
    if topic is not None:
        check(msg.topic == topic, f"topic {msg.topic!r}, expected {topic!r}")
    if payload is not None:
        check(msg.payload == payload, f"payload {msg.payload!r}, expected {payload!r}")
    if qos is not None:
        check(msg.qos == qos, f"qos {msg.qos}, expected {qos}")
    if retain is not None:
        check(bool(msg.retain) == retain, f"retain {msg.retain}, expected {retain}")


def basic(version):
    base = unique("paho/basic")
    sub = Peer(version)
    sub.subscribe(base + "/#", qos=2)
    pub = Peer(version)
    for q in (0, 1, 2):
        pub.publish(f"{base}/q{q}", f"q{q}".encode(), qos=q)
        expect(sub.next(), topic=f"{base}/q{q}", payload=f"q{q}".encode(), qos=q, retain=False)
    # Retained: set, replace, read by a late subscriber, clear.
    pub.publish(base + "/r", b"first", qos=1, retain=True)
    pub.publish(base + "/r", b"second", qos=1, retain=True)
    late = Peer(version)
    late.subscribe(base + "/r", qos=1)
    expect(late.next(), payload=b"second", retain=True)
    pub.publish(base + "/r", b"", qos=1, retain=True)
    later = Peer(version)
    later.subscribe(base + "/r", qos=1)
    pub.publish(base + "/r", b"live", qos=1)
    expect(later.next(), payload=b"live", retain=False)
    for p in (sub, pub, late, later):
        p.close()


def basic311():
    basic(4)


def basic5():
    basic(5)


def shared():
    topic = unique("paho/shared")
    members = [Peer(), Peer()]
    for m in members:
        m.subscribe(f"$share/grp/{topic}", qos=1)
    plain = Peer()
    plain.subscribe(topic, qos=1)
    pub = Peer()
    sent = [f"m{i}".encode() for i in range(20)]
    for p in sent:
        pub.publish(topic, p, qos=1)
    everyone = [plain.next().payload for _ in sent]
    check(everyone == sent, f"non-shared subscriber got {everyone}")
    got = {0: [], 1: []}
    for _ in sent:
        # Whichever member has the next message; wait on both in turn.
        for i in itertools.cycle((0, 1)):
            try:
                got[i].append(members[i].messages.get(timeout=0.05).payload)
                break
            except queue.Empty:
                if sum(len(v) for v in got.values()) >= len(sent):
                    break
                continue
    together = got[0] + got[1]
    check(sorted(together) == sorted(sent), f"shared group got {got}")
    check(len(set(together)) == len(sent), "a shared message was delivered twice")
    check(got[0] and got[1], f"one member got nothing: {got}")
    for p in members + [plain, pub]:
        p.close()


def alias_client_to_broker():
    topic = unique("paho/alias-in")
    sub = Peer()
    sub.subscribe(topic, qos=1)
    pub = Peer()
    maximum = getattr(pub.connack_props, "TopicAliasMaximum", 0)
    check(maximum >= 1, f"broker advertises Topic Alias Maximum {maximum}")
    pub.publish(topic, b"one", qos=1, pub_props=props(PacketTypes.PUBLISH, TopicAlias=1))
    pub.publish("", b"two", qos=1, pub_props=props(PacketTypes.PUBLISH, TopicAlias=1))
    expect(sub.next(), topic=topic, payload=b"one")
    expect(sub.next(), topic=topic, payload=b"two")
    # An alias above the advertised maximum: DISCONNECT 0x94 Topic Alias invalid.
    bad = Peer()
    bad.c.publish("", b"x", qos=0, properties=props(PacketTypes.PUBLISH, TopicAlias=maximum + 1))
    check(bad.disconnected.wait(WAIT), "no disconnect after an invalid alias")
    check(bad.disconnect_reason.value == 0x94, f"disconnect reason {bad.disconnect_reason}")
    for p in (sub, pub):
        p.close()


def alias_broker_to_client():
    topic, other = unique("paho/alias-out"), unique("paho/alias-out")
    sub = Peer(connect_props=props(PacketTypes.CONNECT, TopicAliasMaximum=4))
    sub.subscribe(topic, qos=1)
    sub.subscribe(other, qos=1)
    pub = Peer()
    for i in range(3):
        pub.publish(topic, f"t{i}".encode(), qos=1)
    pub.publish(other, b"o", qos=1)
    msgs = [sub.next() for _ in range(4)]
    aliases = [getattr(m.properties, "TopicAlias", None) for m in msgs]
    # paho does not resolve inbound aliases: the first PUBLISH carries topic
    # and alias, the next ones only the alias.
    check(msgs[0].topic == topic and aliases[0] is not None, f"first: {msgs[0].topic!r} {aliases}")
    check([m.topic for m in msgs[1:3]] == ["", ""], f"aliased topics {[m.topic for m in msgs]}")
    check(aliases[1] == aliases[0] == aliases[2], f"aliases {aliases}")
    check(msgs[3].topic == other and aliases[3] not in (None, aliases[0]), f"other {aliases}")
    check(all(1 <= a <= 4 for a in aliases), f"aliases beyond the client's maximum: {aliases}")
    check([m.payload for m in msgs] == [b"t0", b"t1", b"t2", b"o"], "payloads")
    # A client that allows no aliases gets full topics.
    plain = Peer()
    plain.subscribe(topic, qos=1)
    pub.publish(topic, b"full", qos=1)
    m = plain.next()
    check(m.topic == topic and getattr(m.properties, "TopicAlias", None) is None, "alias without permission")
    for p in (sub, pub, plain):
        p.close()


def receive_maximum():
    topic = unique("paho/recvmax")
    sub = Peer(connect_props=props(PacketTypes.CONNECT, ReceiveMaximum=2), manual_ack=True)
    sub.subscribe(topic, qos=1)
    pub = Peer()
    for i in range(4):
        pub.publish(topic, f"m{i}".encode(), qos=1)
    first = [sub.next(), sub.next()]
    check([m.payload for m in first] == [b"m0", b"m1"], "first two")
    try:
        extra = sub.messages.get(timeout=1.0)
        raise Failed(f"a third message while two are unacknowledged: {extra.payload!r}")
    except queue.Empty:
        pass
    sub.c.ack(first[0].mid, 1)
    check(sub.next().payload == b"m2", "m2 after the first PUBACK")
    sub.c.ack(first[1].mid, 1)
    check(sub.next().payload == b"m3", "m3 after the second PUBACK")
    for p in (sub, pub):
        p.close()


def subscription_identifiers():
    base = unique("paho/subid")
    sub = Peer()
    sub.subscribe(base + "/#", qos=1, sub_props=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7))
    sub.subscribe(base + "/x", qos=1, sub_props=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=9))
    pub = Peer()
    pub.publish(base + "/y", b"only-wide", qos=1)
    m = sub.next()
    check(getattr(m.properties, "SubscriptionIdentifier", None) == [7], f"ids {m.properties}")
    pub.publish(base + "/x", b"both", qos=1)
    ids = set()
    while ids != {7, 9}:
        m = sub.next("a message for both subscriptions")
        check(m.payload == b"both", f"unexpected {m.payload!r}")
        ids |= set(getattr(m.properties, "SubscriptionIdentifier", []))
        check(ids <= {7, 9}, f"ids {ids}")
    for p in (sub, pub):
        p.close()


def no_local():
    topic = unique("paho/nolocal")
    me = Peer()
    me.subscribe(topic, qos=1, noLocal=True)
    other = Peer()
    me.publish(topic, b"own", qos=1)
    other.publish(topic, b"other", qos=1)
    expect(me.next(), payload=b"other")
    for p in (me, other):
        p.close()


def retain_handling():
    topic = unique("paho/rh")
    pub = Peer()
    pub.publish(topic, b"kept", qos=1, retain=True)
    # 2: never send retained messages.
    never = Peer()
    never.subscribe(topic, qos=1, retainHandling=2)
    pub.publish(topic, b"marker1", qos=1)
    expect(never.next(), payload=b"marker1", retain=False)
    # 1: only when the subscription is new.
    if_new = Peer()
    if_new.subscribe(topic, qos=1, retainHandling=1)
    expect(if_new.next(), payload=b"kept", retain=True)
    if_new.subscribe(topic, qos=1, retainHandling=1)
    pub.publish(topic, b"marker2", qos=1)
    expect(if_new.next(), payload=b"marker2", retain=False)
    # 0: at every subscribe.
    always = Peer()
    always.subscribe(topic, qos=1, retainHandling=0)
    expect(always.next(), payload=b"kept", retain=True)
    always.subscribe(topic, qos=1, retainHandling=0)
    expect(always.next(), payload=b"kept", retain=True)
    # Retain As Published keeps the flag on live messages; without it, it is cleared.
    rap, norap = Peer(), Peer()
    rap.subscribe(topic, qos=1, retainAsPublished=True, retainHandling=2)
    norap.subscribe(topic, qos=1, retainHandling=2)
    pub.publish(topic, b"live-retained", qos=1, retain=True)
    expect(rap.next(), payload=b"live-retained", retain=True)
    expect(norap.next(), payload=b"live-retained", retain=False)
    for p in (pub, never, if_new, always, rap, norap):
        p.close()


SCENARIOS = {
    f.__name__: f
    for f in (
        basic311,
        basic5,
        shared,
        alias_client_to_broker,
        alias_broker_to_client,
        receive_maximum,
        subscription_identifiers,
        no_local,
        retain_handling,
    )
}


def main():
    global PORT
    if len(sys.argv) != 3 or sys.argv[2] not in SCENARIOS:
        print(f"usage: {sys.argv[0]} PORT {{{'|'.join(SCENARIOS)}}}", file=sys.stderr)
        return 2
    PORT = int(sys.argv[1])
    try:
        SCENARIOS[sys.argv[2]]()
    except (Failed, queue.Empty) as e:
        print(f"FAILED {sys.argv[2]}: {e!r}", file=sys.stderr)
        return 1
    print(f"ok {sys.argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
