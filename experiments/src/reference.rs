//! Handshake and per-message sizes of related protocols from the
//! literature: cited, not measured here. The report prints them beside the
//! measured LWA and TLS rows, and the handshake-bytes figure draws them as
//! grey bars. One table, so both stay in step.

/// A cited handshake size.
pub struct CitedHandshake {
    /// Protocol and variant.
    pub name: &'static str,
    /// A label short enough for a figure's axis.
    pub short: &'static str,
    /// Bytes of all handshake messages, as the source counts them.
    pub bytes: u32,
    /// How the bytes split into messages, as the source gives them.
    pub parts: &'static str,
    /// The same with 16-byte MACs/tags, and how that was computed.
    pub with_16_byte_tags: &'static str,
    /// Where the figure comes from.
    pub source: &'static str,
}

/// Handshake sizes (no transport framing: no TCP/IP, no MQTT, no CoAP).
pub const HANDSHAKES: &[CitedHandshake] = &[
    CitedHandshake {
        name: "EDHOC-PSK (test vectors)",
        short: "EDHOC-PSK",
        bytes: 85,
        parts: "37 + 35 + 13 (94 with message 4); 8-byte MACs",
        with_16_byte_tags: "101 (+8 B for each of the MAC in message 2 and the tag in message 3); 118 with message 4 (+8 more); our arithmetic",
        source: "draft-ietf-lake-edhoc-psk, test vectors",
    },
    CitedHandshake {
        name: "EDHOC static-DH (method 3)",
        short: "EDHOC-DH",
        bytes: 101,
        parts: "three messages; 8-byte MACs",
        with_16_byte_tags: "117 (+8 B for each of MAC_2 and MAC_3); our arithmetic",
        source: "RFC 9528, section 1.2",
    },
    CitedHandshake {
        name: "TLS 1.3 PSK + ECDHE (x25519)",
        short: "TLS-PSK",
        bytes: 370,
        parts: "ClientHello, server flight, client Finished",
        with_16_byte_tags: "as cited if the source's suite has 16-byte tags; with an 8-byte-tag suite (CCM_8) +8 B per encrypted record",
        source: "draft-ietf-iotops-security-protocol-comparison",
    },
    CitedHandshake {
        name: "cTLS (PSK + ECDHE)",
        short: "cTLS",
        bytes: 186,
        parts: "compressed TLS 1.3 handshake",
        with_16_byte_tags: "as for TLS 1.3 above",
        source: "draft-ietf-iotops-security-protocol-comparison",
    },
    CitedHandshake {
        name: "WireGuard (Noise IK)",
        short: "WireGuard",
        bytes: 240,
        parts: "initiation 148 + response 92",
        with_16_byte_tags: "240: its Poly1305 tags are already 16 bytes",
        source: "WireGuard whitepaper (Donenfeld, NDSS 2017), section 5.4",
    },
];

/// Cited per-message overhead of a protected application message.
pub struct CitedOverhead {
    /// Protocol.
    pub name: &'static str,
    /// Bytes added per message.
    pub bytes: &'static str,
    /// What they are.
    pub what: &'static str,
}

/// Per-message overhead (LWA's is measured too: the report's wire bytes).
pub const OVERHEAD: &[CitedOverhead] = &[
    CitedOverhead {
        name: "TLS 1.3 record",
        bytes: "22",
        what: "5-byte header, 1-byte inner content type, 16-byte tag",
    },
    CitedOverhead {
        name: "OSCORE",
        bytes: "21 / 19",
        what: "request / response: option, partial IV, kid, 8-byte tag",
    },
    CitedOverhead {
        name: "WireGuard transport data",
        bytes: "32",
        what: "16-byte header (type, receiver, counter), 16-byte tag",
    },
    CitedOverhead {
        name: "LWA1 record",
        bytes: "16",
        what: "16-byte tag; the counter is implicit (protocol-spec/LWA.md section 7)",
    },
];

/// The report section: cited rows beside what this run measured.
pub fn section(out: &mut String, measured: &[(String, u64)], lwa_overhead: Option<f64>) {
    use std::fmt::Write as _;
    out.push_str("## Handshake bytes beside the literature (cited, not measured)\n\n");
    out.push_str(
        "Measured rows: every byte of the handshake on the socket minus plaintext MQTT's \
         CONNECT/CONNACK, from this run (TCP/IP headers excluded). Cited rows: the protocol's \
         own messages as their sources count them, without transport framing; they are not \
         measured here.\n\n",
    );
    out.push_str(
        "| protocol | bytes | made of | with 16-byte tags | source |\n|---|---|---|---|---|\n",
    );
    for (name, bytes) in measured {
        // Beside the cited TLS 1.3 PSK + ECDHE row, say what the socket count adds to it.
        let made_of = if name.starts_with("tls13-psk") {
            "measured: handshake bytes over plaintext MQTT 5, with what the cited TLS 1.3 PSK \
             row leaves out (record headers, compatibility ChangeCipherSpec, the \
             NewSessionTicket OpenSSL's server sends after the handshake)"
        } else {
            "measured: handshake bytes over plaintext MQTT 5"
        };
        let _ = writeln!(
            out,
            "| {name} | {bytes} | {made_of} | tags already 16 bytes | this run |"
        );
    }
    for h in HANDSHAKES {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} (cited, not measured) |",
            h.name, h.bytes, h.parts, h.with_16_byte_tags, h.source
        );
    }
    out.push_str(
        "\nPer-message overhead:\n\n| protocol | bytes per message | made of |\n|---|---|---|\n",
    );
    for o in OVERHEAD {
        let whose = if o.name.starts_with("LWA1") {
            "(this project's specification)"
        } else {
            "(cited, not measured)"
        };
        let _ = writeln!(out, "| {} | {} | {} {whose} |", o.name, o.bytes, o.what);
    }
    if let Some(b) = lwa_overhead {
        let _ = writeln!(
            out,
            "| LWA1 record, measured | {b:.1} | publisher wire bytes per message, lwa minus plain, this run |"
        );
    }
    out.push('\n');
}
