#!/usr/bin/env python3
"""A deliberately slow paho-mqtt subscriber (tests/interop_stock_burst.rs).

Usage: slow_sub.py PORT TOPIC QOS VERSION COUNT DELAY_MS

Subscribes, prints "ready" once the SUBACK arrived, then handles each message
DELAY_MS late (paho acknowledges a QoS 1/2 message only after on_message
returns, so the broker sees a subscriber that keeps up, slowly). Prints one
line per payload, then "done N" after COUNT messages, or "timeout N" when no
message arrived for 30 s.
"""

import queue
import sys
import threading
import time

import paho.mqtt.client as mqtt


def main():
    port, topic, qos, version, count, delay_ms = sys.argv[1:7]
    qos, count, delay = int(qos), int(count), int(delay_ms) / 1000.0
    protocol = mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311
    subscribed = threading.Event()
    payloads = queue.Queue()

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        subscribed.set()

    def on_message(client, userdata, message):
        time.sleep(delay)
        payloads.put(message.payload.decode())

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=protocol)
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos)
    client.connect("127.0.0.1", int(port))
    client.loop_start()
    if not subscribed.wait(15):
        print("no suback", flush=True)
        return 1
    print("ready", flush=True)
    got = 0
    out = []
    while got < count:
        try:
            out.append(payloads.get(timeout=30))
        except queue.Empty:
            break
        got += 1
    sys.stdout.write("".join(p + "\n" for p in out))
    print(f"done {got}" if got == count else f"timeout {got}", flush=True)
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
