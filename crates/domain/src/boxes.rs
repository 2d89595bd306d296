//! Take-home boxes: the registry states and their transitions, how a load is planned
//! (days within eligibility and approval, one compartment per day, the dose of each day from the
//! order), and how a returned box is reconciled against its verified log.

use chrono::{Duration, NaiveDate};
use serde::Serialize;

use crate::problem::{Code, Problem};
use crate::DomainError;

/// Where a box is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BoxState {
    InClinic,
    Loaded,
    WithClient,
    Returned,
    Lost,
    Retired,
}

impl BoxState {
    pub const ALL: [BoxState; 6] = [
        BoxState::InClinic,
        BoxState::Loaded,
        BoxState::WithClient,
        BoxState::Returned,
        BoxState::Lost,
        BoxState::Retired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BoxState::InClinic => "in_clinic",
            BoxState::Loaded => "loaded",
            BoxState::WithClient => "with_client",
            BoxState::Returned => "returned",
            BoxState::Lost => "lost",
            BoxState::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<BoxState> {
        BoxState::ALL.into_iter().find(|b| b.as_str() == s)
    }

    /// Whether a box in this state may be loaded for a client.
    pub fn loadable(self) -> bool {
        matches!(self, BoxState::InClinic | BoxState::Returned)
    }

    /// The allowed moves; anything else is refused with the reason.
    pub fn to(self, next: BoxState) -> Result<BoxState, DomainError> {
        use BoxState::*;
        let ok = matches!(
            (self, next),
            (InClinic | Returned, Loaded)
                | (Loaded, WithClient)
                | (Loaded | WithClient, Returned)
                | (Loaded | WithClient, Lost)
                | (InClinic | Returned, Retired)
                | (Returned, InClinic)
        );
        if ok {
            Ok(next)
        } else {
            Err(DomainError::Conflict(format!(
                "a box that is {} cannot become {}",
                self.as_str(),
                next.as_str()
            )))
        }
    }
}

/// Where a load is in its life: loaded in the clinic, out with the client, back, lost, or ended
/// because the client's treatment here ended (discharge, compulsory isolated treatment,
/// transfer) while the box was out: its codes stop, nobody tracks it, and it must come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadState {
    Loaded,
    WithClient,
    Returned,
    Lost,
    Ended,
}

impl LoadState {
    pub const ALL: [LoadState; 5] = [
        LoadState::Loaded,
        LoadState::WithClient,
        LoadState::Returned,
        LoadState::Lost,
        LoadState::Ended,
    ];

    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadState::Loaded => "loaded",
            LoadState::WithClient => "with_client",
            LoadState::Returned => "returned",
            LoadState::Lost => "lost",
            LoadState::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<LoadState> {
        LoadState::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// Whether the load is live: loaded, or with the client, its codes running.
    pub fn is_out(self) -> bool {
        matches!(self, LoadState::Loaded | LoadState::WithClient)
    }

    /// Whether the box still has to come back and be reconciled (live, or ended with the
    /// treatment).
    pub fn awaits_return(self) -> bool {
        self.is_out() || self == LoadState::Ended
    }
}

impl std::fmt::Display for LoadState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether today's pending compartment of a box holds the client's dose for today, so that the
/// window must not give one: the load is loaded or out with the client, its codes are not
/// withheld, and today's code went out (or may have: sending, uncertain) or is still to come at
/// its hour. A lost or ended box, a withheld code, and a code that was never sent (failed,
/// expired, overdue in the queue) leave the client to be dosed at the window.
pub fn compartment_covers_today(
    load: LoadState,
    withheld: bool,
    code: Option<crate::sms::MessageState>,
    code_due: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    use crate::sms::MessageState::*;
    if !load.is_out() || withheld {
        return false;
    }
    match code {
        Some(Sending | Uncertain | Sent | Delivered) => true,
        Some(Queued) => code_due.is_some_and(|due| due > now),
        Some(Failed | Expired | Stopped) | None => false,
    }
}

/// One compartment of a planned load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Compartment {
    pub index: u8,
    pub day: NaiveDate,
    pub mg: u32,
}

/// Plans a load of `days` compartments from `first_day`, checking the days against what the
/// client is eligible for and what the police approved; `mg_on` gives each day's dose.
pub fn plan_load(
    days: u8,
    eligible: u8,
    approved: Option<u8>,
    first_day: NaiveDate,
    mg_on: impl Fn(NaiveDate) -> Option<u32>,
) -> Result<Vec<Compartment>, DomainError> {
    let Some(approved) = approved else {
        return Err(Problem::new(Code::LoadNotApproved).field("days").into());
    };
    if !(2..=6).contains(&days) {
        return Err(Problem::new(Code::LoadDaysOutOfRange)
            .field("days")
            .arg("days", days)
            .into());
    }
    if days > eligible {
        return Err(Problem::new(Code::LoadOverEligible)
            .field("days")
            .arg("days", days)
            .arg("eligible", eligible)
            .into());
    }
    if days > approved {
        return Err(Problem::new(Code::LoadOverApproved)
            .field("days")
            .arg("days", days)
            .arg("approved", approved)
            .into());
    }
    (0..days)
        .map(|i| {
            let day = first_day + Duration::days(i64::from(i));
            let mg = mg_on(day).ok_or_else(|| {
                DomainError::from(
                    Problem::new(Code::LoadNoOrder)
                        .field("days")
                        .arg("day", day),
                )
            })?;
            Ok(Compartment { index: i, day, mg })
        })
        .collect()
}

/// What a returned box's verified log says about each compartment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// Compartments opened (their doses count as taken, their days as attended).
    pub opened: Vec<u8>,
    /// Compartments still closed: their methadone goes back to stock, their days are missed.
    pub unopened: Vec<u8>,
    /// Compartments opened although their code was never sent (withheld or not yet due):
    /// impossible by design, so flagged as tampering.
    pub opened_without_code: Vec<u8>,
    /// Lid-tamper events in the log.
    pub tamper_events: u32,
}

/// Compares the log's opened set with the codes the centre sent.
pub fn reconcile(
    compartments: u8,
    opened_mask: u8,
    codes_sent: &[u8],
    tamper_events: u32,
) -> Reconciliation {
    let mut r = Reconciliation {
        opened: vec![],
        unopened: vec![],
        opened_without_code: vec![],
        tamper_events,
    };
    for i in 0..compartments {
        if opened_mask & (1 << i) != 0 {
            r.opened.push(i);
            if !codes_sent.contains(&i) {
                r.opened_without_code.push(i);
            }
        } else {
            r.unopened.push(i);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, n).unwrap()
    }

    #[test]
    fn a_compartment_covers_today_only_if_its_code_went_out_or_is_to_come() {
        use crate::sms::MessageState::*;
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let later = Some(now + Duration::hours(1));
        let earlier = Some(now - Duration::hours(1));
        let covers = |l, w, c, due| compartment_covers_today(l, w, c, due, now);
        assert!(covers(
            LoadState::WithClient,
            false,
            Some(Delivered),
            earlier
        ));
        assert!(covers(LoadState::WithClient, false, Some(Sending), earlier));
        assert!(
            covers(LoadState::Loaded, false, Some(Queued), later),
            "code still to come"
        );
        assert!(
            !covers(LoadState::WithClient, false, Some(Queued), earlier),
            "never sent"
        );
        assert!(
            !covers(LoadState::WithClient, true, Some(Expired), earlier),
            "withheld"
        );
        assert!(
            !covers(LoadState::Lost, false, Some(Delivered), earlier),
            "box lost"
        );
        assert!(
            !covers(LoadState::Ended, false, Some(Delivered), earlier),
            "treatment ended"
        );
        assert!(!covers(
            LoadState::Returned,
            false,
            Some(Delivered),
            earlier
        ));
        assert!(!covers(LoadState::WithClient, false, Some(Failed), earlier));
        assert!(!covers(LoadState::WithClient, false, None, None));
    }

    #[test]
    fn loads_stay_within_eligibility_and_approval() {
        let plan = plan_load(3, 5, Some(4), d(23), |_| Some(80)).unwrap();
        assert_eq!(
            plan.iter().map(|c| (c.index, c.day)).collect::<Vec<_>>(),
            vec![(0, d(23)), (1, d(24)), (2, d(25))]
        );
        let refused = |r: Result<Vec<Compartment>, DomainError>| match r {
            Err(DomainError::Refused(p)) => p,
            other => panic!("expected a refusal, got {other:?}"),
        };
        let p = refused(plan_load(5, 5, Some(4), d(23), |_| Some(80)));
        assert_eq!(
            (p.code, p.get("approved")),
            (Code::LoadOverApproved, Some("4"))
        );
        let p = refused(plan_load(5, 3, Some(6), d(23), |_| Some(80)));
        assert_eq!(
            (p.code, p.get("eligible")),
            (Code::LoadOverEligible, Some("3"))
        );
        assert_eq!(p.field.as_deref(), Some("days"));
        let p = refused(plan_load(3, 5, None, d(23), |_| Some(80)));
        assert_eq!(p.code, Code::LoadNotApproved);
        assert!(plan_load(1, 5, Some(5), d(23), |_| Some(80)).is_err());
        // Titration during the load: each compartment gets its day's dose.
        let plan = plan_load(3, 3, Some(3), d(23), |day| {
            Some(if day >= d(25) { 90 } else { 80 })
        })
        .unwrap();
        assert_eq!(
            plan.iter().map(|c| c.mg).collect::<Vec<_>>(),
            vec![80, 80, 90]
        );
    }

    #[test]
    fn box_states_move_only_forward_sensibly() {
        assert_eq!(
            BoxState::InClinic.to(BoxState::Loaded),
            Ok(BoxState::Loaded)
        );
        assert!(BoxState::WithClient.to(BoxState::Loaded).is_err());
        assert!(BoxState::Lost.to(BoxState::Returned).is_err());
        assert!(!BoxState::WithClient.loadable());
    }

    #[test]
    fn reconciliation_counts_unopened_and_flags_opening_without_a_code() {
        let r = reconcile(4, 0b0101, &[0, 1, 2], 0);
        assert_eq!(r.opened, vec![0, 2]);
        assert_eq!(r.unopened, vec![1, 3]);
        assert!(r.opened_without_code.is_empty());
        let t = reconcile(3, 0b0111, &[0, 1], 1);
        assert_eq!(t.opened_without_code, vec![2]);
        assert_eq!(t.tamper_events, 1);
    }
}
