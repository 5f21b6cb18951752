//! Publisher flow control (`flow`): a backed-up online subscriber pauses its
//! publishers and resumes them once it drains or goes away; nothing it was
//! sent is dropped meanwhile.

use super::test_support::*;
use super::*;
use crate::codec::PubResponse;

fn pauses(out: &[Output]) -> Vec<ConnId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Pause { conn } => Some(*conn),
            _ => None,
        })
        .collect()
}

fn resumes(out: &[Output]) -> Vec<ConnId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Resume { conn } => Some(*conn),
            _ => None,
        })
        .collect()
}

/// Subscriber 1 with a window of one message, publishers 2 and 3; the
/// queue limit is 8, so publishers pause at 4 queued and resume at 2.
fn setup() -> Harness {
    let mut h = Harness::with_limits(Limits {
        max_queued_messages: 8,
        ..Limits::default()
    });
    let mut c = v5("sub");
    c.properties.receive_maximum = Some(1);
    h.connect(1, c);
    h.subscribe(1, "t", opts(QoS::AtLeastOnce));
    h.connect(2, v5("pub"));
    h.connect(3, v5("pub2"));
    h
}

#[test]
fn a_backed_up_subscriber_pauses_each_publisher_once_and_resumes_them_when_drained() {
    let mut h = setup();
    // Message 1 goes out (window 1); 2..=4 queue; the 5th makes 4 queued.
    let mut paused = Vec::new();
    for id in 1..=5u16 {
        paused.extend(pauses(&h.publish(2, msg("t", "m", QoS::AtLeastOnce, id))));
    }
    assert_eq!(paused, [2], "paused at the high-water mark, once");
    let out = h.publish(3, msg("t", "m", QoS::AtLeastOnce, 1));
    assert_eq!(pauses(&out), [3], "every feeding publisher is paused");
    assert_eq!(to(&out, 3), [Packet::PubAck(PubResponse::success(1))]);
    // Acknowledgements drain the queue: 5 queued -> resumed at 2.
    let mut resumed = Vec::new();
    for id in 1..=3u16 {
        resumed.extend(resumes(
            &h.send(1, Packet::PubAck(PubResponse::success(id))),
        ));
    }
    resumed.sort_unstable();
    assert_eq!(resumed, [2, 3]);
    assert_eq!(Stats::get(&h.stats.messages_dropped), 0);
}

#[test]
fn a_subscriber_going_offline_resumes_its_publishers() {
    let mut h = setup();
    for id in 1..=5u16 {
        h.publish(2, msg("t", "m", QoS::AtLeastOnce, id));
    }
    let out = h.core.disconnected(1, None, h.now);
    assert_eq!(resumes(&out), [2]);
}

#[test]
fn an_online_queue_holds_what_paused_publishers_had_in_flight() {
    let mut h = setup();
    // Past the offline limit of 8, up to the online limit of 32: nothing dropped.
    for id in 1..=30u16 {
        h.publish(2, msg("t", "m", QoS::AtLeastOnce, id));
    }
    assert_eq!(Stats::get(&h.stats.messages_dropped), 0);
    for id in 31..=40u16 {
        h.publish(2, msg("t", "m", QoS::AtLeastOnce, id));
    }
    assert!(
        Stats::get(&h.stats.messages_dropped) > 0,
        "beyond it, counted drops"
    );
}

#[test]
fn a_client_publishing_to_itself_is_not_paused() {
    let mut h = setup();
    let mut paused = Vec::new();
    for id in 1..=10u16 {
        paused.extend(pauses(&h.publish(1, msg("t", "m", QoS::AtLeastOnce, id))));
    }
    assert!(paused.is_empty());
}
