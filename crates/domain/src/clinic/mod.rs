//! The methadone clinic's rules: treatment stages, dose orders and titration, induction and titration limits, the missed-dose
//! safety rule, urine tests and their random selection, adherence figures, and methadone stock
//! accounting, the intake assessment (`assessment`), the medicines that change methadone levels
//! (`interactions`), and overdoses and deaths (`outcomes`). Every function takes the day or instant it decides for; none reads a clock.

/// A closed list of choices: `ALL`, the stable snake_case name (`as_str`) and `parse`, which
/// refuses any other name with `choice.unknown` at `field`.
macro_rules! choices {
    ($(#[$doc:meta])* $name:ident { $( $(#[$vdoc:meta])* $variant:ident => $code:literal, )* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $( $(#[$vdoc])* $variant, )* }

        impl $name {
            /// Every choice, in the order a form lists them.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];

            /// The stable name (database, API, form values, Fluent ids).
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $code, )* }
            }

            /// The choice named `raw`, or `choice.unknown` at `field`.
            pub fn parse(raw: &str, field: &str) -> Result<Self, crate::DomainError> {
                let raw = raw.trim();
                Self::ALL.iter().copied().find(|c| c.as_str() == raw).ok_or_else(|| {
                    crate::Problem::new(crate::Code::ChoiceUnknown)
                        .field(field)
                        .arg("value", raw)
                        .into()
                })
            }
        }
    };
}

pub mod adherence;
pub mod assessment;
pub mod episodes;
pub mod guest;
pub mod induction;
pub mod interactions;
pub mod missed;
pub mod orders;
pub mod outcomes;
pub mod stage;
pub mod stock;
pub mod urine;
