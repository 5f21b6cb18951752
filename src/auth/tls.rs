//! Mutual TLS as an MQTT security mode: the verified client certificate's CN is the user
//! name. The TLS itself (rustls configuration, files, reloading) is
//! [`crate::transport::tls`], below this module.

use crate::auth::{AuthDecision, Authenticated, ConnectAuthenticator, PeerInfo, Principal};
use crate::codec::{Connect, ReasonCode};

/// Mutual-TLS mode: the client certificate's CN is the user name
/// (mosquitto's `use_identity_as_username`); a CONNECT user name is ignored.
///
/// Without a verified certificate the CONNECT is refused with 0x87 Not authorized.
#[derive(Debug, Default, Clone)]
pub struct CertificateAuthenticator;

impl ConnectAuthenticator for CertificateAuthenticator {
    fn authenticate(&self, connect: &Connect, peer: &PeerInfo) -> AuthDecision {
        match peer.tls_client_cn.as_deref() {
            Some(cn) if !cn.is_empty() => {
                if connect.username.as_deref().is_some_and(|u| u != cn) {
                    tracing::info!(cn, username = ?connect.username, "CONNECT user name replaced by certificate CN");
                }
                AuthDecision::Accept {
                    authenticated: Authenticated {
                        principal: Principal {
                            username: Some(cn.to_owned()),
                            lwa_identity: None,
                        },
                        protection: None,
                        auth_response: None,
                    },
                    connack_auth: None,
                }
            }
            _ => {
                tracing::warn!(addr = ?peer.remote_addr, "no verified client certificate: CONNECT refused");
                AuthDecision::Reject(ReasonCode::NOT_AUTHORIZED)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Properties, ProtocolVersion};

    #[test]
    fn certificate_authenticator_uses_cn() {
        let connect = Connect {
            protocol_version: ProtocolVersion::V311,
            clean_start: true,
            keep_alive: 30,
            client_id: "c".into(),
            will: None,
            username: Some("claimed".into()),
            password: None,
            properties: Properties::default(),
        };
        let mut peer = PeerInfo {
            tls: true,
            tls_client_cn: Some("device-7".into()),
            ..PeerInfo::default()
        };
        match CertificateAuthenticator.authenticate(&connect, &peer) {
            AuthDecision::Accept { authenticated, .. } => {
                assert_eq!(
                    authenticated.principal.username.as_deref(),
                    Some("device-7")
                )
            }
            _ => panic!("refused"),
        }
        peer.tls_client_cn = None;
        assert!(matches!(
            CertificateAuthenticator.authenticate(&connect, &peer),
            AuthDecision::Reject(ReasonCode::NOT_AUTHORIZED)
        ));
    }
}
