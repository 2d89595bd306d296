//! Every page form submits once. Each `<form method="post">` of a page carries a fresh random
//! `once` field ([`stamp`]); the first submission of a token runs, and a repeat (a double click,
//! Back and submit again, a reload of the answer) is answered with the first one's redirect and
//! cookies instead of running the use case again. A repeat that arrives while the first is still
//! running waits for it. The handler of a first submission runs in a task of its own, so a
//! browser that gives up on it (it sent the repeat) cannot cut it short halfway.
//!
//! First answers that are pages rather than redirects (the provisioning data, a revealed code)
//! are never kept: a repeat goes back to the form's page with a note that it was already sent.
//! Tokens are kept in memory for [`KEEP`]; servers of one deployment do not share them (a
//! browser's repeat reaches the server of its first submission on its kept-alive connection).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;
use tokio::sync::Notify;

/// How long a token is remembered.
pub const KEEP: Duration = Duration::from_secs(15 * 60);

/// How long a repeat waits for its first submission to finish.
const WAIT: Duration = Duration::from_secs(30);

/// Above this many tokens, the expired ones are dropped at the next claim.
const PRUNE_ABOVE: usize = 2_000;

/// The form field that carries the token.
pub const FIELD: &str = "once";

/// Adds a fresh `once` field to every POST form of a rendered page.
pub fn stamp(html: &str) -> String {
    let mut out = String::with_capacity(html.len() + 1024);
    let mut rest = html;
    while let Some(at) = rest.find("<form ") {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        // Maud escapes `>` in attribute values, so the first `>` ends the tag.
        let Some(end) = from.find('>') else {
            out.push_str(from);
            return out;
        };
        let (tag, after) = from.split_at(end + 1);
        out.push_str(tag);
        if tag.contains("method=\"post\"") {
            out.push_str("<input type=\"hidden\" name=\"");
            out.push_str(FIELD);
            out.push_str("\" value=\"");
            out.push_str(&token());
            out.push_str("\">");
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn token() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// What became of a first submission.
#[derive(Clone)]
enum Slot {
    Running(Arc<Notify>),
    /// The first answer's redirect target and cookies; `None` when it was a page.
    Done {
        location: Option<HeaderValue>,
        cookies: Vec<HeaderValue>,
        at: Instant,
    },
}

/// Whether a submission is the first of its token.
pub enum Claim {
    /// Run it, then call [`Forms::finish`] (or [`Forms::abandon`]).
    First,
    /// A repeat whose first submission redirected: answer the same.
    Repeat {
        location: HeaderValue,
        cookies: Vec<HeaderValue>,
    },
    /// A repeat whose first submission answered a page (or never finished).
    RepeatOfPage,
}

/// The tokens seen, by session and token.
#[derive(Default)]
pub struct Forms {
    seen: Mutex<HashMap<String, Slot>>,
}

impl Forms {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims `key` for a submission, waiting while an earlier one with it runs.
    pub async fn claim(&self, key: &str) -> Claim {
        let deadline = Instant::now() + WAIT;
        loop {
            let notify = {
                let mut seen = self.lock();
                if seen.len() > PRUNE_ABOVE {
                    seen.retain(|_, s| match s {
                        Slot::Running(_) => true,
                        Slot::Done { at, .. } => at.elapsed() < KEEP,
                    });
                }
                match seen.get(key) {
                    None => {
                        seen.insert(key.to_owned(), Slot::Running(Arc::new(Notify::new())));
                        return Claim::First;
                    }
                    Some(Slot::Done {
                        location, cookies, ..
                    }) => {
                        return match location {
                            Some(l) => Claim::Repeat {
                                location: l.clone(),
                                cookies: cookies.clone(),
                            },
                            None => Claim::RepeatOfPage,
                        }
                    }
                    Some(Slot::Running(n)) => n.clone(),
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Claim::RepeatOfPage;
            }
            // `notified` may miss a wake-up that came before it was polled: look again anyway.
            let _ =
                tokio::time::timeout(left.min(Duration::from_millis(200)), notify.notified()).await;
        }
    }

    /// Records the first submission's answer and wakes its repeats.
    pub fn finish(&self, key: &str, answer: &Response) {
        let redirected = answer.status().is_redirection();
        let h: &HeaderMap = answer.headers();
        let slot = Slot::Done {
            location: redirected
                .then(|| h.get(header::LOCATION).cloned())
                .flatten(),
            cookies: if redirected {
                h.get_all(header::SET_COOKIE).iter().cloned().collect()
            } else {
                vec![]
            },
            at: Instant::now(),
        };
        if let Some(Slot::Running(n)) = self.lock().insert(key.to_owned(), slot) {
            n.notify_waiters();
        }
    }

    /// Forgets a first submission that never answered (its task failed): a repeat runs anew.
    pub fn abandon(&self, key: &str) {
        if let Some(Slot::Running(n)) = self.lock().remove(key) {
            n.notify_waiters();
        }
    }
}

/// The answer to a repeat whose first submission redirected.
pub fn replay(location: HeaderValue, cookies: Vec<HeaderValue>) -> Response {
    let to = location.to_str().unwrap_or("/").to_owned();
    let mut r = Redirect::to(&to).into_response();
    for c in cookies {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// The path of a same-site `Referer`, for sending a repeat back to its form's page.
pub fn back_path(headers: &HeaderMap) -> String {
    headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| u.path().to_owned())
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or_else(|| "/".to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_post_form_gets_its_own_token() {
        let html = r#"<p>x</p><form method="post" action="/a"><input name="b"></form><form method="get" action="/s"></form><form method="post" action="/c" id="c"></form>"#;
        let out = stamp(html);
        let tokens: Vec<&str> = out
            .match_indices("name=\"once\" value=\"")
            .map(|(i, m)| &out[i + m.len()..i + m.len() + 32])
            .collect();
        assert_eq!(tokens.len(), 2, "{out}");
        assert_ne!(tokens[0], tokens[1]);
        assert!(
            out.contains(r#"<form method="get" action="/s"></form>"#),
            "GET forms are left alone"
        );
        assert!(out.starts_with(
            "<p>x</p><form method=\"post\" action=\"/a\"><input type=\"hidden\" name=\"once\""
        ));
    }

    #[tokio::test]
    async fn a_repeat_gets_the_first_answer_and_waits_for_it() {
        let forms = Arc::new(Forms::default());
        assert!(matches!(forms.claim("k").await, Claim::First));
        let waiting = {
            let forms = forms.clone();
            tokio::spawn(async move { forms.claim("k").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the repeat waits for the first");
        let mut first = Redirect::to("/clients/7").into_response();
        first.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_static("anxin_flash=x"),
        );
        forms.finish("k", &first);
        match waiting.await.unwrap() {
            Claim::Repeat { location, cookies } => {
                assert_eq!(location, "/clients/7");
                assert_eq!(cookies.len(), 1);
            }
            _ => panic!("the repeat is answered with the first redirect"),
        }
        // A first answer that was a page is not kept; an abandoned one runs again.
        assert!(matches!(forms.claim("p").await, Claim::First));
        forms.finish("p", &"page".into_response());
        assert!(matches!(forms.claim("p").await, Claim::RepeatOfPage));
        assert!(matches!(forms.claim("q").await, Claim::First));
        forms.abandon("q");
        assert!(matches!(forms.claim("q").await, Claim::First));
    }
}
