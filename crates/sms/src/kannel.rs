//! The Kannel provider: HTTP `GET /cgi-bin/sendsms` on smsbox, with a signed `dlr-url` so that
//! Kannel's delivery reports (`dlr-mask`, default 31 = delivered, undelivered, queued on the
//! SMS centre, SMS-centre submit ack, SMS-centre reject) come back to Anxin's
//! `/api/v1/sms/dlr` endpoint and move the outbox row.
//!
//! Answers are mapped so that a message that may have reached smsbox is never reported as
//! refused: 2xx is accepted; any other status is a clear refusal (smsbox answered, so it did not
//! queue the message); a connection that could not be opened is a refusal; a time-out or a
//! connection lost after the request was written is [`Delivery::Unknown`].

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::provider::{Delivery, Outgoing, Provider, SendFuture};

/// Settings of the Kannel provider.
#[derive(Clone)]
pub struct KannelSettings {
    /// The sendsms URL, e.g. `http://127.0.0.1:13013/cgi-bin/sendsms`.
    pub url: String,
    pub username: String,
    pub password: SecretString,
    /// The sender (`from`), e.g. the centre's service number `10690…`.
    pub from: String,
    pub dlr_mask: u32,
    /// Route through this `smsc-id` (optional).
    pub smsc: Option<String>,
    pub timeout: Duration,
}

/// Sends through Kannel's smsbox.
pub struct KannelProvider {
    settings: KannelSettings,
    http: reqwest::Client,
}

impl KannelProvider {
    /// A provider with its own connection pool.
    pub fn new(settings: KannelSettings) -> Result<KannelProvider, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(KannelProvider { settings, http })
    }
}

/// The sendsms query: the number goes as stored (E.164 with `+`), which Kannel passes on.
fn params(s: &KannelSettings, msg: &Outgoing) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("username", s.username.clone()),
        ("password", s.password.expose_secret().to_owned()),
        ("from", s.from.clone()),
        ("to", msg.to.clone()),
        ("text", msg.text.clone()),
        ("dlr-mask", s.dlr_mask.to_string()),
        ("dlr-url", msg.dlr_url.clone()),
    ];
    if !msg.text.is_ascii() {
        // UTF-8 in, UCS-2 on the air: Chinese texts need 16-bit coding.
        p.push(("charset", "UTF-8".into()));
        p.push(("coding", "2".into()));
    }
    if let Some(smsc) = &s.smsc {
        p.push(("smsc", smsc.clone()));
    }
    p
}

impl Provider for KannelProvider {
    fn name(&self) -> &'static str {
        "kannel"
    }

    fn send<'a>(&'a self, msg: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(async move {
            let req = self
                .http
                .get(&self.settings.url)
                .query(&params(&self.settings, msg));
            match req.send().await {
                Ok(res) => {
                    let status = res.status();
                    let body = res.text().await.unwrap_or_default();
                    let body = body.trim().chars().take(200).collect::<String>();
                    if status.is_success() {
                        Delivery::Accepted {
                            gateway_id: None,
                            delivered: false,
                        }
                    } else {
                        Delivery::Refused {
                            error: format!("kannel answered {}: {body}", status.as_u16()),
                            permanent: false,
                        }
                    }
                }
                Err(e) if e.is_connect() || e.is_builder() => Delivery::Refused {
                    error: format!("cannot reach kannel: {}", without_url(&e)),
                    permanent: false,
                },
                Err(e) => Delivery::Unknown {
                    error: format!("no clear answer from kannel: {}", without_url(&e)),
                },
            }
        })
    }
}

/// The error text without the request URL (it holds the password).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<sendsms url>");
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
