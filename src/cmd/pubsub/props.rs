//! mosquitto's `-D COMMAND PROPERTY VALUE [VALUE]` MQTT 5.0 property flags.

use bytes::Bytes;
use mqtt_lwa::codec::Properties;

/// Splits the values of every `-D` occurrence (clap hands them over as one
/// list) back into `[command, property, value...]` groups: `user-property`
/// takes two values, every other property one.
pub fn group_flags(values: &[String]) -> Vec<Vec<String>> {
    let mut groups = Vec::new();
    let mut rest = values;
    while !rest.is_empty() {
        let arity = match rest.get(1).map(String::as_str) {
            Some("user-property") => 4,
            _ => 3,
        };
        let take = arity.min(rest.len());
        groups.push(rest[..take].to_vec());
        rest = &rest[take..];
    }
    groups
}

/// Which packet a `-D` property goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyTarget {
    /// CONNECT.
    Connect,
    /// PUBLISH.
    Publish,
    /// SUBSCRIBE.
    Subscribe,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// DISCONNECT.
    Disconnect,
    /// The will message.
    Will,
}

/// Properties for every packet the CLI sends, from the `-D` flags.
#[derive(Debug, Default, Clone)]
pub struct CliProperties {
    /// CONNECT properties.
    pub connect: Properties,
    /// PUBLISH properties.
    pub publish: Properties,
    /// SUBSCRIBE properties.
    pub subscribe: Properties,
    /// UNSUBSCRIBE properties.
    pub unsubscribe: Properties,
    /// DISCONNECT properties.
    pub disconnect: Properties,
    /// Will properties.
    pub will: Properties,
}

impl CliProperties {
    /// Parses every `-D` occurrence (each `[command, property, value, (value)]`).
    pub fn parse(flags: &[Vec<String>]) -> Result<Self, String> {
        let mut all = CliProperties::default();
        for flag in flags {
            let (command, name, values) = match flag.as_slice() {
                [c, n, rest @ ..] if !rest.is_empty() => (c.as_str(), n.as_str(), rest),
                _ => return Err(format!("-D needs COMMAND PROPERTY VALUE, got {flag:?}")),
            };
            let target = match command {
                "connect" => PropertyTarget::Connect,
                "publish" => PropertyTarget::Publish,
                "subscribe" => PropertyTarget::Subscribe,
                "unsubscribe" => PropertyTarget::Unsubscribe,
                "disconnect" => PropertyTarget::Disconnect,
                "will" => PropertyTarget::Will,
                other => return Err(format!("-D: unknown command {other:?}")),
            };
            let props = match target {
                PropertyTarget::Connect => &mut all.connect,
                PropertyTarget::Publish => &mut all.publish,
                PropertyTarget::Subscribe => &mut all.subscribe,
                PropertyTarget::Unsubscribe => &mut all.unsubscribe,
                PropertyTarget::Disconnect => &mut all.disconnect,
                PropertyTarget::Will => &mut all.will,
            };
            set(props, target, name, values)?;
        }
        Ok(all)
    }

    /// True when no `-D` flag was given.
    pub fn is_empty(&self) -> bool {
        [
            &self.connect,
            &self.publish,
            &self.subscribe,
            &self.unsubscribe,
            &self.disconnect,
            &self.will,
        ]
        .iter()
        .all(|p| p.is_empty())
    }
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("-D {name}: invalid number {value:?}"))
}

/// Sets one property, checking that `target` may carry it (MQTT 5.0 section 3).
fn set(
    props: &mut Properties,
    target: PropertyTarget,
    name: &str,
    values: &[String],
) -> Result<(), String> {
    use PropertyTarget::*;
    let allowed: &[PropertyTarget] = match name {
        "user-property" => &[Connect, Publish, Subscribe, Unsubscribe, Disconnect, Will],
        "session-expiry-interval" => &[Connect, Disconnect],
        "receive-maximum"
        | "maximum-packet-size"
        | "topic-alias-maximum"
        | "request-problem-information"
        | "request-response-information" => &[Connect],
        "payload-format-indicator"
        | "message-expiry-interval"
        | "content-type"
        | "response-topic"
        | "correlation-data" => &[Publish, Will],
        "will-delay-interval" => &[Will],
        "subscription-identifier" => &[Subscribe],
        "topic-alias" => {
            return Err("-D publish topic-alias: aliases are chosen by the client itself".into())
        }
        other => return Err(format!("-D: unknown or unsupported property {other:?}")),
    };
    if !allowed.contains(&target) {
        return Err(format!("-D: property {name} is not allowed for {target:?}"));
    }
    let one = || -> Result<&str, String> {
        match values {
            [v] => Ok(v.as_str()),
            _ => Err(format!("-D {name} takes exactly one value")),
        }
    };
    match name {
        "user-property" => match values {
            [k, v] => props.user_properties.push((k.clone(), v.clone())),
            _ => return Err("-D user-property takes a name and a value".into()),
        },
        "session-expiry-interval" => props.session_expiry_interval = Some(number(name, one()?)?),
        "receive-maximum" => {
            let v: u16 = number(name, one()?)?;
            if v == 0 {
                return Err("-D receive-maximum must be at least 1".into());
            }
            props.receive_maximum = Some(v);
        }
        "maximum-packet-size" => {
            let v: u32 = number(name, one()?)?;
            if v == 0 {
                return Err("-D maximum-packet-size must be at least 1".into());
            }
            props.maximum_packet_size = Some(v);
        }
        "topic-alias-maximum" => props.topic_alias_maximum = Some(number(name, one()?)?),
        "request-problem-information" => {
            props.request_problem_information = Some(flag_value(name, one()?)?)
        }
        "request-response-information" => {
            props.request_response_information = Some(flag_value(name, one()?)?)
        }
        "payload-format-indicator" => {
            props.payload_format_indicator = Some(flag_value(name, one()?)?)
        }
        "message-expiry-interval" => props.message_expiry_interval = Some(number(name, one()?)?),
        "content-type" => props.content_type = Some(one()?.to_owned()),
        "response-topic" => props.response_topic = Some(one()?.to_owned()),
        "correlation-data" => props.correlation_data = Some(Bytes::from(one()?.to_owned())),
        "will-delay-interval" => props.will_delay_interval = Some(number(name, one()?)?),
        "subscription-identifier" => {
            let v: u32 = number(name, one()?)?;
            if !(1..=268_435_455).contains(&v) {
                return Err("-D subscription-identifier must be 1..268435455".into());
            }
            props.subscription_identifiers = vec![v];
        }
        other => return Err(format!("-D: unsupported property {other:?}")),
    }
    Ok(())
}

/// A 0/1 byte property.
fn flag_value(name: &str, value: &str) -> Result<u8, String> {
    match value {
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(format!("-D {name} must be 0 or 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn common_properties_land_in_their_packets() {
        let p = CliProperties::parse(&[
            d(&["publish", "user-property", "k", "v"]),
            d(&["publish", "message-expiry-interval", "30"]),
            d(&["connect", "session-expiry-interval", "60"]),
            d(&["connect", "receive-maximum", "5"]),
            d(&["subscribe", "subscription-identifier", "7"]),
            d(&["will", "will-delay-interval", "3"]),
        ])
        .unwrap();
        assert_eq!(p.publish.user_properties, vec![("k".into(), "v".into())]);
        assert_eq!(p.publish.message_expiry_interval, Some(30));
        assert_eq!(p.connect.session_expiry_interval, Some(60));
        assert_eq!(p.connect.receive_maximum, Some(5));
        assert_eq!(p.subscribe.subscription_identifiers, vec![7]);
        assert_eq!(p.will.will_delay_interval, Some(3));
        assert!(!p.is_empty());
    }

    #[test]
    fn flag_values_are_regrouped_by_property_arity() {
        let flat = d(&[
            "publish",
            "user-property",
            "k",
            "v",
            "connect",
            "receive-maximum",
            "5",
        ]);
        assert_eq!(
            group_flags(&flat),
            vec![
                d(&["publish", "user-property", "k", "v"]),
                d(&["connect", "receive-maximum", "5"])
            ]
        );
    }

    #[test]
    fn misplaced_or_malformed_properties_are_refused() {
        for bad in [
            d(&["publish", "session-expiry-interval", "5"]),
            d(&["connect", "user-property", "only-key"]),
            d(&["connect", "receive-maximum", "0"]),
            d(&["connect", "receive-maximum", "x"]),
            d(&["bogus", "user-property", "k", "v"]),
            d(&["publish", "no-such-property", "1"]),
            d(&["subscribe", "subscription-identifier", "0"]),
        ] {
            assert!(
                CliProperties::parse(std::slice::from_ref(&bad)).is_err(),
                "{bad:?}"
            );
        }
    }
}
