//! The LWA1 state machines of LWA.md section 6 (client and broker), the
//! record layer of section 7 and a Dolev-Yao network, as a stateright
//! [`Model`]; and LWA2's (LWA2.md section 6), selected by [`Version`].
//!
//! LWA2 differs in what the model represents in three ways: its keys come
//! from BLAKE3 instead of HKDF and HMAC (the same terms: one-way functions
//! of the same inputs, and a model runs one version only); the client
//! confirms its keys either with the finished or with its first sealed
//! PUBLISH (c2b record 0), which the broker must open before any side
//! effect; and the broker sends no AUTH 0x00. The last changes nothing in
//! the model: LWA1's AUTH 0x00 carries no authentication, so neither
//! version's client waits for it here (its b2c opener opens as soon as the
//! client accepted).
//!
//! An LWA2 model may also run one key update per connection (LWA2.md 8.2,
//! [`LwaModel::with_key_update`]): the client sends the request (a MAC over
//! the generation and its c2b record count) and seals under generation 1
//! from then on; the broker, if the request's count equals the c2b records
//! it opened, moves both directions and answers with a MAC over its b2c
//! count; the client moves its opener when that verifies. Counters restart
//! at 0 in generation 1.
//!
//! A model may also let the operator revoke `PSK(A)` at any moment
//! (LWA.md 12.12, [`LwaModel::with_revocation`]): the broker then refuses
//! new offers of `A`, accepts no confirmation of a run that began before
//! and opens or seals no record of an established one.
//!
//! The network is the attacker: every message an honest party sends is added
//! to the attacker's knowledge (it is never "in flight" to anyone), and
//! every message an honest party receives is chosen by the attacker from what
//! it can derive. Forwarding, dropping, replaying, reordering, reflecting,
//! injecting and rewriting are all that one choice.

use stateright::{Model, Property};

use crate::properties;
use crate::terms::{
    Dir, Ident, Key, Knowledge, Label, Mac, Offer, Party, Payload, Point, Prk, Record,
    ResponseBody, Scalar, Shared, Transcript, UpdateKind, UpdateMac,
};

/// The broker's configured `record_limit_log2` (the model's largest value).
pub const BROKER_LIMIT: u8 = 2;
/// The connect context honest clients use; the attacker may send the other one.
pub const CLIENT_CTX: u8 = 0;

/// The protocol version a model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// LWA1 (LWA.md, method `LWA1`): the broker is convinced by the AUTH finished.
    Lwa1,
    /// LWA2 (LWA2.md, method `L2`): the broker is convinced by the AUTH
    /// finished or by the first sealed PUBLISH (c2b record 0).
    Lwa2,
}

/// How a broker run was convinced of the client (LWA2.md 6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Confirmation {
    /// AUTH 0x19 with a verified `client_mac` (LWA1, and LWA2's finished path).
    Finished,
    /// A first PUBLISH that opened as c2b record 0 (LWA2's PUBLISH path).
    FirstRecord,
}

/// One known design flaw, to show that the properties can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flaw {
    /// `TH` omits the offer (identity, proposed limit, `e_c`).
    OfferNotInTranscript,
    /// Both directions use the `c2b` key and IV.
    OneKeyBothDirections,
    /// The receiver takes the record counter from the wire instead of its own.
    CounterFromWire,
    /// `prk = HKDF-Extract(constant, dh)`: the PSK is not in the key schedule.
    NoPskInKeySchedule,
    /// The broker sends no ephemeral key: `prk = HKDF-Extract(PSK, constant)`.
    NoBrokerEphemeral,
    /// Neither side rejects an all-zero `dh`.
    NoZeroDhCheck,
    /// The broker attaches the session (takeover, will) when it answers the offer.
    SideEffectBeforeFinished,
    /// The client accepts a CONNACK without LWA1 (or L2) data and publishes in clear.
    AcceptsUnauthenticatedConnack,
    /// LWA2 only: the broker takes a first PUBLISH as the confirmation (it
    /// attaches the session) without opening it as c2b record 0 first.
    ConfirmationRecordNotOpened,
    /// The broker does not re-check that the PSK was not revoked, neither at
    /// the confirmation nor before a record (LWA.md 12.12). Turns revocation on.
    NoRevocationCheck,
}

impl Flaw {
    /// Every flaw, in a fixed order.
    pub const ALL: [Flaw; 10] = [
        Flaw::OfferNotInTranscript,
        Flaw::OneKeyBothDirections,
        Flaw::CounterFromWire,
        Flaw::NoPskInKeySchedule,
        Flaw::NoBrokerEphemeral,
        Flaw::NoZeroDhCheck,
        Flaw::SideEffectBeforeFinished,
        Flaw::AcceptsUnauthenticatedConnack,
        Flaw::ConfirmationRecordNotOpened,
        Flaw::NoRevocationCheck,
    ];

    /// Whether this flaw changes anything in `version` (LWA1 has no
    /// first-record confirmation).
    pub fn applies_to(self, version: Version) -> bool {
        self != Flaw::ConfirmationRecordNotOpened || version == Version::Lwa2
    }
}

/// A design flaw of LWA2's key update (LWA2.md 8.2), to show that the
/// properties catch it; only in a model with key update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateFlaw {
    /// Request and response MACs leave the record counts out, so the two
    /// sides may switch at different records.
    CountNotInMac,
    /// Generation 1 keeps generation 0's keys and IVs while the counters
    /// restart: every nonce of generation 0 is used again.
    KeysKeptAcrossUpdate,
}

impl UpdateFlaw {
    /// Every key update flaw, in a fixed order.
    pub const ALL: [UpdateFlaw; 2] = [UpdateFlaw::CountNotInMac, UpdateFlaw::KeysKeptAcrossUpdate];
}

/// How far the model is unrolled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Honest client sessions (all of identity `A`).
    pub clients: u8,
    /// Broker sessions (each started by whatever offer the attacker delivers).
    pub brokers: u8,
    /// Records each client seals (c2b).
    pub c2b_records: u8,
    /// Records each broker session seals (b2c).
    pub b2c_records: u8,
}

impl Bounds {
    /// The default bounds of `examples/check`: two clients, two broker
    /// sessions, two c2b records and one b2c record per session. The test
    /// suite (`tests/proofs_model.rs`) checks the smaller 1, 2, 2, 1 and
    /// 2, 1, 2, 1.
    pub const CI: Bounds = Bounds {
        clients: 2,
        brokers: 2,
        c2b_records: 2,
        b2c_records: 1,
    };
}

/// The model: LWA1 or LWA2 as specified, or with one [`Flaw`].
#[derive(Clone, Debug)]
pub struct LwaModel {
    /// The protocol version.
    pub version: Version,
    /// Unrolling bounds.
    pub bounds: Bounds,
    /// The flaw, if this is a mutant.
    pub flaw: Option<Flaw>,
    /// The operator may revoke `PSK(A)` (LWA.md 12.12).
    pub revocation: bool,
    /// LWA2: each connection may run one key update (LWA2.md 8.2).
    pub key_update: bool,
    /// The key update flaw, if this is such a mutant (implies `key_update`).
    pub update_flaw: Option<UpdateFlaw>,
}

/// What each side believes about the handshake once it has run: the
/// fields injective agreement is stated on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct View {
    /// Connect context.
    pub ctx: u8,
    /// Offer as sent (client) or received (broker).
    pub offer: Offer,
    /// Chosen record limit.
    pub chosen: u8,
    /// Broker ephemeral public key (absent only in a mutant).
    pub eb: Option<Point>,
    /// Session Present.
    pub sp: bool,
}

/// Client phases of LWA.md 6.1 (CLOSED is not a state: a session that fails
/// simply stops acting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientPhase {
    /// Not started.
    Start,
    /// CONNECT(offer) sent.
    WaitConnack,
    /// Response verified, confirmation sent: AUTH(finished) in LWA1; the
    /// finished or c2b record 0 in LWA2.
    Open,
    /// Accepted a CONNACK without LWA1 (only the downgrade mutant).
    PlainOpen,
    /// LWA2 only: response verified, keys derived, the confirmation (the
    /// finished or c2b record 0) not sent yet.
    Confirming,
}

/// Broker phases of LWA.md 6.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BrokerPhase {
    /// No CONNECT yet.
    Idle,
    /// CONNACK(response) sent: AWAIT_FINISHED (LWA1), AWAIT_CONFIRMATION (LWA2).
    AwaitFinished,
    /// Confirmation verified (LWA1: and AUTH 0x00 sent).
    Open,
}

/// One client session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientState {
    /// Phase.
    pub phase: ClientPhase,
    /// Set when the response verified.
    pub view: Option<View>,
    /// `PSK(A)` was still secret when this session accepted.
    pub clean: bool,
    /// AUTH(finished) sent (LWA1: with the acceptance).
    pub finished: bool,
    /// Records sealed (c2b).
    pub sealed: u8,
    /// Payloads opened (b2c), in order.
    pub opened: Vec<Payload>,
    /// Key update: `sealed` when the request went out (records from there
    /// on are generation 1, counters from 0).
    pub sealed_at_update: Option<u8>,
    /// Key update: `opened.len()` when the response verified (the opener is
    /// generation 1 from there on).
    pub opened_at_update: Option<u8>,
}

/// One broker session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BrokerState {
    /// Phase.
    pub phase: BrokerPhase,
    /// Set when the response was sent.
    pub view: Option<View>,
    /// `PSK(identity)` was secret when the confirmation verified.
    pub clean: bool,
    /// How the broker was convinced, once it was.
    pub confirmed: Option<Confirmation>,
    /// MQTT side effect (takeover, will, session) applied; `Some(clean)`
    /// says whether `PSK(A)` was still secret at that moment.
    pub effect: Option<bool>,
    /// Records sealed (b2c).
    pub sealed: u8,
    /// Payloads opened (c2b), in order.
    pub opened: Vec<Payload>,
    /// Accepted a confirmation or opened a record of identity `A` after
    /// `PSK(A)` was revoked (only a mutant does).
    pub after_revocation: bool,
    /// Key update answered: `(opened.len(), sealed)` at that moment, where
    /// both directions moved to generation 1.
    pub updated_at: Option<(u8, u8)>,
}

/// The whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// Client sessions.
    pub clients: Vec<ClientState>,
    /// Broker sessions.
    pub brokers: Vec<BrokerState>,
    /// `PSK(A)` revealed to the attacker.
    pub psk_a_revealed: bool,
    /// `PSK(A)` revoked at the broker.
    pub psk_a_revoked: bool,
}

/// One step: an honest party acts on a message the attacker chose, the
/// attacker learns `PSK(A)`, or the operator revokes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Client `i` sends CONNECT with its offer.
    ClientConnect(u8),
    /// Broker session `j` receives CONNECT with this context and offer.
    BrokerRespond {
        /// Session.
        j: u8,
        /// Connect context.
        ctx: u8,
        /// Offer.
        offer: Offer,
    },
    /// Client `i` receives CONNACK carrying this response; the broker_mac
    /// is the one the client expects (the attacker can produce it).
    ClientAccept {
        /// Session.
        i: u8,
        /// `response_without_mac`.
        response: ResponseBody,
        /// Session Present.
        sp: bool,
    },
    /// Client `i` receives CONNACK 0x00 without LWA1 data.
    ClientPlainConnack(u8),
    /// Broker `j` receives AUTH with the finished it expects.
    BrokerFinish(u8),
    /// LWA2: client `i` sends AUTH(finished) as its confirmation.
    ClientFinish(u8),
    /// LWA2: broker `j`, awaiting the confirmation, opens a first PUBLISH
    /// with this payload as c2b record 0.
    BrokerConfirmRecord(u8, Payload),
    /// LWA2, only the mutant: broker `j` takes a first PUBLISH as the
    /// confirmation without opening it.
    BrokerConfirmUnopened(u8),
    /// Client `i` seals its next PUBLISH.
    ClientSeal(u8),
    /// Broker session `j` seals its next PUBLISH.
    BrokerSeal(u8),
    /// Client `i` opens a PUBLISH with this payload.
    ClientOpen(u8, Payload),
    /// Broker session `j` opens a PUBLISH with this payload.
    BrokerOpen(u8, Payload),
    /// Key update: client `i` sends its request and seals under generation 1.
    ClientUpdate(u8),
    /// Key update: broker `j` receives a request it verifies and answers.
    BrokerUpdate(u8),
    /// Key update: client `i` receives a response it verifies.
    ClientUpdateDone(u8),
    /// The attacker learns `PSK(A)`.
    RevealPsk,
    /// The operator revokes `PSK(A)` at the broker.
    RevokePsk,
}

/// A session's record keys: (key, iv) for c2b and for b2c.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionKeys {
    /// c2b AEAD key and IV.
    pub c2b: (Key, Key),
    /// b2c AEAD key and IV.
    pub b2c: (Key, Key),
    /// The MAC keys (broker, client).
    pub macs: (Key, Key),
}

impl LwaModel {
    /// The model of `version`, honest or with one flaw, without revocation.
    pub fn new(version: Version, bounds: Bounds, flaw: Option<Flaw>) -> Self {
        LwaModel {
            version,
            bounds,
            flaw,
            revocation: false,
            key_update: false,
            update_flaw: None,
        }
    }

    /// The honest protocol (LWA1).
    pub fn honest(bounds: Bounds) -> Self {
        LwaModel::new(Version::Lwa1, bounds, None)
    }

    /// An LWA1 mutant with one flaw.
    pub fn mutant(bounds: Bounds, flaw: Flaw) -> Self {
        LwaModel::new(Version::Lwa1, bounds, Some(flaw))
    }

    /// The honest protocol (LWA2).
    pub fn honest_lwa2(bounds: Bounds) -> Self {
        LwaModel::new(Version::Lwa2, bounds, None)
    }

    /// An LWA2 mutant with one flaw.
    pub fn mutant_lwa2(bounds: Bounds, flaw: Flaw) -> Self {
        LwaModel::new(Version::Lwa2, bounds, Some(flaw))
    }

    /// The same model in which the operator may revoke `PSK(A)`.
    pub fn with_revocation(self) -> Self {
        LwaModel {
            revocation: true,
            ..self
        }
    }

    /// The same model (LWA2) with one key update per connection allowed.
    pub fn with_key_update(self) -> Self {
        LwaModel {
            key_update: true,
            ..self
        }
    }

    /// The same model with key update and one of its flaws.
    pub fn with_update_flaw(self, flaw: UpdateFlaw) -> Self {
        LwaModel {
            key_update: true,
            update_flaw: Some(flaw),
            ..self
        }
    }

    /// Whether the operator may revoke `PSK(A)` (always in the mutant
    /// that skips the revocation check).
    pub fn has_revocation(&self) -> bool {
        self.revocation || self.has(Flaw::NoRevocationCheck)
    }

    fn has(&self, flaw: Flaw) -> bool {
        self.flaw == Some(flaw)
    }

    /// The transcript a party with this view hashes.
    pub fn transcript(&self, v: &View) -> Transcript {
        Transcript {
            ctx: v.ctx,
            offer: (!self.has(Flaw::OfferNotInTranscript)).then_some(v.offer),
            response: ResponseBody {
                chosen: v.chosen,
                eb: v.eb,
            },
            sp: v.sp,
        }
    }

    /// Keys of a party holding `secret` (its ephemeral scalar) with this view.
    pub fn keys(&self, secret: Scalar, v: &View) -> SessionKeys {
        self.keys_gen(secret, v, 0)
    }

    /// The same keys of generation `gen` (after `gen` key updates).
    pub fn keys_gen(&self, secret: Scalar, v: &View, gen: u8) -> SessionKeys {
        let gen = if self.update_flaw == Some(UpdateFlaw::KeysKeptAcrossUpdate) {
            0
        } else {
            gen
        };
        let peer = match secret {
            Scalar::Client(_) => v.eb,
            _ => Some(v.offer.ec),
        };
        let dh = match peer {
            Some(p) if !self.has(Flaw::NoBrokerEphemeral) => Some(Shared::of(secret, p)),
            _ => None,
        };
        let prk = Prk {
            psk: (!self.has(Flaw::NoPskInKeySchedule)).then_some(v.offer.ident),
            dh,
        };
        let th = self.transcript(v);
        let key = |label| Key {
            label,
            prk,
            th,
            gen,
        };
        let c2b = (key(Label::C2bKey), key(Label::C2bIv));
        let b2c = if self.has(Flaw::OneKeyBothDirections) {
            c2b
        } else {
            (key(Label::B2cKey), key(Label::B2cIv))
        };
        SessionKeys {
            c2b,
            b2c,
            macs: (key(Label::BrokerMac), key(Label::ClientMac)),
        }
    }

    /// Keys of client session `i`, once it accepted.
    pub fn client_keys(&self, i: usize, c: &ClientState) -> Option<SessionKeys> {
        c.view.map(|v| self.keys(Scalar::Client(i as u8), &v))
    }

    /// Keys of broker session `j`, once it responded.
    pub fn broker_keys(&self, j: usize, b: &BrokerState) -> Option<SessionKeys> {
        b.view.map(|v| self.keys(Scalar::Broker(j as u8), &v))
    }

    /// A key update MAC of the session whose keys are `keys`: its `prk` and
    /// `TH` are in every key of the session.
    pub fn update_mac(&self, keys: &SessionKeys, kind: UpdateKind, count: u8) -> UpdateMac {
        UpdateMac {
            kind,
            prk: keys.c2b.0.prk,
            th: keys.c2b.0.th,
            gen: 1,
            count: (self.update_flaw != Some(UpdateFlaw::CountNotInMac)).then_some(count),
        }
    }

    /// The (key, iv, counter) record `idx` of a direction is sealed under,
    /// when the direction moved to generation 1 at record `switched`.
    fn record_keys(
        &self,
        secret: Scalar,
        v: &View,
        dir: Dir,
        idx: u8,
        switched: Option<u8>,
    ) -> (Key, Key, u8) {
        let (gen, ctr) = match switched {
            Some(at) if idx >= at => (1, idx - at),
            _ => (0, idx),
        };
        let keys = self.keys_gen(secret, v, gen);
        let (key, iv) = match dir {
            Dir::C2b => keys.c2b,
            Dir::B2c => keys.b2c,
        };
        (key, iv, ctr)
    }

    /// Everything the attacker has in `s`.
    pub fn knowledge(&self, s: &State) -> Knowledge {
        let mut k = Knowledge {
            psk_a_revealed: s.psk_a_revealed,
            ..Knowledge::default()
        };
        for (i, c) in s.clients.iter().enumerate() {
            let payload = |idx| Payload::Honest {
                sender: Party::Client(i as u8),
                idx,
            };
            if c.phase == ClientPhase::PlainOpen {
                k.plain.extend((0..c.sealed).map(payload));
            }
            if let (Some(keys), Some(v)) = (self.client_keys(i, c), c.view) {
                if c.finished {
                    k.macs.push(Mac(keys.macs.1));
                }
                let secret = Scalar::Client(i as u8);
                k.records.extend((0..c.sealed).map(|idx| {
                    let (key, iv, ctr) =
                        self.record_keys(secret, &v, Dir::C2b, idx, c.sealed_at_update);
                    Record {
                        key,
                        iv,
                        ctr,
                        dir: Dir::C2b,
                        payload: payload(idx),
                    }
                }));
                if let Some(count) = c.sealed_at_update {
                    k.update_macs
                        .push(self.update_mac(&keys, UpdateKind::Request, count));
                }
            }
        }
        for (j, b) in s.brokers.iter().enumerate() {
            if let (Some(keys), Some(v)) = (self.broker_keys(j, b), b.view) {
                k.macs.push(Mac(keys.macs.0));
                let secret = Scalar::Broker(j as u8);
                let switched = b.updated_at.map(|(_, sealed)| sealed);
                k.records.extend((0..b.sealed).map(|idx| {
                    let (key, iv, ctr) = self.record_keys(secret, &v, Dir::B2c, idx, switched);
                    Record {
                        key,
                        iv,
                        ctr,
                        dir: Dir::B2c,
                        payload: Payload::Honest {
                            sender: Party::Broker(j as u8),
                            idx,
                        },
                    }
                }));
                if let Some(count) = switched {
                    k.update_macs
                        .push(self.update_mac(&keys, UpdateKind::Response, count));
                }
            }
        }
        k
    }

    /// Public keys the attacker can put in a message: those honest parties
    /// sent, its own, and a low-order point.
    fn known_points(&self, s: &State) -> Vec<Point> {
        let mut points = vec![Point::Pub(Scalar::Attacker), Point::LowOrder];
        for (i, c) in s.clients.iter().enumerate() {
            if c.phase != ClientPhase::Start {
                points.push(Point::Pub(Scalar::Client(i as u8)));
            }
        }
        if !self.has(Flaw::NoBrokerEphemeral) {
            for (j, b) in s.brokers.iter().enumerate() {
                if b.view.is_some() {
                    points.push(Point::Pub(Scalar::Broker(j as u8)));
                }
            }
        }
        points
    }

    /// Session Present as the broker's read-only lookup computes it: a
    /// session of this identity was attached before.
    fn session_present(s: &State, ident: Ident) -> bool {
        s.brokers
            .iter()
            .any(|b| b.effect.is_some() && b.view.is_some_and(|v| v.offer.ident == ident))
    }

    fn zero_dh_rejected(&self, dh: Shared) -> bool {
        dh == Shared::Zero && !self.has(Flaw::NoZeroDhCheck)
    }

    /// Whether broker run `b` must stop because `PSK(A)` was revoked
    /// (LWA.md 12.12): it accepts no confirmation, and its connection is
    /// closed, so it opens and seals no record.
    fn refused_after_revocation(&self, s: &State, b: &BrokerState) -> bool {
        s.psk_a_revoked
            && !self.has(Flaw::NoRevocationCheck)
            && b.view.is_some_and(|v| v.offer.ident == Ident::A)
    }

    /// Broker run `j` accepts the client's confirmation (LWA.md 6.2,
    /// LWA2.md 6.2): it is convinced, and only now applies the side effect.
    fn broker_confirm(s: &State, n: &mut State, j: u8, how: Confirmation) {
        let b = &mut n.brokers[j as usize];
        b.phase = BrokerPhase::Open;
        b.clean = !s.psk_a_revealed;
        b.confirmed = Some(how);
        if b.effect.is_none() {
            b.effect = Some(b.clean);
        }
        note_revoked_use(s, b);
    }
}

/// Marks broker run `b` if it accepts a confirmation or opens a record of
/// identity `A` while `PSK(A)` is revoked (in `s`, the state before the step).
fn note_revoked_use(s: &State, b: &mut BrokerState) {
    if s.psk_a_revoked && b.view.is_some_and(|v| v.offer.ident == Ident::A) {
        b.after_revocation = true;
    }
}

impl Model for LwaModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            clients: vec![
                ClientState {
                    phase: ClientPhase::Start,
                    view: None,
                    clean: false,
                    finished: false,
                    sealed: 0,
                    opened: Vec::new(),
                    sealed_at_update: None,
                    opened_at_update: None,
                };
                self.bounds.clients as usize
            ],
            brokers: vec![
                BrokerState {
                    phase: BrokerPhase::Idle,
                    view: None,
                    clean: false,
                    confirmed: None,
                    effect: None,
                    sealed: 0,
                    opened: Vec::new(),
                    after_revocation: false,
                    updated_at: None,
                };
                self.bounds.brokers as usize
            ],
            psk_a_revealed: false,
            psk_a_revoked: false,
        }]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        let kn = self.knowledge(s);
        let points = self.known_points(s);
        for (i, c) in s.clients.iter().enumerate() {
            let i8 = i as u8;
            match c.phase {
                ClientPhase::Start => actions.push(Action::ClientConnect(i8)),
                ClientPhase::WaitConnack => {
                    // The broker_mac the client checks is fixed by what it
                    // received; only responses whose MAC the attacker can
                    // produce lead anywhere (others end the session).
                    let ebs: Vec<Option<Point>> = if self.has(Flaw::NoBrokerEphemeral) {
                        vec![None]
                    } else {
                        points.iter().copied().map(Some).collect()
                    };
                    let offer = client_offer(i8);
                    for &eb in &ebs {
                        for chosen in 1..=BROKER_LIMIT {
                            for sp in [false, true] {
                                let response = ResponseBody { chosen, eb };
                                let view = View {
                                    ctx: CLIENT_CTX,
                                    offer,
                                    chosen,
                                    eb,
                                    sp,
                                };
                                let dh_zero = eb.is_some_and(|p| {
                                    self.zero_dh_rejected(Shared::of(Scalar::Client(i8), p))
                                });
                                let keys = self.keys(Scalar::Client(i8), &view);
                                // LWA.md 4.4 rule 4: chosen <= offered.
                                if chosen <= offer.limit && !dh_zero && kn.mac(&Mac(keys.macs.0)) {
                                    actions.push(Action::ClientAccept {
                                        i: i8,
                                        response,
                                        sp,
                                    });
                                }
                            }
                        }
                    }
                    if self.has(Flaw::AcceptsUnauthenticatedConnack) {
                        actions.push(Action::ClientPlainConnack(i8));
                    }
                }
                ClientPhase::Open | ClientPhase::PlainOpen | ClientPhase::Confirming => {
                    if c.phase == ClientPhase::Confirming {
                        // LWA2.md 6.1: the first packet after CONNACK is the
                        // finished, or a PUBLISH sealed as c2b record 0 (the
                        // ClientSeal below); the client may take either path.
                        actions.push(Action::ClientFinish(i8));
                    }
                    if c.sealed < self.bounds.c2b_records {
                        actions.push(Action::ClientSeal(i8));
                    }
                    // LWA2.md 8.2: one update, once the confirmation went out.
                    let keys = self.client_keys(i, c);
                    if self.key_update && c.phase == ClientPhase::Open {
                        if c.sealed_at_update.is_none() {
                            actions.push(Action::ClientUpdate(i8));
                        } else if let Some(keys) = keys.filter(|_| c.opened_at_update.is_none()) {
                            let expected =
                                self.update_mac(&keys, UpdateKind::Response, c.opened.len() as u8);
                            if kn.update_mac(&expected) {
                                actions.push(Action::ClientUpdateDone(i8));
                            }
                        }
                    }
                    let room = c.opened.len() < usize::from(self.bounds.b2c_records);
                    if let (Some(v), true) = (c.view, room) {
                        let (key, iv, ctr) = self.record_keys(
                            Scalar::Client(i8),
                            &v,
                            Dir::B2c,
                            c.opened.len() as u8,
                            c.opened_at_update,
                        );
                        for p in kn.deliverable(
                            &key,
                            &iv,
                            ctr,
                            Dir::B2c,
                            self.has(Flaw::CounterFromWire),
                        ) {
                            actions.push(Action::ClientOpen(i8, p));
                        }
                    }
                }
            }
        }
        // Broker sessions are interchangeable before they start: only the
        // first idle one takes a CONNECT.
        if let Some(j) = s.brokers.iter().position(|b| b.phase == BrokerPhase::Idle) {
            for ctx in [0, 1] {
                for limit in 1..=BROKER_LIMIT {
                    for ident in [Ident::A, Ident::M] {
                        // After the revocation `A` is an unknown identity,
                        // whose run never completes: left out.
                        if ident == Ident::A && s.psk_a_revoked {
                            continue;
                        }
                        for &ec in &points {
                            let dh = Shared::of(Scalar::Broker(j as u8), ec);
                            if !self.zero_dh_rejected(dh) {
                                actions.push(Action::BrokerRespond {
                                    j: j as u8,
                                    ctx,
                                    offer: Offer { limit, ident, ec },
                                });
                            }
                        }
                    }
                }
            }
        }
        for (j, b) in s.brokers.iter().enumerate() {
            let j8 = j as u8;
            let Some(keys) = self.broker_keys(j, b) else {
                continue;
            };
            if self.refused_after_revocation(s, b) {
                continue;
            }
            match b.phase {
                BrokerPhase::Idle => {}
                BrokerPhase::AwaitFinished => {
                    if kn.mac(&Mac(keys.macs.1)) {
                        actions.push(Action::BrokerFinish(j8));
                    }
                    // LWA2.md 6.2: or a first PUBLISH that opens as c2b
                    // record 0 under this run's keys; anything else closes
                    // the connection without a side effect.
                    if self.version == Version::Lwa2 && self.bounds.c2b_records > 0 {
                        if self.has(Flaw::ConfirmationRecordNotOpened) {
                            actions.push(Action::BrokerConfirmUnopened(j8));
                        } else {
                            let (key, iv) = keys.c2b;
                            let any_counter = self.has(Flaw::CounterFromWire);
                            for p in kn.deliverable(&key, &iv, 0, Dir::C2b, any_counter) {
                                actions.push(Action::BrokerConfirmRecord(j8, p));
                            }
                        }
                    }
                }
                BrokerPhase::Open => {
                    if b.sealed < self.bounds.b2c_records {
                        actions.push(Action::BrokerSeal(j8));
                    }
                    // LWA2.md 8.2: a request whose count is the c2b records opened.
                    if self.key_update && b.updated_at.is_none() {
                        let expected =
                            self.update_mac(&keys, UpdateKind::Request, b.opened.len() as u8);
                        if kn.update_mac(&expected) {
                            actions.push(Action::BrokerUpdate(j8));
                        }
                    }
                    let Some(v) = b.view else { continue };
                    let switched = b.updated_at.map(|(opened, _)| opened);
                    let (key, iv, ctr) = self.record_keys(
                        Scalar::Broker(j8),
                        &v,
                        Dir::C2b,
                        b.opened.len() as u8,
                        switched,
                    );
                    let room = b.opened.len() < usize::from(self.bounds.c2b_records);
                    for p in kn
                        .deliverable(&key, &iv, ctr, Dir::C2b, self.has(Flaw::CounterFromWire))
                        .into_iter()
                        .filter(|_| room)
                    {
                        actions.push(Action::BrokerOpen(j8, p));
                    }
                }
            }
        }
        if !s.psk_a_revealed {
            actions.push(Action::RevealPsk);
        }
        if self.has_revocation() && !s.psk_a_revoked {
            actions.push(Action::RevokePsk);
        }
    }

    fn next_state(&self, s: &State, action: Action) -> Option<State> {
        let mut n = s.clone();
        match action {
            Action::ClientConnect(i) => n.clients[i as usize].phase = ClientPhase::WaitConnack,
            Action::BrokerRespond { j, ctx, offer } => {
                let sp = Self::session_present(s, offer.ident);
                let b = &mut n.brokers[j as usize];
                b.phase = BrokerPhase::AwaitFinished;
                b.view = Some(View {
                    ctx,
                    offer,
                    chosen: offer.limit.min(BROKER_LIMIT),
                    eb: (!self.has(Flaw::NoBrokerEphemeral))
                        .then_some(Point::Pub(Scalar::Broker(j))),
                    sp,
                });
                if self.has(Flaw::SideEffectBeforeFinished) {
                    b.effect = Some(!s.psk_a_revealed);
                }
            }
            Action::ClientAccept { i, response, sp } => {
                let c = &mut n.clients[i as usize];
                // LWA1 sends the finished with the acceptance; an LWA2 client
                // chooses its confirmation in the next step.
                c.phase = match self.version {
                    Version::Lwa1 => ClientPhase::Open,
                    Version::Lwa2 => ClientPhase::Confirming,
                };
                c.finished = self.version == Version::Lwa1;
                c.clean = !s.psk_a_revealed;
                c.view = Some(View {
                    ctx: CLIENT_CTX,
                    offer: client_offer(i),
                    chosen: response.chosen,
                    eb: response.eb,
                    sp,
                });
            }
            Action::ClientPlainConnack(i) => n.clients[i as usize].phase = ClientPhase::PlainOpen,
            Action::BrokerFinish(j) => Self::broker_confirm(s, &mut n, j, Confirmation::Finished),
            Action::ClientFinish(i) => {
                let c = &mut n.clients[i as usize];
                c.phase = ClientPhase::Open;
                c.finished = true;
            }
            Action::BrokerConfirmRecord(j, p) => {
                Self::broker_confirm(s, &mut n, j, Confirmation::FirstRecord);
                n.brokers[j as usize].opened.push(p);
            }
            Action::BrokerConfirmUnopened(j) => {
                Self::broker_confirm(s, &mut n, j, Confirmation::FirstRecord);
            }
            Action::ClientSeal(i) => {
                let c = &mut n.clients[i as usize];
                // LWA2's PUBLISH path: c2b record 0 is the confirmation.
                if c.phase == ClientPhase::Confirming {
                    c.phase = ClientPhase::Open;
                }
                c.sealed += 1;
            }
            Action::BrokerSeal(j) => n.brokers[j as usize].sealed += 1,
            Action::ClientOpen(i, p) => n.clients[i as usize].opened.push(p),
            Action::BrokerOpen(j, p) => {
                let b = &mut n.brokers[j as usize];
                b.opened.push(p);
                note_revoked_use(s, b);
            }
            Action::ClientUpdate(i) => {
                let c = &mut n.clients[i as usize];
                c.sealed_at_update = Some(c.sealed);
            }
            Action::BrokerUpdate(j) => {
                let b = &mut n.brokers[j as usize];
                b.updated_at = Some((b.opened.len() as u8, b.sealed));
            }
            Action::ClientUpdateDone(i) => {
                let c = &mut n.clients[i as usize];
                c.opened_at_update = Some(c.opened.len() as u8);
            }
            Action::RevealPsk => n.psk_a_revealed = true,
            Action::RevokePsk => n.psk_a_revoked = true,
        }
        Some(n)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties::for_model(self)
    }
}

/// The offer honest client `i` sends: client 0 proposes the broker's
/// limit, the others a smaller one (a constrained device), so both a lowered
/// and a raised limit are possible rewrites.
pub fn client_offer(i: u8) -> Offer {
    Offer {
        limit: if i == 0 { BROKER_LIMIT } else { 1 },
        ident: Ident::A,
        ec: Point::Pub(Scalar::Client(i)),
    }
}
