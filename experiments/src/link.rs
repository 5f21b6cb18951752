//! Link profiles: the network between the experiment's clients and the broker.
//!
//! `loopback` is the unshaped 127.0.0.1 of earlier runs; `remote:HOST` is the
//! real network to a broker host served by `experiment serve` (not shaped,
//! measured with iperf3 and MQTT round trips); every other profile is
//! emulated by [`super::netns::EmulatedLink`] (network namespaces, veth
//! pairs, `tbf` rate shaping, and delay/loss from `netem` or, where the
//! kernel lacks it, from the NFQUEUE delay line of [`super::linkem`]).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One link: rate, one-way delay, jitter and loss, each applied per direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkProfile {
    /// Name in `--link`, file names and report headings.
    pub name: String,
    /// Rate limit per direction in bit/s (`None`: not shaped).
    pub rate_bit_s: Option<u64>,
    /// One-way delay per direction, in microseconds (round trip = 2 x this).
    pub delay_us: u64,
    /// Each packet's delay varies uniformly by up to +/- this, in microseconds.
    pub jitter_us: u64,
    /// Probability that a packet is dropped, per direction.
    pub loss: f64,
    /// What the profile resembles and why it has these values.
    pub about: String,
}

/// Errors parsing `--link`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkParseError {
    /// Neither a built-in name nor a `custom:` spec.
    #[error(
        "unknown link {0:?} (built-in: {1}; or custom:rate=10mbit:delay=5ms:jitter=1ms:loss=0.5%)"
    )]
    Unknown(String, String),
    /// A `custom:` field that does not parse.
    #[error("bad link field {0:?}: {1}")]
    Field(String, &'static str),
}

impl LinkProfile {
    /// The name of the unshaped loopback link.
    pub const LOOPBACK: &'static str = "loopback";
    /// Prefix of a remote link's name: `remote:HOST`.
    pub const REMOTE_PREFIX: &'static str = "remote:";

    /// Whether this is the unshaped loopback (no namespaces, 127.0.0.1).
    pub fn is_loopback(&self) -> bool {
        self.name == Self::LOOPBACK
    }

    /// The broker host of a remote link (`remote:HOST`), `None` for any other link.
    pub fn remote_host(&self) -> Option<&str> {
        self.name.strip_prefix(Self::REMOTE_PREFIX)
    }

    /// Whether this is the real network to a remote broker host (`experiment --remote`).
    pub fn is_remote(&self) -> bool {
        self.remote_host().is_some()
    }

    /// Whether the run builds this link itself (namespaces, shaping): neither loopback nor remote.
    pub fn is_emulated(&self) -> bool {
        !self.is_loopback() && !self.is_remote()
    }

    /// One-way delay.
    pub fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_us)
    }

    /// Jitter bound.
    pub fn jitter(&self) -> Duration {
        Duration::from_micros(self.jitter_us)
    }

    /// Today's behaviour: 127.0.0.1, nothing emulated.
    pub fn loopback() -> Self {
        LinkProfile {
            name: Self::LOOPBACK.into(),
            rate_bit_s: None,
            delay_us: 0,
            jitter_us: 0,
            loss: 0.0,
            about: "127.0.0.1 on the measuring machine, unshaped".into(),
        }
    }

    /// The network between this machine and the broker host `host` (resolved to `ip`) of
    /// `experiment --remote`: nothing emulated, so no rate, delay or loss is stated;
    /// the run measures it instead (iperf3, MQTT PINGREQ round trips).
    pub fn remote(host: &str, ip: std::net::IpAddr) -> Self {
        LinkProfile {
            name: format!("{}{host}", Self::REMOTE_PREFIX),
            rate_bit_s: None,
            delay_us: 0,
            jitter_us: 0,
            loss: 0.0,
            about: format!(
                "the real network between this machine (clients) and the broker host {host} \
                 ({ip}), where `mqtt-lwa experiment serve` runs; not emulated: measured before \
                 the matrix with iperf3 and MQTT PINGREQ/PINGRESP round trips"
            ),
        }
    }

    /// A switched Fast Ethernet LAN: 100 Mbit/s, 0.25 ms one way (a typical 0.5 ms ping), no loss.
    pub fn lan() -> Self {
        LinkProfile {
            name: "lan".into(),
            rate_bit_s: Some(100_000_000),
            delay_us: 250,
            jitter_us: 0,
            loss: 0.0,
            about: "switched 100 Mbit/s Ethernet: 0.5 ms round trip, no loss".into(),
        }
    }

    /// An approximation of the seed study's 802.11n link between two Raspberry Pi 3B.
    ///
    /// The Pi 3B's single-stream 2.4 GHz 802.11n radio (72 Mbit/s PHY at best)
    /// gives about 20-35 Mbit/s of TCP in published iperf runs; station to
    /// station through an access point every frame crosses the air twice, and
    /// the seed's own iperf figure was 13.4 Mbit/s. 20 Mbit/s, 3 ms one way
    /// (6 ms ping) with 1 ms jitter and 0.1 % residual loss (802.11 retransmits
    /// hide most radio loss from IP) sit in that range. Not a measurement of
    /// the seed's link: an approximation with stated values.
    pub fn pi_wifi() -> Self {
        LinkProfile {
            name: "pi-wifi".into(),
            rate_bit_s: Some(20_000_000),
            delay_us: 3_000,
            jitter_us: 1_000,
            loss: 0.001,
            about: "approximates the seed's 802.11n link between two Raspberry Pi 3B via an \
                    access point: 20 Mbit/s (published Pi 3B iperf 20-35 Mbit/s, seed's own \
                    iperf 13.4), 6 ms ping, 1 ms jitter, 0.1 % loss"
                .into(),
        }
    }

    /// A constrained uplink (rural DSL/3G class): 1 Mbit/s, 50 ms one way, 1 % loss.
    pub fn constrained() -> Self {
        LinkProfile {
            name: "constrained".into(),
            rate_bit_s: Some(1_000_000),
            delay_us: 50_000,
            jitter_us: 0,
            loss: 0.01,
            about: "constrained uplink (3G/rural DSL class): 1 Mbit/s, 100 ms round trip, 1 % \
                    loss per direction; where per-message bytes and round trips show most"
                .into(),
        }
    }

    /// Every built-in profile, loopback first.
    pub fn builtin() -> Vec<LinkProfile> {
        vec![
            Self::loopback(),
            Self::lan(),
            Self::pi_wifi(),
            Self::constrained(),
        ]
    }

    /// A built-in name, or `custom:rate=R:delay=D[:jitter=J][:loss=L]` (rate `10mbit`,
    /// `500kbit` or `unlimited`; times `5ms`, `250us`; loss `0.5%` or `0.005`).
    pub fn parse(spec: &str) -> Result<Self, LinkParseError> {
        if let Some(p) = Self::builtin().into_iter().find(|p| p.name == spec) {
            return Ok(p);
        }
        let Some(fields) = spec.strip_prefix("custom:") else {
            let names: Vec<String> = Self::builtin().into_iter().map(|p| p.name).collect();
            return Err(LinkParseError::Unknown(spec.into(), names.join(", ")));
        };
        let mut p = LinkProfile {
            name: spec.into(),
            rate_bit_s: None,
            delay_us: 0,
            jitter_us: 0,
            loss: 0.0,
            about: "custom link given on the command line".into(),
        };
        for field in fields.split(':').filter(|f| !f.is_empty()) {
            let bad = |why| LinkParseError::Field(field.into(), why);
            let (key, value) = field.split_once('=').ok_or(bad("expected key=value"))?;
            match key {
                "rate" => p.rate_bit_s = parse_rate(value).ok_or(bad("rate like 10mbit"))?,
                "delay" => p.delay_us = parse_micros(value).ok_or(bad("time like 5ms"))?,
                "jitter" => p.jitter_us = parse_micros(value).ok_or(bad("time like 1ms"))?,
                "loss" => p.loss = parse_loss(value).ok_or(bad("loss like 0.5%"))?,
                _ => return Err(bad("keys: rate, delay, jitter, loss")),
            }
        }
        if p.jitter_us > p.delay_us {
            return Err(LinkParseError::Field(
                spec.into(),
                "jitter larger than the delay",
            ));
        }
        Ok(p)
    }

    /// `rate 20 Mbit/s, delay 3 ms one way (+/- 1 ms), loss 0.1 %`.
    pub fn summary(&self) -> String {
        if self.is_loopback() {
            return "unshaped 127.0.0.1".into();
        }
        if let Some(host) = self.remote_host() {
            return format!("network to the broker host {host}, not emulated");
        }
        let rate = match self.rate_bit_s {
            Some(r) => format!("{} Mbit/s", trim(r as f64 / 1e6)),
            None => "unlimited rate".into(),
        };
        let jitter = if self.jitter_us > 0 {
            format!(" (+/- {} ms)", trim(self.jitter_us as f64 / 1e3))
        } else {
            String::new()
        };
        format!(
            "{rate}, {} ms one way{jitter}, loss {} %",
            trim(self.delay_us as f64 / 1e3),
            trim(self.loss * 100.0)
        )
    }
}

impl fmt::Display for LinkProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.summary())
    }
}

/// `3`, `0.25`, `13.4`: no trailing zeros.
fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `unlimited` -> `Some(None)`; `10mbit` -> `Some(Some(10_000_000))`.
fn parse_rate(v: &str) -> Option<Option<u64>> {
    if v == "unlimited" {
        return Some(None);
    }
    let (num, mult) = if let Some(n) = v.strip_suffix("gbit") {
        (n, 1e9)
    } else if let Some(n) = v.strip_suffix("mbit") {
        (n, 1e6)
    } else if let Some(n) = v.strip_suffix("kbit") {
        (n, 1e3)
    } else {
        (v.strip_suffix("bit")?, 1.0)
    };
    let x: f64 = num.parse().ok()?;
    let bits = x * mult;
    (bits.is_finite() && bits >= 8_000.0).then_some(Some(bits as u64))
}

/// `5ms`, `250us`, `1s` -> microseconds.
fn parse_micros(v: &str) -> Option<u64> {
    let (num, mult) = if let Some(n) = v.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1e3)
    } else {
        (v.strip_suffix('s')?, 1e6)
    };
    let x: f64 = num.parse().ok()?;
    let us = x * mult;
    (us.is_finite() && (0.0..=10e6).contains(&us)).then_some(us as u64)
}

/// `0.5%` or `0.005` -> 0.005.
fn parse_loss(v: &str) -> Option<f64> {
    let p = match v.strip_suffix('%') {
        Some(n) => n.parse::<f64>().ok()? / 100.0,
        None => v.parse().ok()?,
    };
    (0.0..1.0).contains(&p).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_parse_to_themselves() {
        for p in LinkProfile::builtin() {
            assert_eq!(LinkProfile::parse(&p.name).unwrap(), p);
        }
        assert!(LinkProfile::parse("loopback").unwrap().is_loopback());
        assert!(!LinkProfile::parse("pi-wifi").unwrap().is_loopback());
        assert!(LinkProfile::parse("pi-wifi").unwrap().is_emulated());
        // `remote:` names the served broker host; `--link` cannot ask for one.
        assert!(LinkProfile::parse("remote:10.0.0.1").is_err());
    }

    #[test]
    fn remote_link_names_its_host() {
        let r = LinkProfile::remote("pi-a", "192.168.1.10".parse().unwrap());
        assert_eq!(r.name, "remote:pi-a");
        assert_eq!(r.remote_host(), Some("pi-a"));
        assert!(r.is_remote() && !r.is_loopback() && !r.is_emulated());
        assert!(r.about.contains("192.168.1.10"), "{}", r.about);
        assert_eq!(
            r.to_string(),
            "remote:pi-a (network to the broker host pi-a, not emulated)"
        );
        assert!(!LinkProfile::loopback().is_emulated());
        assert_eq!(LinkProfile::loopback().remote_host(), None);
    }

    #[test]
    fn custom_spec_sets_every_field() {
        let p = LinkProfile::parse("custom:rate=10mbit:delay=5ms:jitter=250us:loss=0.5%").unwrap();
        assert_eq!(p.rate_bit_s, Some(10_000_000));
        assert_eq!(p.delay(), Duration::from_millis(5));
        assert_eq!(p.jitter(), Duration::from_micros(250));
        assert!((p.loss - 0.005).abs() < 1e-12);
        assert_eq!(
            p.name,
            "custom:rate=10mbit:delay=5ms:jitter=250us:loss=0.5%"
        );
        let q = LinkProfile::parse("custom:delay=5ms:rate=unlimited:loss=0.01").unwrap();
        assert_eq!(q.rate_bit_s, None);
        assert!((q.loss - 0.01).abs() < 1e-12);
        assert_eq!(q.summary(), "unlimited rate, 5 ms one way, loss 1 %");
    }

    #[test]
    fn bad_specs_are_refused_with_the_field() {
        for bad in [
            "wifi",
            "custom:delay",
            "custom:delay=5",
            "custom:rate=fast",
            "custom:rate=1bit",
            "custom:loss=100%",
            "custom:loss=-1",
            "custom:speed=1mbit",
            "custom:delay=1ms:jitter=2ms",
        ] {
            assert!(LinkProfile::parse(bad).is_err(), "{bad}");
        }
        let e = LinkProfile::parse("wifi").unwrap_err().to_string();
        assert!(e.contains("pi-wifi"), "{e}");
    }

    #[test]
    fn summaries_state_the_parameters() {
        assert_eq!(
            LinkProfile::pi_wifi().summary(),
            "20 Mbit/s, 3 ms one way (+/- 1 ms), loss 0.1 %"
        );
        assert_eq!(
            LinkProfile::constrained().summary(),
            "1 Mbit/s, 50 ms one way, loss 1 %"
        );
        assert_eq!(
            LinkProfile::lan().summary(),
            "100 Mbit/s, 0.25 ms one way, loss 0 %"
        );
    }
}
