//! Symbolic terms of LWA1 (LWA.md sections 4, 5 and 7) and what a Dolev-Yao
//! attacker can derive from them.
//!
//! LWA2 (LWA2.md section 5) uses the same terms: its BLAKE3 `derive_key`
//! and `keyed_hash` are, like HKDF and HMAC, one-way functions of the same
//! inputs (PSK, `dh`, `TH`, label), and a model runs one version only, so
//! no LWA1 term ever meets an LWA2 one. Its missing version byte is not
//! represented in either.
//!
//! Terms are plain values compared structurally: two keys are equal exactly
//! when they were built from equal inputs (perfect cryptography, no
//! collisions). A hash, HKDF output or MAC cannot be inverted; the attacker
//! can only rebuild one from inputs it knows, or replay one it has seen.

/// The owner of an ephemeral X25519 secret: client session `i`, broker
/// session `j`, or the attacker (who may use one key everywhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scalar {
    /// Ephemeral secret of honest client session `i`.
    Client(u8),
    /// Ephemeral secret of honest broker session `j`.
    Broker(u8),
    /// The attacker's own ephemeral secret.
    Attacker,
}

/// A public key on the wire: `X25519(s, 9)` for a scalar, or a low-order
/// point, for which every exchange gives 32 zero bytes (LWA.md 5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Point {
    /// The public key of a scalar.
    Pub(Scalar),
    /// A small-order point (stands for all of them).
    LowOrder,
}

/// The X25519 output `dh`: symmetric in its two scalars (`g^xy = g^yx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shared {
    /// `g^(a*b)` with `a <= b` (the normal form of the commutative exponent).
    Dh(Scalar, Scalar),
    /// 32 zero bytes, the result with a low-order point.
    Zero,
}

impl Shared {
    /// `X25519(secret, peer)`.
    pub fn of(secret: Scalar, peer: Point) -> Shared {
        match peer {
            Point::LowOrder => Shared::Zero,
            Point::Pub(other) if secret <= other => Shared::Dh(secret, other),
            Point::Pub(other) => Shared::Dh(other, secret),
        }
    }
}

/// An LWA identity: `A` is an honest client's, `M` one the attacker
/// registered with the broker (so the attacker knows `PSK(M)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ident {
    /// The honest identity.
    A,
    /// The attacker's registered identity.
    M,
}

/// The offer fields (LWA.md 4.1); the version byte has one value in LWA1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Offer {
    /// `record_limit_log2` proposed by the client.
    pub limit: u8,
    /// The claimed identity.
    pub ident: Ident,
    /// The client ephemeral public key `e_c`.
    pub ec: Point,
}

/// `response_without_mac` (LWA.md 4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResponseBody {
    /// `chosen_record_limit_log2`.
    pub chosen: u8,
    /// The broker ephemeral public key `e_b` (absent only in a mutant).
    pub eb: Option<Point>,
}

/// `TH` (LWA.md 5.2): what the hash covers; `offer` is absent only in a mutant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Transcript {
    /// The connect context (client id, clean start, will), abstracted to a tag.
    pub ctx: u8,
    /// The offer as the party saw it.
    pub offer: Option<Offer>,
    /// `response_without_mac` as the party saw it.
    pub response: ResponseBody,
    /// Session Present of the CONNACK.
    pub sp: bool,
}

/// `prk = HKDF-Extract(PSK, dh)`; a mutant may leave either input out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prk {
    /// The PSK used as salt (of this identity).
    pub psk: Option<Ident>,
    /// The X25519 output used as input keying material.
    pub dh: Option<Shared>,
}

/// The HKDF-Expand labels of LWA.md 5.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    /// `c2b key`.
    C2bKey,
    /// `c2b iv`.
    C2bIv,
    /// `b2c key`.
    B2cKey,
    /// `b2c iv`.
    B2cIv,
    /// `broker mac`.
    BrokerMac,
    /// `client mac`.
    ClientMac,
}

/// `HKDF-Expand(prk, "LWA1 " | label | TH, L)`, or in an LWA2 key update
/// (LWA2.md 8.2) the same label under generation `gen`'s secret, itself a
/// one-way chain from `prk`: whoever can compute `prk` can compute every
/// generation, and nobody else any.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Which output.
    pub label: Label,
    /// The extracted key.
    pub prk: Prk,
    /// The transcript hash input.
    pub th: Transcript,
    /// Key generation: 0 from the handshake, 1 after one key update.
    pub gen: u8,
}

/// Which message of an LWA2 key update (LWA2.md 8.2) a MAC is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UpdateKind {
    /// The client's AUTH 0x19 data.
    Request,
    /// The broker's AUTH 0x00 data.
    Response,
}

/// `request = MAC(m_g, "request" | g | c)` or `response = MAC(m_g,
/// "response" | g | b | request)`, with `m_g` a one-way function of the
/// previous generation's secret (so of `prk` and `TH`). The model leaves
/// the response's binding of the request out (a weaker response, so the
/// claims checked with it hold for the specified one too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UpdateMac {
    /// Request or response.
    pub kind: UpdateKind,
    /// The session secret the chain starts from.
    pub prk: Prk,
    /// Its transcript.
    pub th: Transcript,
    /// The generation it moves to.
    pub gen: u8,
    /// Records of the old generation in the direction it closes (`c` or
    /// `b`); `None` only in the mutant that leaves the count out.
    pub count: Option<u8>,
}

/// A handshake MAC. `broker_mac = HMAC(k_broker_mac, TH)` and
/// `client_mac = HMAC(k_client_mac, TH | broker_mac)`; `broker_mac` is itself
/// a function of the key's `prk` and `TH`, so the key identifies the MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub Key);

/// A record direction (the `dir` byte of the AAD).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    /// Client to broker, `0x01`.
    C2b,
    /// Broker to client, `0x02`.
    B2c,
}

/// An honest party of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Party {
    /// Client session `i`.
    Client(u8),
    /// Broker session `j`.
    Broker(u8),
}

/// An application payload: each honest one is a fresh name that says who
/// sealed it and as which record, so a property can tell where an opened
/// record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Payload {
    /// Sealed by `sender` as its `idx`-th record.
    Honest {
        /// The session that sealed it.
        sender: Party,
        /// Its position in that session's direction.
        idx: u8,
    },
    /// Made up by the attacker.
    Attacker,
}

/// `sealed = AEAD-Seal(k_dir, iv_dir XOR ctr, "LWA1" | dir | ctr | ..., payload)`.
/// Topic, QoS and retain are one fixed value in the model (see README).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Record {
    /// AEAD key.
    pub key: Key,
    /// IV the nonce is built from.
    pub iv: Key,
    /// Counter in nonce and AAD.
    pub ctr: u8,
    /// Direction byte in the AAD.
    pub dir: Dir,
    /// The plaintext.
    pub payload: Payload,
}

/// What the attacker has: everything honest parties sent, plus the PSK of
/// its registered identity and, after the reveal, of `A`.
#[derive(Clone, Debug, Default)]
pub struct Knowledge {
    /// `PSK(A)` has been revealed.
    pub psk_a_revealed: bool,
    /// Handshake MACs seen on the wire.
    pub macs: Vec<Mac>,
    /// Sealed records seen on the wire.
    pub records: Vec<Record>,
    /// Payloads sent without protection (only a downgraded client does that).
    pub plain: Vec<Payload>,
    /// Key update requests and responses seen on the wire.
    pub update_macs: Vec<UpdateMac>,
}

impl Knowledge {
    /// Can the attacker compute `PSK(ident)`?
    pub fn psk(&self, ident: Ident) -> bool {
        match ident {
            Ident::M => true,
            Ident::A => self.psk_a_revealed,
        }
    }

    /// Can the attacker compute this X25519 output? Only with one of the two
    /// scalars (the honest ones are erased, never sent), or if it is zero.
    pub fn shared(&self, dh: Shared) -> bool {
        match dh {
            Shared::Zero => true,
            Shared::Dh(a, b) => a == Scalar::Attacker || b == Scalar::Attacker,
        }
    }

    /// Can the attacker compute this `prk`? Only with both of its inputs.
    pub fn prk(&self, prk: &Prk) -> bool {
        prk.psk.is_none_or(|ident| self.psk(ident)) && prk.dh.is_none_or(|dh| self.shared(dh))
    }

    /// Can the attacker compute this HKDF output? The label, `TH` and the
    /// generation are public, so it comes down to both inputs of `prk`.
    pub fn key(&self, key: &Key) -> bool {
        self.prk(&key.prk)
    }

    /// Can the attacker send this key update MAC: replay one seen, or compute it?
    pub fn update_mac(&self, mac: &UpdateMac) -> bool {
        self.prk(&mac.prk) || self.update_macs.contains(mac)
    }

    /// Can the attacker send this MAC: replay one seen, or compute it?
    pub fn mac(&self, mac: &Mac) -> bool {
        self.key(&mac.0) || self.macs.contains(mac)
    }

    /// Does the attacker know this payload: decrypting a record whose key
    /// and IV it knows, or reading it in clear?
    pub fn payload(&self, payload: Payload) -> bool {
        payload == Payload::Attacker
            || self.plain.contains(&payload)
            || self
                .records
                .iter()
                .any(|r| r.payload == payload && self.key(&r.key) && self.key(&r.iv))
    }

    /// The payloads a record opener expecting `key`, `iv`, `dir` and (unless
    /// `any_counter`) counter `ctr` can be made to open.
    ///
    /// An opener that gets anything else fails and closes the connection,
    /// which ends that session: leaving those deliveries out loses no
    /// violation of a safety property. Candidates are: a record seen on the
    /// wire that matches exactly (replay, reorder, reflection and cross-session
    /// delivery all reduce to this), a forgery under a key the attacker knows,
    /// and a forgery after a (key, nonce) pair was used for two different
    /// records: ChaCha20-Poly1305 then gives up its one-time Poly1305 key and
    /// the keystream, so the attacker can re-tag that ciphertext under any AAD.
    pub fn deliverable(
        &self,
        key: &Key,
        iv: &Key,
        ctr: u8,
        dir: Dir,
        any_counter: bool,
    ) -> Vec<Payload> {
        let mut out = Vec::new();
        let same_nonce = |r: &Record| r.key == *key && r.iv == *iv && (any_counter || r.ctr == ctr);
        for r in self.records.iter().filter(|r| same_nonce(r)) {
            if r.dir == dir {
                out.push(r.payload);
            }
            let reused = self
                .records
                .iter()
                .any(|o| o.key == r.key && o.iv == r.iv && o.ctr == r.ctr && o != r);
            if reused {
                out.push(r.payload);
            }
        }
        if self.key(key) {
            out.push(Payload::Attacker);
        }
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(psk: Option<Ident>, dh: Option<Shared>) -> Key {
        Key {
            label: Label::C2bKey,
            gen: 0,
            prk: Prk { psk, dh },
            th: Transcript {
                ctx: 0,
                offer: None,
                response: ResponseBody {
                    chosen: 1,
                    eb: None,
                },
                sp: false,
            },
        }
    }

    #[test]
    fn dh_is_commutative() {
        let c = Scalar::Client(0);
        let b = Scalar::Broker(1);
        assert_eq!(Shared::of(c, Point::Pub(b)), Shared::of(b, Point::Pub(c)));
        assert_eq!(Shared::of(c, Point::LowOrder), Shared::Zero);
    }

    #[test]
    fn key_needs_both_psk_and_dh() {
        let honest_dh = Some(Shared::of(Scalar::Client(0), Point::Pub(Scalar::Broker(0))));
        let mut k = Knowledge::default();
        assert!(!k.key(&key(Some(Ident::A), honest_dh)));
        assert!(!k.key(&key(Some(Ident::M), honest_dh)));
        assert!(k.key(&key(Some(Ident::M), Some(Shared::Zero))));
        assert!(!k.key(&key(Some(Ident::A), Some(Shared::Zero))));
        k.psk_a_revealed = true;
        assert!(k.key(&key(Some(Ident::A), Some(Shared::Zero))));
        assert!(!k.key(&key(Some(Ident::A), honest_dh)));
        assert!(k.key(&key(Some(Ident::A), None)));
    }

    #[test]
    fn nonce_reuse_allows_retagging() {
        let k = key(
            Some(Ident::A),
            Some(Shared::Dh(Scalar::Client(0), Scalar::Broker(0))),
        );
        let p0 = Payload::Honest {
            sender: Party::Client(0),
            idx: 0,
        };
        let p1 = Payload::Honest {
            sender: Party::Broker(0),
            idx: 0,
        };
        let mut kn = Knowledge::default();
        kn.records.push(Record {
            key: k,
            iv: k,
            ctr: 0,
            dir: Dir::C2b,
            payload: p0,
        });
        assert!(kn.deliverable(&k, &k, 0, Dir::B2c, false).is_empty());
        kn.records.push(Record {
            key: k,
            iv: k,
            ctr: 0,
            dir: Dir::B2c,
            payload: p1,
        });
        assert_eq!(kn.deliverable(&k, &k, 0, Dir::B2c, false), vec![p0, p1]);
        assert!(kn.deliverable(&k, &k, 1, Dir::B2c, false).is_empty());
    }
}
