//! Unit tests of the session QoS state.
use super::*;

fn link(window: usize) -> Link {
    Link {
        conn: 1,
        version: ProtocolVersion::V5,
        window,
        max_packet_size: None,
        payload_overhead: 0,
        connect_expiry_zero: false,
    }
}

fn delivery(qos: QoS, payload: &'static str, now: Instant) -> Delivery {
    Delivery {
        message: Arc::new(Message::new(
            "t".into(),
            Bytes::from_static(payload.as_bytes()),
            qos,
            false,
            &Properties::default(),
            None,
            now,
        )),
        qos,
        retain: false,
        subscription_ids: Vec::new(),
        share: None,
    }
}

fn ids(packets: &[Packet]) -> Vec<u16> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p.packet_id),
            _ => None,
        })
        .collect()
}

#[test]
fn window_queue_and_id_reuse() {
    let now = Instant::now();
    let stats = Stats::default();
    let mut s = Session::new("c".into(), 0);
    s.link = Some(link(2));
    let mut sent = Vec::new();
    for p in ["a", "b", "c", "d"] {
        sent.extend(
            s.offer(delivery(QoS::AtLeastOnce, p, now), now, 10, &stats)
                .packets,
        );
    }
    assert_eq!(ids(&sent), [1, 2]);
    assert_eq!(s.queue.len(), 2);
    assert_eq!(ids(&s.on_puback(1, now, &stats)), [3]);
    assert_eq!(ids(&s.on_puback(1, now, &stats)), Vec::<u16>::new());
    assert_eq!(ids(&s.on_puback(3, now, &stats)), [4]);
    assert_eq!(s.inflight.len(), 2);
    assert_eq!(Stats::get(&stats.messages_sent), 4);
}

#[test]
fn ids_skip_those_in_use_and_wrap() {
    let now = Instant::now();
    let stats = Stats::default();
    let mut s = Session::new("c".into(), 0);
    s.link = Some(link(10));
    s.next_packet_id = u16::MAX;
    let a = s
        .offer(delivery(QoS::AtLeastOnce, "a", now), now, 10, &stats)
        .packets;
    let b = s
        .offer(delivery(QoS::AtLeastOnce, "b", now), now, 10, &stats)
        .packets;
    assert_eq!(ids(&a), [u16::MAX]);
    assert_eq!(ids(&b), [1]);
    s.next_packet_id = 1;
    let c = s
        .offer(delivery(QoS::AtLeastOnce, "c", now), now, 10, &stats)
        .packets;
    assert_eq!(ids(&c), [2]);
}

#[test]
fn drop_policy_oldest_qos0_first_then_new() {
    let now = Instant::now();
    let stats = Stats::default();
    let mut s = Session::new("c".into(), 60);
    s.offer(delivery(QoS::AtMostOnce, "q0", now), now, 2, &stats);
    s.offer(delivery(QoS::AtLeastOnce, "q1", now), now, 2, &stats);
    s.offer(delivery(QoS::AtLeastOnce, "q1b", now), now, 2, &stats);
    let payloads: Vec<_> = s.queue.iter().map(|d| d.message.payload.clone()).collect();
    assert_eq!(payloads, ["q1", "q1b"]);
    s.offer(delivery(QoS::ExactlyOnce, "q2", now), now, 2, &stats);
    assert_eq!(s.queue.len(), 2);
    assert_eq!(Stats::get(&stats.messages_dropped), 2);
}

#[test]
fn qos2_flow_and_resume() {
    let now = Instant::now();
    let stats = Stats::default();
    let mut s = Session::new("c".into(), 60);
    s.link = Some(link(5));
    s.offer(delivery(QoS::ExactlyOnce, "x", now), now, 10, &stats);
    s.offer(delivery(QoS::AtLeastOnce, "y", now), now, 10, &stats);
    assert_eq!(
        s.on_pubrec(1, false, now, &stats),
        [Packet::PubRel(PubResponse::success(1))]
    );
    s.link = None;
    s.link = Some(link(5));
    let out = s.resume(now, &stats);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], Packet::PubRel(PubResponse::success(1)));
    match &out[1] {
        Packet::Publish(p) => assert!(p.dup && p.packet_id == 2),
        other => panic!("{other:?}"),
    }
    assert!(s.on_pubcomp(1, now, &stats).is_empty());
    assert_eq!(s.inflight.len(), 1);
}

#[test]
fn expiry_counts_down_and_expired_messages_are_not_sent() {
    let now = Instant::now();
    let stats = Stats::default();
    let props = Properties {
        message_expiry_interval: Some(10),
        ..Properties::default()
    };
    let m = Message::new(
        "t".into(),
        Bytes::new(),
        QoS::AtLeastOnce,
        false,
        &props,
        None,
        now,
    );
    assert_eq!(
        m.remaining_expiry(now + Duration::from_millis(3500)),
        Some(7)
    );
    let mut s = Session::new("c".into(), 60);
    let d = Delivery {
        message: Arc::new(m),
        qos: QoS::AtLeastOnce,
        retain: false,
        subscription_ids: vec![],
        share: None,
    };
    s.offer(d.clone(), now, 10, &stats);
    s.offer(d, now, 10, &stats);
    s.link = Some(link(5));
    let later = now + Duration::from_secs(4);
    let out = s.resume(later, &stats);
    match &out[0] {
        Packet::Publish(p) => assert_eq!(p.properties.message_expiry_interval, Some(6)),
        other => panic!("{other:?}"),
    }
    // Queued while offline and expired before the client came back: dropped.
    let mut s2 = Session::new("c".into(), 60);
    let props = Properties {
        message_expiry_interval: Some(10),
        ..Properties::default()
    };
    let m = Message::new(
        "t".into(),
        Bytes::new(),
        QoS::AtLeastOnce,
        false,
        &props,
        None,
        now,
    );
    s2.offer(
        Delivery {
            message: Arc::new(m),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_ids: vec![],
            share: None,
        },
        now,
        10,
        &stats,
    );
    s2.link = Some(link(5));
    assert!(s2.resume(now + Duration::from_secs(11), &stats).is_empty());
    assert!(s2.queue.is_empty());
}

#[test]
fn acknowledged_ids_are_reused_and_held_ones_skipped() {
    let now = Instant::now();
    let stats = Stats::default();
    let mut s = Session::new("c".into(), 0);
    s.link = Some(link(10));
    let mut sent = Vec::new();
    for p in ["a", "b", "c"] {
        sent.extend(
            s.offer(delivery(QoS::AtLeastOnce, p, now), now, 10, &stats)
                .packets,
        );
    }
    assert_eq!(ids(&sent), [1, 2, 3]);
    s.on_puback(2, now, &stats);
    // Wrap around: 1 and 3 are still held, 2 is free again.
    s.next_packet_id = 1;
    let again = s
        .offer(delivery(QoS::AtLeastOnce, "d", now), now, 10, &stats)
        .packets;
    assert_eq!(ids(&again), [2]);
    let next = s
        .offer(delivery(QoS::AtLeastOnce, "e", now), now, 10, &stats)
        .packets;
    assert_eq!(ids(&next), [4]);
    assert!(s.index_consistent());
}

#[test]
fn purging_an_expired_durable_message_for_a_qos0_delivery_reports_a_durable_change() {
    // Issue 13 item 1: a QoS 0 delivery into a full queue purges an expired
    // QoS 1 message; the caller must learn that the stored session changed.
    let now = Instant::now();
    let stats = Stats::default();
    let mut s = Session::new("c".into(), 60);
    let props = Properties {
        message_expiry_interval: Some(0),
        ..Properties::default()
    };
    let expiring = Message::new(
        "t".into(),
        Bytes::new(),
        QoS::AtLeastOnce,
        false,
        &props,
        None,
        now,
    );
    let first = s.offer(
        Delivery {
            message: Arc::new(expiring),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_ids: vec![],
            share: None,
        },
        now,
        1,
        &stats,
    );
    assert!(first.durable_changed, "a queued QoS 1 message is durable");
    let later = now + Duration::from_secs(1);
    let second = s.offer(delivery(QoS::AtMostOnce, "q0", later), later, 1, &stats);
    assert!(second.durable_changed, "the purge removed a durable entry");
    assert!(s.queue.iter().all(|d| d.qos == QoS::AtMostOnce));
    // A QoS 0 delivery that purges nothing durable changes nothing durable.
    let third = s.offer(delivery(QoS::AtMostOnce, "q0b", later), later, 1, &stats);
    assert!(!third.durable_changed);
}

/// The core's session map holds every `Session` inline, connected or not:
/// its size is paid per connection (with the map's spare slots, up to
/// twice). It was 1 176 bytes with both wills inline (issue 17).
#[test]
fn sessions_stay_small() {
    let size = size_of::<Session>();
    assert!(size <= 64 * size_of::<usize>(), "Session is {size} bytes");
}
