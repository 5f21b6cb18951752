//! A session's queue of deliveries with its payload total kept alongside.
//!
//! Flow control and the byte limits ask for the queue's payload bytes on
//! every delivery; summing the queue each time made a 20 000-message burst
//! into a queue allowed to grow (the experiment's limits) quadratic: 1.1 s
//! of broker CPU per `mosquitto_pub -l` burst of 30-byte QoS 1 messages,
//! against 0.2 s with short queues. Every mutation goes through here, so the
//! total cannot drift from the contents.

use std::collections::VecDeque;

use super::session::Delivery;

/// Deliveries in send order and the sum of their payload lengths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryQueue {
    items: VecDeque<Delivery>,
    bytes: usize,
}

fn size(d: &Delivery) -> usize {
    d.message.payload.len()
}

impl DeliveryQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Payload bytes of every queued delivery.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of queued deliveries.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The deliveries, oldest first.
    pub fn iter(&self) -> std::collections::vec_deque::Iter<'_, Delivery> {
        self.items.iter()
    }

    /// Appends at the back.
    pub fn push_back(&mut self, d: Delivery) {
        self.bytes += size(&d);
        self.items.push_back(d);
    }

    /// Puts back at the front (a delivery the window could not take yet).
    pub fn push_front(&mut self, d: Delivery) {
        self.bytes += size(&d);
        self.items.push_front(d);
    }

    /// Takes the oldest delivery.
    pub fn pop_front(&mut self) -> Option<Delivery> {
        let d = self.items.pop_front()?;
        self.bytes -= size(&d);
        Some(d)
    }

    /// Removes the delivery at `i`.
    pub fn remove(&mut self, i: usize) -> Option<Delivery> {
        let d = self.items.remove(i)?;
        self.bytes -= size(&d);
        Some(d)
    }

    /// Keeps the deliveries for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&Delivery) -> bool) {
        let mut removed = 0;
        self.items.retain(|d| {
            let k = keep(d);
            if !k {
                removed += size(d);
            }
            k
        });
        self.bytes -= removed;
    }

    /// The delivery at `i`.
    pub fn get(&self, i: usize) -> Option<&Delivery> {
        self.items.get(i)
    }
}

impl IntoIterator for DeliveryQueue {
    type Item = Delivery;
    type IntoIter = std::collections::vec_deque::IntoIter<Delivery>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a> IntoIterator for &'a DeliveryQueue {
    type Item = &'a Delivery;
    type IntoIter = std::collections::vec_deque::Iter<'a, Delivery>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl std::ops::Index<usize> for DeliveryQueue {
    type Output = Delivery;

    fn index(&self, i: usize) -> &Delivery {
        &self.items[i]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::broker::session::Message;
    use crate::codec::QoS;

    fn delivery(len: usize) -> Delivery {
        Delivery {
            message: Arc::new(Message {
                topic: "t".into(),
                payload: vec![0; len].into(),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: Default::default(),
                expires_at: None,
                publisher: None,
            }),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_ids: Vec::new(),
            share: None,
        }
    }

    fn summed(q: &DeliveryQueue) -> usize {
        q.iter().map(size).sum()
    }

    #[test]
    fn the_total_follows_every_mutation() {
        let mut q = DeliveryQueue::new();
        for len in [3, 10, 0, 7, 5] {
            q.push_back(delivery(len));
            assert_eq!(q.bytes(), summed(&q));
        }
        assert_eq!(q.bytes(), 25);
        let d = q.pop_front().unwrap();
        assert_eq!(q.bytes(), 22);
        q.push_front(d);
        assert_eq!(q.bytes(), 25);
        q.remove(1);
        assert_eq!(q.bytes(), 15);
        q.retain(|d| d.message.payload.len() != 7);
        assert_eq!((q.len(), q.bytes()), (3, 8));
        assert_eq!(q.bytes(), summed(&q));
        let taken = std::mem::take(&mut q);
        assert_eq!((q.len(), q.bytes()), (0, 0));
        assert_eq!(taken.into_iter().count(), 3);
    }
}
