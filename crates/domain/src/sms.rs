//! The rules of text messages, as pure code: the outbox states and the one rule for moving
//! between them ("final states only move forward"), what a gateway delivery report means,
//! the retry schedule (exponential backoff), and the message texts: templates per language
//! that, by default, name no drug, clinic or treatment (checked against [`FORBIDDEN_WORDS`]).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};

use crate::DomainError;

/// Where a message stands in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageState {
    /// Waiting to be sent (first time, or again after a refused attempt).
    Queued,
    /// A worker recorded an attempt and is handing it to the gateway right now.
    Sending,
    /// An attempt may or may not have reached the gateway (the worker died or timed out).
    /// It is resent only after the reconcile time passes without a delivery report.
    Uncertain,
    /// The gateway accepted it (or the operator's centre acknowledged it).
    Sent,
    /// The phone received it. Final.
    Delivered,
    /// The gateway or the operator gave up, or every attempt was refused. Final.
    Failed,
    /// It was not sent before it stopped being useful (e.g. the day passed). Final.
    Expired,
    /// The centre stopped it on purpose before it went out (codes withheld, a box lost or
    /// ended with the treatment, the dose given at the window instead). Final; nobody needs
    /// to call the client about it.
    Stopped,
}

impl MessageState {
    /// Every state, in the order the pages list them.
    pub const ALL: [MessageState; 8] = [
        MessageState::Queued,
        MessageState::Sending,
        MessageState::Uncertain,
        MessageState::Sent,
        MessageState::Delivered,
        MessageState::Failed,
        MessageState::Expired,
        MessageState::Stopped,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Sending => "sending",
            MessageState::Uncertain => "uncertain",
            MessageState::Sent => "sent",
            MessageState::Delivered => "delivered",
            MessageState::Failed => "failed",
            MessageState::Expired => "expired",
            MessageState::Stopped => "stopped",
        }
    }

    /// Delivered, failed, expired and stopped never change again.
    pub fn is_final(self) -> bool {
        self.rank() == 2
    }

    /// Whether the message may have reached the phone (handed to the gateway or beyond): a
    /// code in that state counts as released to the client.
    pub fn may_have_reached(self) -> bool {
        matches!(
            self,
            MessageState::Sending
                | MessageState::Uncertain
                | MessageState::Sent
                | MessageState::Delivered
        )
    }

    /// How far along a message is: 0 not yet known to the gateway, 1 at the gateway, 2 final.
    pub fn rank(self) -> u8 {
        match self {
            MessageState::Queued | MessageState::Sending | MessageState::Uncertain => 0,
            MessageState::Sent => 1,
            MessageState::Delivered
            | MessageState::Failed
            | MessageState::Expired
            | MessageState::Stopped => 2,
        }
    }
}

impl fmt::Display for MessageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageState {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        MessageState::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                DomainError::invalid(
                    "state",
                    format!(
                        "`{s}` is not one of queued, sending, uncertain, sent, delivered, failed, expired"
                    ),
                )
            })
    }
}

/// What a delivery report says about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// The phone received it (Kannel type 1).
    Delivered,
    /// The operator could not deliver it to the phone (Kannel type 2).
    Undelivered,
    /// Queued at the operator's centre (Kannel type 4).
    SmscQueued,
    /// The operator's centre accepted it (Kannel type 8, the "submit ack").
    SmscAccepted,
    /// The operator's centre refused it (Kannel type 16).
    SmscRejected,
}

impl Report {
    /// Reads a Kannel `%d` delivery-report type (1, 2, 4, 8 or 16).
    pub fn from_kannel_type(t: i64) -> Option<Report> {
        match t {
            1 => Some(Report::Delivered),
            2 => Some(Report::Undelivered),
            4 => Some(Report::SmscQueued),
            8 => Some(Report::SmscAccepted),
            16 => Some(Report::SmscRejected),
            _ => None,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Report::Delivered => "delivered",
            Report::Undelivered => "undelivered",
            Report::SmscQueued => "smsc_queued",
            Report::SmscAccepted => "smsc_accepted",
            Report::SmscRejected => "smsc_rejected",
        }
    }

    /// The state the report points at.
    pub fn target(self) -> MessageState {
        match self {
            Report::Delivered => MessageState::Delivered,
            Report::Undelivered | Report::SmscRejected => MessageState::Failed,
            Report::SmscQueued | Report::SmscAccepted => MessageState::Sent,
        }
    }
}

/// The state after a report arrives for a message in `current`, or `None` when the report
/// changes nothing (a duplicate, or a late report behind a newer one).
///
/// The rule: states only move forward by [`MessageState::rank`]. Any report proves the message
/// reached the gateway, so a `queued`, `sending` or `uncertain` message moves to at least
/// `sent` (it must not be sent again); `sent` moves to a final state; a final state never changes.
pub fn after_report(current: MessageState, report: Report) -> Option<MessageState> {
    let target = report.target();
    (target.rank() > current.rank()).then_some(target)
}

/// The retry schedule: `base`, `2·base`, `4·base`… capped at `max`, for at most `max_attempts`
/// attempts in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::seconds(5),
            max: Duration::minutes(10),
            max_attempts: 8,
        }
    }
}

impl Backoff {
    /// The wait after the `attempt`-th attempt (1-based) failed.
    pub fn delay(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(30);
        let factor = 1i64 << shift;
        let ms = self.base.num_milliseconds().saturating_mul(factor);
        Duration::milliseconds(ms.min(self.max.num_milliseconds()))
    }

    /// When to try again after attempt number `attempt` failed at `now`; `None` when that was
    /// the last attempt allowed.
    pub fn next_attempt(&self, attempt: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (attempt < self.max_attempts).then(|| now + self.delay(attempt))
    }
}

/// Words that must not appear in a default message text: a phone's screen is seen by employers
/// and families. Compared case-insensitively as substrings.
pub const FORBIDDEN_WORDS: &[&str] = &[
    // English
    "methadone",
    "buprenorphine",
    "opioid",
    "opiate",
    "heroin",
    "drug",
    "dose",
    "dosing",
    "medication",
    "medicine",
    "clinic",
    "treatment",
    "therapy",
    "rehab",
    "detox",
    "addiction",
    "addict",
    "hospital",
    "mmt",
    "ost",
    "harm reduction",
    "cdc",
    "police",
    "pharmacy",
    "prescription",
    // Chinese
    "美沙酮",
    "美沙酮维持",
    "丁丙诺啡",
    "阿片",
    "海洛因",
    "毒品",
    "吸毒",
    "戒毒",
    "药",
    "剂量",
    "服药",
    "诊所",
    "门诊",
    "治疗",
    "维持",
    "康复",
    "医院",
    "疾控",
    "公安",
    "派出所",
    "社区戒毒",
];

/// The forbidden words found in `text` (empty when the text is neutral).
pub fn forbidden_words_in(text: &str) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    FORBIDDEN_WORDS
        .iter()
        .copied()
        .filter(|w| {
            if w.is_ascii() && w.len() <= 3 {
                // Short English words (MMT, OST, CDC) only as whole words: "most" is fine.
                lower
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|part| part == *w)
            } else {
                lower.contains(w)
            }
        })
        .collect()
}

/// The language of a message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextLang {
    ZhCn,
    En,
}

impl TextLang {
    /// Both languages.
    pub const ALL: [TextLang; 2] = [TextLang::ZhCn, TextLang::En];

    /// Reads a language tag (`zh-CN` or `en`; anything else is Chinese).
    pub fn from_tag(tag: &str) -> TextLang {
        if tag.eq_ignore_ascii_case("en") || tag.to_ascii_lowercase().starts_with("en-") {
            TextLang::En
        } else {
            TextLang::ZhCn
        }
    }
}

/// Which message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextKind {
    /// The day's code; placeholders `{code}` and `{sender}`.
    DailyCode,
    /// A test message to check the path to a phone; placeholder `{sender}`.
    Test,
}

/// The message texts: the neutral defaults, optionally replaced per centre by configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    pub code_zh: String,
    pub code_en: String,
    pub test_zh: String,
    pub test_en: String,
}

impl Default for Templates {
    fn default() -> Self {
        Templates {
            code_zh: "【{sender}】您今天的密码：{code}".into(),
            code_en: "[{sender}] Your code for today: {code}".into(),
            test_zh: "【{sender}】测试短信，无需回复。".into(),
            test_en: "[{sender}] Test message, no reply needed.".into(),
        }
    }
}

impl Templates {
    /// The template of `kind` in `lang`.
    pub fn template(&self, kind: TextKind, lang: TextLang) -> &str {
        match (kind, lang) {
            (TextKind::DailyCode, TextLang::ZhCn) => &self.code_zh,
            (TextKind::DailyCode, TextLang::En) => &self.code_en,
            (TextKind::Test, TextLang::ZhCn) => &self.test_zh,
            (TextKind::Test, TextLang::En) => &self.test_en,
        }
    }

    /// Renders `kind` in `lang` with the sender name and (for codes) the code.
    pub fn render(&self, kind: TextKind, lang: TextLang, sender: &str, code: &str) -> String {
        self.template(kind, lang)
            .replace("{sender}", sender)
            .replace("{code}", code)
    }

    /// Checks every template: the code templates must contain `{code}`, and no text may
    /// contain a forbidden word (nor may the sender name). `field` prefixes the key named.
    pub fn check(&self, field: &str, sender: &str) -> Result<(), DomainError> {
        let bad = forbidden_words_in(sender);
        if !bad.is_empty() {
            return Err(DomainError::invalid(
                format!("{field}.sender_name"),
                format!(
                    "must not name a drug, clinic or treatment (found {})",
                    bad.join(", ")
                ),
            ));
        }
        for (key, text, needs_code) in [
            ("code_zh", &self.code_zh, true),
            ("code_en", &self.code_en, true),
            ("test_zh", &self.test_zh, false),
            ("test_en", &self.test_en, false),
        ] {
            if needs_code && !text.contains("{code}") {
                return Err(DomainError::invalid(
                    format!("{field}.templates.{key}"),
                    "must contain {code}",
                ));
            }
            let bad = forbidden_words_in(text);
            if !bad.is_empty() {
                return Err(DomainError::invalid(
                    format!("{field}.templates.{key}"),
                    format!(
                        "must not name a drug, clinic or treatment (found {})",
                        bad.join(", ")
                    ),
                ));
            }
            if text.chars().count() > 300 {
                return Err(DomainError::invalid(
                    format!("{field}.templates.{key}"),
                    "must be at most 300 characters",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn final_states_only_move_forward() {
        use MessageState::*;
        // Any report proves the gateway has it: never resend.
        for s in [Queued, Sending, Uncertain] {
            assert_eq!(after_report(s, Report::SmscAccepted), Some(Sent));
            assert_eq!(after_report(s, Report::Delivered), Some(Delivered));
        }
        assert_eq!(after_report(Sent, Report::Delivered), Some(Delivered));
        assert_eq!(after_report(Sent, Report::Undelivered), Some(Failed));
        // Duplicates and out-of-order reports change nothing.
        assert_eq!(after_report(Sent, Report::SmscAccepted), None);
        assert_eq!(after_report(Delivered, Report::SmscAccepted), None);
        assert_eq!(after_report(Delivered, Report::Undelivered), None);
        assert_eq!(after_report(Failed, Report::Delivered), None);
        assert_eq!(after_report(Expired, Report::Delivered), None);
        for s in MessageState::ALL {
            assert_eq!(s.as_str().parse::<MessageState>(), Ok(s));
            if s.is_final() {
                assert_eq!(s.rank(), 2);
            }
        }
        assert!("lost".parse::<MessageState>().is_err());
    }

    #[test]
    fn kannel_types_map_to_reports() {
        assert_eq!(Report::from_kannel_type(1), Some(Report::Delivered));
        assert_eq!(Report::from_kannel_type(8), Some(Report::SmscAccepted));
        assert_eq!(Report::from_kannel_type(16), Some(Report::SmscRejected));
        assert_eq!(Report::from_kannel_type(3), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stops() {
        let b = Backoff {
            base: Duration::seconds(5),
            max: Duration::seconds(60),
            max_attempts: 6,
        };
        let secs: Vec<i64> = (1..=6).map(|a| b.delay(a).num_seconds()).collect();
        assert_eq!(secs, vec![5, 10, 20, 40, 60, 60]);
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
        assert_eq!(b.next_attempt(1, now), Some(now + Duration::seconds(5)));
        assert_eq!(b.next_attempt(6, now), None);
        assert_eq!(b.delay(200), Duration::seconds(60));
    }

    #[test]
    fn default_texts_name_no_drug_clinic_or_treatment() {
        let t = Templates::default();
        for lang in TextLang::ALL {
            for kind in [TextKind::DailyCode, TextKind::Test] {
                let text = t.render(kind, lang, "安心", "12345678");
                assert!(forbidden_words_in(&text).is_empty(), "{text}");
                let text = t.render(kind, lang, "Anxin", "12345678");
                assert!(forbidden_words_in(&text).is_empty(), "{text}");
            }
        }
        assert_eq!(
            t.render(TextKind::DailyCode, TextLang::En, "Anxin", "12345678"),
            "[Anxin] Your code for today: 12345678"
        );
        assert_eq!(
            t.render(TextKind::DailyCode, TextLang::ZhCn, "安心", "12345678"),
            "【安心】您今天的密码：12345678"
        );
        assert!(t.check("sms", "Anxin").is_ok());
    }

    #[test]
    fn the_word_check_catches_both_languages() {
        assert_eq!(
            forbidden_words_in("Your methadone dose"),
            vec!["methadone", "dose"]
        );
        assert!(forbidden_words_in("请到门诊服药").contains(&"门诊"));
        assert!(forbidden_words_in("美沙酮").contains(&"美沙酮"));
        assert!(forbidden_words_in("MMT code").contains(&"mmt"));
        assert!(forbidden_words_in("almost most posted").is_empty());
        let t = Templates {
            code_en: "Your methadone code: {code}".into(),
            ..Templates::default()
        };
        let e = t.check("sms", "Anxin").unwrap_err().to_string();
        assert!(e.starts_with("sms.templates.code_en: must not name"), "{e}");
        let t = Templates {
            code_zh: "密码".into(),
            ..Templates::default()
        };
        assert!(t
            .check("sms", "x")
            .unwrap_err()
            .to_string()
            .contains("must contain {code}"));
        assert!(Templates::default()
            .check("sms", "Ping An Clinic")
            .unwrap_err()
            .to_string()
            .starts_with("sms.sender_name"));
    }
}
