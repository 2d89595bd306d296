//! The interface in Simplified Chinese and English: Fluent message files in `locales/`,
//! compiled into the binary, and the choice of language for a request.

use std::collections::HashMap;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use unic_langid::LanguageIdentifier;

/// A language the interface speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    ZhCn,
    En,
}

impl Lang {
    /// Both languages.
    pub const ALL: [Lang; 2] = [Lang::ZhCn, Lang::En];

    /// The tag stored with an account and in the language cookie.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    /// Reads a stored tag; anything unknown falls back to Chinese, the centre's language.
    pub fn from_tag(tag: &str) -> Lang {
        if tag.eq_ignore_ascii_case("en") || tag.to_ascii_lowercase().starts_with("en-") {
            Lang::En
        } else {
            Lang::ZhCn
        }
    }

    /// The other language (for the switch link).
    pub fn other(self) -> Lang {
        match self {
            Lang::ZhCn => Lang::En,
            Lang::En => Lang::ZhCn,
        }
    }

    /// The first supported language in an `Accept-Language` header.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        header.split(',').find_map(|part| {
            let tag = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("zh") {
                Some(Lang::ZhCn)
            } else if tag.starts_with("en") {
                Some(Lang::En)
            } else {
                None
            }
        })
    }
}

const SOURCES: [(Lang, &str); 2] = [
    (Lang::ZhCn, include_str!("../locales/zh-CN.ftl")),
    (Lang::En, include_str!("../locales/en.ftl")),
];

/// How a message id without a translation shows on a page.
fn missing(id: &str) -> String {
    format!("⟦{id}⟧")
}

/// The compiled message bundles.
pub struct I18n {
    bundles: HashMap<Lang, FluentBundle<FluentResource>>,
}

/// Why the message files could not be loaded (a build-time mistake, caught by tests).
#[derive(Debug, thiserror::Error)]
#[error("message file {lang}: {message}")]
pub struct I18nError {
    lang: &'static str,
    message: String,
}

impl I18n {
    /// Parses both message files.
    pub fn load() -> Result<I18n, I18nError> {
        let mut bundles = HashMap::new();
        for (lang, source) in SOURCES {
            let err = |message: String| I18nError {
                lang: lang.tag(),
                message,
            };
            let resource = FluentResource::try_new(source.to_owned())
                .map_err(|(_, errors)| err(format!("{errors:?}")))?;
            let id: LanguageIdentifier = lang.tag().parse().map_err(|e| err(format!("{e}")))?;
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // No Unicode isolation marks around arguments: they show as boxes in some fonts.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|errors| err(format!("{errors:?}")))?;
            bundles.insert(lang, bundle);
        }
        Ok(I18n { bundles })
    }

    /// The message `id` in `lang`; `⟦id⟧` if it is missing, so that a forgotten translation is
    /// recognisable on the page (tests forbid that; the end-to-end suite looks for `⟦`).
    pub fn t(&self, lang: Lang, id: &str) -> String {
        self.format(lang, id, None)
    }

    /// The message `id` with arguments.
    pub fn t_args(&self, lang: Lang, id: &str, args: &[(&str, &str)]) -> String {
        let mut fa = FluentArgs::new();
        for (k, v) in args {
            fa.set(*k, *v);
        }
        self.format(lang, id, Some(&fa))
    }

    /// A refusal in `lang`: the message of its code with its arguments.
    pub fn problem(&self, lang: Lang, p: &anxin_domain::Problem) -> String {
        let args: Vec<(&str, &str)> = p.args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.t_args(lang, &p.code.message_id(), &args)
    }

    /// The messages compiled into the binary, loaded once (error answers are rendered where no
    /// application state is at hand).
    pub fn global() -> &'static I18n {
        static GLOBAL: std::sync::OnceLock<I18n> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(|| match I18n::load() {
            Ok(i) => i,
            Err(e) => {
                // The files are compiled in and checked by tests; an empty set shows ⟦ids⟧.
                tracing::error!(error = %e, "message files do not load");
                I18n {
                    bundles: HashMap::new(),
                }
            }
        })
    }

    /// Whether `lang` has a message `id` (for codes that may or may not have one).
    pub fn has(&self, lang: Lang, id: &str) -> bool {
        self.bundles
            .get(&lang)
            .is_some_and(|b| b.get_message(id).is_some())
    }

    fn format(&self, lang: Lang, id: &str, args: Option<&FluentArgs>) -> String {
        let Some(bundle) = self.bundles.get(&lang) else {
            return missing(id);
        };
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            return missing(id);
        };
        let mut errors = vec![];
        bundle
            .format_pattern(pattern, args, &mut errors)
            .into_owned()
    }

    /// The message ids of a language (for the completeness test).
    pub fn ids(lang: Lang) -> Vec<String> {
        let source = SOURCES
            .iter()
            .find(|(l, _)| *l == lang)
            .map(|(_, s)| *s)
            .unwrap_or_default();
        source
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(id, _)| id.trim().to_owned()))
            .filter(|id| !id.starts_with('#') && !id.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_messages() {
        let i18n = I18n::load().unwrap();
        let zh = I18n::ids(Lang::ZhCn);
        let en = I18n::ids(Lang::En);
        assert_eq!(zh, en, "message ids differ between zh-CN.ftl and en.ftl");
        for id in &en {
            for lang in Lang::ALL {
                assert!(!i18n.t(lang, id).contains('⟦'), "{id} missing in {lang:?}");
            }
        }
        for r in anxin_domain::Role::ALL {
            assert!(en.contains(&format!("role-{}", r.as_str())));
        }
    }

    #[test]
    fn every_refusal_code_reads_in_both_languages() {
        let i18n = I18n::load().unwrap();
        for code in anxin_domain::Code::ALL {
            for lang in Lang::ALL {
                let text = i18n.t(lang, &code.message_id());
                assert!(
                    !text.contains('⟦'),
                    "{} has no message in {lang:?}",
                    code.as_str()
                );
            }
        }
        let p = anxin_domain::Problem::new(anxin_domain::Code::DoseAlreadyGiven)
            .arg("uic", "YX-0043-IY")
            .arg("at", "07:58");
        assert_eq!(
            i18n.problem(Lang::ZhCn, &p),
            "YX-0043-IY 今天已于 07:58 服药，不得再次给药。"
        );
        assert_eq!(
            i18n.problem(Lang::En, &p),
            "YX-0043-IY was already dosed today at 07:58"
        );
    }

    #[test]
    fn arguments_and_language_choice() {
        let i18n = I18n::load().unwrap();
        assert_eq!(
            i18n.t_args(Lang::En, "staff-created", &[("user", "nurse.li")]),
            "Account nurse.li created."
        );
        assert_eq!(i18n.t(Lang::ZhCn, "login-submit"), "登录");
        assert_eq!(
            Lang::from_accept_language("fr;q=1, en-GB;q=0.8"),
            Some(Lang::En)
        );
        assert_eq!(Lang::from_accept_language("zh-TW"), Some(Lang::ZhCn));
        assert_eq!(Lang::from_tag("xx"), Lang::ZhCn);
        assert_eq!(i18n.t(Lang::En, "no-such-message"), "⟦no-such-message⟧");
    }
}
