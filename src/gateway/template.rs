//! Client id and user name templates: how an authenticated client is named
//! to the upstream broker.
//!
//! A template is text with `{variable}` fields, `{{` and `}}` for literal
//! braces. Variables: `client_id` (the id the client sent, or the one the
//! gateway assigned), `principal` (who the client authenticated as: the LWA
//! identity, else the user name, else empty), `username`, `lwa_identity`,
//! `listener`. Unknown variables are a configuration error at start-up.

use crate::auth::Principal;

/// One template field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    ClientId,
    Principal,
    Username,
    LwaIdentity,
    Listener,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{name}` with a name that is not a variable.
    #[error("unknown template variable {{{0}}}: use client_id, principal, username, lwa_identity or listener")]
    UnknownVariable(String),
    /// A `{` without its `}` (or a lone `}`).
    #[error("unbalanced brace in template {0:?} (write {{{{ or }}}} for a literal brace)")]
    Unbalanced(String),
}

/// What a template is filled in with.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// The client's id (or the one assigned to it).
    pub client_id: &'a str,
    /// Who the client authenticated as.
    pub principal: &'a Principal,
    /// The listener it came in on.
    pub listener: &'a str,
}

impl Template {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => return Err(TemplateError::Unbalanced(text.into())),
                            Some(c) => name.push(c),
                        }
                    }
                    let var = match name.as_str() {
                        "client_id" => Var::ClientId,
                        "principal" => Var::Principal,
                        "username" => Var::Username,
                        "lwa_identity" => Var::LwaIdentity,
                        "listener" => Var::Listener,
                        _ => return Err(TemplateError::UnknownVariable(name)),
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Var(var));
                }
                '}' => return Err(TemplateError::Unbalanced(text.into())),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// True when the result depends on the client (any field but `listener`).
    pub fn names_the_client(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Var(v) if *v != Var::Listener))
    }

    /// The template filled in.
    pub fn render(&self, f: &Fields<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(Var::ClientId) => out.push_str(f.client_id),
                Part::Var(Var::Principal) => out.push_str(principal_name(f.principal)),
                Part::Var(Var::Username) => {
                    out.push_str(f.principal.username.as_deref().unwrap_or_default())
                }
                Part::Var(Var::LwaIdentity) => {
                    out.push_str(f.principal.lwa_identity.as_deref().unwrap_or_default())
                }
                Part::Var(Var::Listener) => out.push_str(f.listener),
            }
        }
        out
    }
}

/// The name a client authenticated under: its LWA identity, else its user
/// name (a password login or a TLS certificate's CN), else empty (anonymous).
pub fn principal_name(p: &Principal) -> &str {
    p.lwa_identity
        .as_deref()
        .or(p.username.as_deref())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(user: Option<&str>, lwa: Option<&str>) -> Principal {
        Principal {
            username: user.map(str::to_owned),
            lwa_identity: lwa.map(str::to_owned),
        }
    }

    #[test]
    fn fields_are_filled_in_and_braces_escape() {
        let t = Template::parse("{principal}/{client_id}@{listener} {{x}}").unwrap();
        let p = principal(Some("alice"), None);
        let f = Fields {
            client_id: "c1",
            principal: &p,
            listener: "edge",
        };
        assert_eq!(t.render(&f), "alice/c1@edge {x}");
        let lwa = principal(None, Some("sensor-7"));
        let t = Template::parse("{lwa_identity}-{username}-{principal}").unwrap();
        let f = Fields {
            client_id: "c",
            principal: &lwa,
            listener: "l",
        };
        assert_eq!(t.render(&f), "sensor-7--sensor-7");
        let anonymous = principal(None, None);
        let f = Fields {
            principal: &anonymous,
            ..f
        };
        assert_eq!(
            Template::parse("{principal}{client_id}")
                .unwrap()
                .render(&f),
            "c"
        );
        assert!(Template::parse("{username}").unwrap().names_the_client());
        assert!(!Template::parse("gw-{listener}").unwrap().names_the_client());
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        assert_eq!(
            Template::parse("{client}").unwrap_err(),
            TemplateError::UnknownVariable("client".into())
        );
        for bad in ["{client_id", "a}b", "{{client_id}", "{a{b}"] {
            assert!(
                matches!(Template::parse(bad), Err(TemplateError::Unbalanced(_))),
                "{bad}"
            );
        }
        assert!(Template::parse("")
            .unwrap()
            .render(&Fields {
                client_id: "x",
                principal: &Principal::default(),
                listener: "l"
            })
            .is_empty());
    }
}
