//! Flash messages: one message for the page a form sends the browser back to, carried in a
//! signed cookie (a message id and its arguments, or a text already in the user's language),
//! never in the URL, so that UICs stay out of addresses, history and access logs, and nobody can
//! craft a banner with a link. The cookie is cleared by the route guard once a page was shown.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::auth::{cookie, CurrentUser};
use crate::i18n::{I18n, Lang};

/// Name of the cookie.
pub const COOKIE: &str = "anxin_flash";

/// Whether the message reports success or a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    Ok,
    Error,
}

/// What the message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// A message id of the locales and its arguments, rendered in the page's language.
    Id {
        id: String,
        args: Vec<(String, String)>,
    },
    /// A text already in the user's language.
    Text(String),
}

impl Message {
    /// The message of a refusal by code.
    pub fn problem(p: &anxin_domain::Problem) -> Message {
        Message::Id {
            id: p.code.message_id(),
            args: p
                .args
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }
    }

    fn render(&self, lang: Lang) -> String {
        match self {
            Message::Text(t) => t.clone(),
            Message::Id { id, args } => {
                let args: Vec<(&str, &str)> =
                    args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                I18n::global().t_args(lang, id, &args)
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    tone: Tone,
    message: Message,
    /// The UIC the message is about (the window shows that client's photo beside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
}

/// The signing key: random per process (a flash lives for one redirect).
fn key() -> &'static [u8; 32] {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        use rand::RngCore;
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        k
    })
}

fn mac(payload: &str) -> Option<Hmac<Sha256>> {
    let mut m = Hmac::<Sha256>::new_from_slice(key()).ok()?;
    m.update(payload.as_bytes());
    Some(m)
}

fn encode(tone: Tone, message: Message, subject: Option<&str>) -> Option<String> {
    let json = serde_json::to_vec(&Payload {
        tone,
        message,
        subject: subject.map(str::to_owned),
    })
    .ok()?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = b64.encode(json);
    let tag = b64.encode(mac(&payload)?.finalize().into_bytes());
    Some(format!("{payload}.{tag}"))
}

fn decode(raw: &str) -> Option<Payload> {
    let (payload, tag) = raw.split_once('.')?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    mac(payload)?.verify_slice(&b64.decode(tag).ok()?).ok()?;
    serde_json::from_slice(&b64.decode(payload).ok()?).ok()
}

/// Sends the browser to `path` with a message for the page there.
pub fn redirect(path: &str, tone: Tone, message: Message) -> Response {
    redirect_about(path, tone, message, None)
}

/// [`redirect`] with the UIC the message is about (a dose or a refusal at the window).
pub fn redirect_about(path: &str, tone: Tone, message: Message, uic: Option<&str>) -> Response {
    let mut r = Redirect::to(path).into_response();
    if let Some(value) = encode(tone, message, uic) {
        let c = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=120");
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

/// Whether a request carries a flash cookie.
pub fn present(headers: &HeaderMap) -> bool {
    cookie(headers, COOKIE).is_some()
}

/// Clears the flash and form cookies on an answer that does not set new ones.
pub fn consumed(mut r: Response) -> Response {
    for name in [COOKIE, FORM_COOKIE] {
        let sets_new = r
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|v| v.as_bytes().starts_with(format!("{name}=").as_bytes()));
        if !sets_new {
            let c = format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
            if let Ok(v) = HeaderValue::from_str(&c) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
        }
    }
    r
}

#[derive(Deserialize, Default)]
struct SearchQuery {
    #[serde(default)]
    q: Option<String>,
}

/// Name of the cookie that brings a refused form back: which form, the field, the message and
/// what was typed. Sealed with the data key (it may hold identifying fields), for two minutes.
pub const FORM_COOKIE: &str = "anxin_form";

/// A refused form, to show again with the message at its field and the typed values kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormState {
    /// The form's id on its page (`identity`, `order`, `load`, `hand-out-17`).
    pub form: String,
    pub field: Option<String>,
    pub message: Message,
    pub values: Vec<(String, String)>,
}

impl Default for Message {
    fn default() -> Self {
        Message::Text(String::new())
    }
}

/// The longest sealed form cookie value sent (browsers keep cookies up to 4096 bytes).
const MAX_FORM_COOKIE: usize = 3800;

/// Sends the browser back to `path`, where `form` shows `p` at its field with `values` kept.
pub fn form_redirect(
    st: &crate::state::AppState,
    path: &str,
    form: &str,
    p: &anxin_domain::Problem,
    values: Vec<(String, String)>,
) -> Response {
    let mut state = FormState {
        form: form.to_owned(),
        field: p.field.clone(),
        message: Message::problem(p),
        values,
    };
    let mut r = Redirect::to(path).into_response();
    // Browsers drop a cookie over 4 KiB: then the longest typed values are not kept, so that
    // the refusal itself still shows at its field.
    while let Ok(json) = serde_json::to_vec(&state) {
        let sealed = st.app.seal_cookie(&json);
        let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed);
        if value.len() > MAX_FORM_COOKIE && !state.values.is_empty() {
            if let Some(longest) = (0..state.values.len()).max_by_key(|i| state.values[*i].1.len())
            {
                state.values.remove(longest);
            }
            continue;
        }
        let c = format!("{FORM_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=120");
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        break;
    }
    r
}

/// The message for this page (from the signed cookie), a refused form to show again, and the
/// page's search text (`?q=`).
#[derive(Debug, Default)]
pub struct Flash {
    pub ok: Option<String>,
    pub error: Option<String>,
    pub q: Option<String>,
    /// The UIC the message is about, if it names one client.
    pub subject: Option<String>,
    form: Option<(FormState, String)>,
}

impl Flash {
    /// What was typed into `field` of `form`, when that form was refused.
    pub fn value(&self, form: &str, field: &str) -> Option<&str> {
        let (s, _) = self.form.as_ref().filter(|(s, _)| s.form == form)?;
        s.values
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `form` came back refused (its fields then show what was typed, checkboxes too).
    pub fn refused(&self, form: &str) -> bool {
        self.form.as_ref().is_some_and(|(s, _)| s.form == form)
    }

    /// The refusal to show at `field` of `form`.
    pub fn error_at(&self, form: &str, field: &str) -> Option<&str> {
        let (s, text) = self.form.as_ref()?;
        (s.form == form && s.field.as_deref() == Some(field)).then_some(text.as_str())
    }

    /// The refusal of `form` when it names no field the form has (shown above the form).
    pub fn error_of(&self, form: &str, fields: &[&str]) -> Option<&str> {
        let (s, text) = self.form.as_ref()?;
        let at_field = s.field.as_deref().is_some_and(|f| fields.contains(&f));
        (s.form == form && !at_field).then_some(text.as_str())
    }
}

/// Whether a request carries a refused form.
pub fn form_present(headers: &HeaderMap) -> bool {
    cookie(headers, FORM_COOKIE).is_some()
}

impl FromRequestParts<crate::state::AppState> for Flash {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::state::AppState,
    ) -> Result<Self, Self::Rejection> {
        let q = Query::<SearchQuery>::from_request_parts(parts, state)
            .await
            .map(|Query(s)| s.q)
            .unwrap_or_default();
        let lang = parts
            .extensions
            .get::<CurrentUser>()
            .map(|me| Lang::from_tag(&me.user.language))
            .unwrap_or(Lang::ZhCn);
        let mut f = Flash {
            q,
            ..Flash::default()
        };
        if let Some(p) = cookie(&parts.headers, COOKIE).as_deref().and_then(decode) {
            let text = p.message.render(lang);
            f.subject = p.subject;
            match p.tone {
                Tone::Ok => f.ok = Some(text),
                Tone::Error => f.error = Some(text),
            }
        }
        f.form = cookie(&parts.headers, FORM_COOKIE)
            .and_then(|raw| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(raw)
                    .ok()
            })
            .and_then(|sealed| state.app.open_cookie(&sealed))
            .and_then(|json| serde_json::from_slice::<FormState>(&json).ok())
            .map(|s| {
                let text = s.message.render(lang);
                (s, text)
            });
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flash_is_signed_and_a_forged_one_is_ignored() {
        let raw = encode(Tone::Error, Message::Text("YX-0001".into()), None).unwrap();
        let p = decode(&raw).unwrap();
        assert_eq!(p.tone, Tone::Error);
        assert_eq!(p.message, Message::Text("YX-0001".into()));
        let (payload, _) = raw.split_once('.').unwrap();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let forged = b64.encode(br#"{"tone":"ok","message":{"text":"<a href=x>click</a>"}}"#);
        assert!(decode(&format!("{forged}.{}", raw.split_once('.').unwrap().1)).is_none());
        assert!(decode(payload).is_none());
    }
}
