//! Roles, permissions and the one matrix that joins them.
//!
//! Deny by default: a role has a permission only if [`Role::has`] lists it. The two outside
//! roles (`cdc_analyst`, `psb_officer`) never hold a permission that reaches a client record;
//! the test at the bottom of this file keeps it that way.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// What a staff account is for. Stored and sent as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the deployment's accounts and sites; does not read clinical records.
    Admin,
    /// Runs one centre: staff, figures, audit.
    Manager,
    /// Doctor: prescribes and reviews.
    Prescriber,
    /// Nurse at the dispensing window.
    Dispenser,
    Counsellor,
    /// Peer educator (often a former user): outreach and services.
    PeerEducator,
    /// Public health (CDC): aggregate, de-identified figures only.
    CdcAnalyst,
    /// Police (PSB): only the approval requests addressed to them.
    PsbOfficer,
}

impl Role {
    /// Every role, in the order the UI lists them.
    pub const ALL: [Role; 8] = [
        Role::Admin,
        Role::Manager,
        Role::Prescriber,
        Role::Dispenser,
        Role::Counsellor,
        Role::PeerEducator,
        Role::CdcAnalyst,
        Role::PsbOfficer,
    ];

    /// The stable name used in the database, the API and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Prescriber => "prescriber",
            Role::Dispenser => "dispenser",
            Role::Counsellor => "counsellor",
            Role::PeerEducator => "peer_educator",
            Role::CdcAnalyst => "cdc_analyst",
            Role::PsbOfficer => "psb_officer",
        }
    }

    /// Roles of people outside the centre, who never see a client record.
    pub fn is_outside(self) -> bool {
        matches!(self, Role::CdcAnalyst | Role::PsbOfficer)
    }

    /// The permission matrix. Anything not listed here is denied.
    pub fn has(self, permission: Permission) -> bool {
        use Permission::*;
        use Role::*;
        match permission {
            ClientRead => matches!(
                self,
                Manager | Prescriber | Dispenser | Counsellor | PeerEducator
            ),
            ClientWrite => matches!(self, Manager | Prescriber | Counsellor),
            IdentityRead => matches!(self, Manager | Prescriber | Dispenser | Counsellor),
            ClinicalRead => matches!(self, Manager | Prescriber | Dispenser | Counsellor),
            ConsentManage => matches!(self, Manager | Prescriber | Counsellor),
            Prescribe => matches!(self, Prescriber),
            DoseRecord => matches!(self, Manager | Prescriber | Dispenser),
            UrineRecord => matches!(self, Manager | Prescriber | Dispenser | Counsellor),
            StockManage => matches!(self, Manager | Dispenser),
            MessagesRead => matches!(self, Manager | Prescriber | Dispenser | Counsellor),
            MessageTextRead => matches!(self, Manager),
            ContactChange => matches!(self, Manager | Prescriber | Counsellor),
            TakeHomeManage => matches!(self, Manager | Prescriber),
            CodeReveal => matches!(self, Manager | Prescriber | Dispenser),
            TakeHomePolicy => matches!(self, Manager),
            // The joint policy room: the centre, the CDC and the police (aggregates only).
            PolicyPropose | PolicySign => matches!(self, Manager | CdcAnalyst | PsbOfficer),
            CalendarManage => matches!(self, Manager),
            PsbQueue => matches!(self, PsbOfficer),
            StaffManage => matches!(self, Admin | Manager),
            SiteManage => matches!(self, Admin),
            AuditRead => matches!(self, Admin | Manager),
            ServiceRecord => matches!(
                self,
                Manager | Prescriber | Dispenser | Counsellor | PeerEducator
            ),
            // The police read the programme's figures shared with them (referral to treatment
            // and MMT adherence), never the health tables: `indicators::shared_with`.
            IndicatorsRead => matches!(self, Manager | CdcAnalyst | PsbOfficer),
            // DHIS2 is the health system's reporting channel.
            Dhis2Export => matches!(self, Manager | CdcAnalyst),
            // The photo is for the roles that dose, who check who is at the window.
            PhotoView => matches!(self, Manager | Prescriber | Dispenser),
            // Taken at intake or at the window.
            PhotoSet => matches!(self, Manager | Prescriber | Dispenser | Counsellor),
            ReferralIssue => matches!(self, PsbOfficer),
            ReferralReceive => matches!(self, Manager | Prescriber | Dispenser | Counsellor),
            // The intake interview: the doctor's or the counsellor's.
            AssessmentRecord => matches!(self, Prescriber | Counsellor),
        }
    }

    /// Roles that a person holding `self` may give to a new account.
    /// An admin may create any role; a manager may create the centre's working roles only.
    pub fn may_grant(self, other: Role) -> bool {
        match self {
            Role::Admin => true,
            Role::Manager => !matches!(other, Role::Admin | Role::Manager) && !other.is_outside(),
            _ => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                DomainError::invalid(
                    "role",
                    format!("unknown role `{s}`; expected one of {}", names.join(", ")),
                )
            })
    }
}

/// Something a route or an operation needs. Each route declares exactly one [`Access`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read a client record of one's own site (every read is audited).
    ClientRead,
    /// Enrol or change a client of one's own site.
    ClientWrite,
    /// See a client's identifying fields (name, national ID, phone, address), decrypted.
    IdentityRead,
    /// Record treatment agreements and consents.
    ConsentManage,
    /// Write dose orders and record prescriber reviews (prescribers only).
    Prescribe,
    /// Record observed doses at the dispensing window.
    DoseRecord,
    /// Record urine drug tests.
    UrineRecord,
    /// Receive methadone stock and close the day's stock.
    StockManage,
    /// See the SMS outbox and the delivery state of a client's messages.
    MessagesRead,
    /// See the text of outgoing messages (they may carry a box code).
    MessageTextRead,
    /// Change a client's phone number (audited).
    ContactChange,
    /// Send police approval requests, load and take back take-home boxes.
    TakeHomeManage,
    /// Tell a client who calls today's box code, after the identity questions (audited).
    CodeReveal,
    /// Adopt the centre's take-home eligibility policy.
    TakeHomePolicy,
    /// Propose a take-home policy version in the joint policy room and see its aggregate preview.
    PolicyPropose,
    /// Sign a take-home policy proposal for one's party (CDC, police, the centre's manager).
    PolicySign,
    /// Add and remove the centre's closure days (its calendar).
    CalendarManage,
    /// The police queue: only the fields a record check needs, for requests addressed to the PSB.
    PsbQueue,
    /// Create, lock and unlock staff accounts.
    StaffManage,
    /// Read the clinical sections of a client record: doses, orders, urine results, adherence,
    /// take-home eligibility, police requests and disclosures, boxes, consents and agreements.
    /// Peer educators do without it: they see the UIC and the services.
    ClinicalRead,
    /// Create centres in the deployment.
    SiteManage,
    /// Read the audit trail.
    AuditRead,
    /// Record one-stop-shop service encounters and therapeutic-community episodes.
    ServiceRecord,
    /// Read the health indicators (aggregates only; released through cell keys to outside
    /// roles; the police read the programme's shared figures only).
    IndicatorsRead,
    /// Download the indicators as a DHIS2 `dataValueSets` file and read the DHIS2 mapping.
    Dhis2Export,
    /// See a client's photo (decrypted, audited): the roles that dose, at the window.
    PhotoView,
    /// Take or replace a client's photo (at intake or at the window).
    PhotoSet,
    /// Refer a person into treatment with a code on paper, and see what became of this
    /// station's referrals: the words `arrived` and `enrolled`, and the station's figures.
    ReferralIssue,
    /// Take a referral code from a person who comes to the centre (with their agreement) and
    /// mark it enrolled.
    ReferralReceive,
    /// Record the intake assessment (substance use, HIV/HCV status, current medicines).
    AssessmentRecord,
}

/// The sections of a client record, each shown only to the roles that need it (least privilege
/// inside the centre: a peer educator sees the UIC and the services, not the clinical record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordSection {
    /// UIC, stage, enrolment and treatment status.
    Summary,
    /// Name, national ID, phone, address.
    Identity,
    /// Doses, orders, adherence, urine results.
    Clinical,
    /// Eligibility, police requests, the disclosure ledger and the boxes.
    TakeHome,
    /// Consents and treatment agreements.
    Consents,
    /// The SMS sent to the client and their states.
    Messages,
    /// Service encounters (needles, naloxone, tests, referrals, counselling).
    Services,
    /// Who opened the record, and when.
    AccessTrail,
}

impl RecordSection {
    pub const ALL: [RecordSection; 8] = [
        RecordSection::Summary,
        RecordSection::Identity,
        RecordSection::Clinical,
        RecordSection::TakeHome,
        RecordSection::Consents,
        RecordSection::Messages,
        RecordSection::Services,
        RecordSection::AccessTrail,
    ];

    /// The permission that shows this section.
    pub fn permission(self) -> Permission {
        match self {
            RecordSection::Summary => Permission::ClientRead,
            RecordSection::Identity => Permission::IdentityRead,
            RecordSection::Clinical | RecordSection::TakeHome | RecordSection::Consents => {
                Permission::ClinicalRead
            }
            RecordSection::Messages => Permission::MessagesRead,
            RecordSection::Services => Permission::ServiceRecord,
            // Who read a record is itself sensitive: the managers, who answer for the trail.
            RecordSection::AccessTrail => Permission::AuditRead,
        }
    }
}

impl Role {
    /// Whether this role sees `section` of a client record (it must also reach the record).
    pub fn sees(self, section: RecordSection) -> bool {
        self.has(Permission::ClientRead) && self.has(section.permission())
    }
}

impl Permission {
    /// Every permission, for exhaustive tests and documentation.
    pub const ALL: [Permission; 30] = [
        Permission::ClientRead,
        Permission::ClientWrite,
        Permission::IdentityRead,
        Permission::ClinicalRead,
        Permission::ConsentManage,
        Permission::Prescribe,
        Permission::DoseRecord,
        Permission::UrineRecord,
        Permission::StockManage,
        Permission::MessagesRead,
        Permission::MessageTextRead,
        Permission::ContactChange,
        Permission::StaffManage,
        Permission::SiteManage,
        Permission::AuditRead,
        Permission::TakeHomeManage,
        Permission::CodeReveal,
        Permission::TakeHomePolicy,
        Permission::PolicyPropose,
        Permission::PolicySign,
        Permission::CalendarManage,
        Permission::PsbQueue,
        Permission::ServiceRecord,
        Permission::IndicatorsRead,
        Permission::Dhis2Export,
        Permission::PhotoView,
        Permission::PhotoSet,
        Permission::ReferralIssue,
        Permission::ReferralReceive,
        Permission::AssessmentRecord,
    ];

    /// Whether holding this permission exposes a client record.
    pub fn touches_client_records(self) -> bool {
        !matches!(
            self,
            Permission::StaffManage
                | Permission::SiteManage
                | Permission::AuditRead
                | Permission::TakeHomePolicy
                // The policy room's preview is aggregate (suppressed for outside roles).
                | Permission::PolicyPropose
                | Permission::PolicySign
                // The calendar is the centre's days; the uncovered clients need `DoseRecord`.
                | Permission::CalendarManage
                // The police queue is the separate, minimal disclosure API, not a client record.
                | Permission::PsbQueue
                // A referral is a code and two words, never a record.
                | Permission::ReferralIssue
                // Indicators are aggregates; outside roles get them through cell keys.
                | Permission::IndicatorsRead
                | Permission::Dhis2Export
        )
    }

    /// The stable snake_case name (as used in the OpenAPI document).
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ClientRead => "client_read",
            Permission::ClientWrite => "client_write",
            Permission::IdentityRead => "identity_read",
            Permission::ClinicalRead => "clinical_read",
            Permission::ConsentManage => "consent_manage",
            Permission::Prescribe => "prescribe",
            Permission::DoseRecord => "dose_record",
            Permission::UrineRecord => "urine_record",
            Permission::StockManage => "stock_manage",
            Permission::MessagesRead => "messages_read",
            Permission::MessageTextRead => "message_text_read",
            Permission::ContactChange => "contact_change",
            Permission::TakeHomeManage => "takehome_manage",
            Permission::CodeReveal => "code_reveal",
            Permission::TakeHomePolicy => "takehome_policy",
            Permission::PolicyPropose => "policy_propose",
            Permission::PolicySign => "policy_sign",
            Permission::CalendarManage => "calendar_manage",
            Permission::PsbQueue => "psb_queue",
            Permission::StaffManage => "staff_manage",
            Permission::SiteManage => "site_manage",
            Permission::AuditRead => "audit_read",
            Permission::ServiceRecord => "service_record",
            Permission::IndicatorsRead => "indicators_read",
            Permission::Dhis2Export => "dhis2_export",
            Permission::PhotoView => "photo_view",
            Permission::PhotoSet => "photo_set",
            Permission::ReferralIssue => "referral_issue",
            Permission::ReferralReceive => "referral_receive",
            Permission::AssessmentRecord => "assessment_record",
        }
    }
}

/// What a route demands of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not (login page, health check, API description).
    Public,
    /// Any logged-in account (own profile, logout, language).
    LoggedIn,
    /// A logged-in account whose role holds this permission.
    Needs(Permission),
}

impl Access {
    /// Whether an account with `role` (or nobody, for `None`) passes.
    pub fn allows(self, role: Option<Role>) -> bool {
        match (self, role) {
            (Access::Public, _) => true,
            (_, None) => false,
            (Access::LoggedIn, Some(_)) => true,
            (Access::Needs(p), Some(r)) => r.has(p),
        }
    }
}

/// A staff member may act on records of their own site only. Another centre's record is
/// refused exactly as a record that does not exist (`what` names it as the caller's not-found
/// answer does, e.g. `client 12`): a different answer would tell an outsider which ids and UICs
/// are in treatment elsewhere.
pub fn check_same_site(
    actor_site: i64,
    record_site: i64,
    what: impl std::fmt::Display,
) -> Result<(), DomainError> {
    if actor_site == record_site {
        Ok(())
    } else {
        Err(DomainError::NotFound(what.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_roles_never_reach_client_records() {
        for role in Role::ALL.into_iter().filter(|r| r.is_outside()) {
            for p in Permission::ALL
                .into_iter()
                .filter(|p| p.touches_client_records())
            {
                assert!(!role.has(p), "{role} must not hold {p:?}");
            }
        }
    }

    /// Every cell of the role × record-section matrix, written out.
    #[test]
    fn each_role_sees_only_its_sections_of_a_record() {
        use RecordSection::*;
        let expected: &[(Role, &[RecordSection])] = &[
            (Role::Admin, &[]),
            (
                Role::Manager,
                &[
                    Summary,
                    Identity,
                    Clinical,
                    TakeHome,
                    Consents,
                    Messages,
                    Services,
                    AccessTrail,
                ],
            ),
            (
                Role::Prescriber,
                &[
                    Summary, Identity, Clinical, TakeHome, Consents, Messages, Services,
                ],
            ),
            (
                Role::Dispenser,
                &[
                    Summary, Identity, Clinical, TakeHome, Consents, Messages, Services,
                ],
            ),
            (
                Role::Counsellor,
                &[
                    Summary, Identity, Clinical, TakeHome, Consents, Messages, Services,
                ],
            ),
            // A peer educator: the UIC and the services, nothing clinical, nobody's reads.
            (Role::PeerEducator, &[Summary, Services]),
            (Role::CdcAnalyst, &[]),
            (Role::PsbOfficer, &[]),
        ];
        assert_eq!(expected.len(), Role::ALL.len());
        for (role, sections) in expected {
            for s in RecordSection::ALL {
                assert_eq!(
                    role.sees(s),
                    sections.contains(&s),
                    "{role} and the {s:?} section"
                );
            }
        }
    }

    /// Who keeps the centre's calendar: the manager alone, as for the centre's other settings.
    #[test]
    fn only_the_manager_keeps_the_calendar() {
        for role in Role::ALL {
            assert_eq!(
                role.has(Permission::CalendarManage),
                role == Role::Manager,
                "{role}"
            );
        }
    }

    /// Every cell of the photo permissions, written out: those who dose see it; those who take
    /// it at intake may set it; nobody else.
    #[test]
    fn the_photo_is_for_those_who_dose() {
        use Role::*;
        let expected: &[(Role, bool, bool)] = &[
            (Admin, false, false),
            (Manager, true, true),
            (Prescriber, true, true),
            (Dispenser, true, true),
            (Counsellor, false, true),
            (PeerEducator, false, false),
            (CdcAnalyst, false, false),
            (PsbOfficer, false, false),
        ];
        assert_eq!(expected.len(), Role::ALL.len());
        for (role, view, set) in expected {
            assert_eq!(role.has(Permission::PhotoView), *view, "{role} photo view");
            assert_eq!(role.has(Permission::PhotoSet), *set, "{role} photo set");
            if *view {
                assert!(role.has(Permission::DoseRecord), "{role} sees it and doses");
            }
        }
    }

    /// Who sits in the joint policy room: the centre's manager, the CDC and the police.
    #[test]
    fn the_policy_room_is_the_managers_the_cdcs_and_the_polices() {
        use Role::*;
        for role in Role::ALL {
            let inside = matches!(role, Manager | CdcAnalyst | PsbOfficer);
            assert_eq!(role.has(Permission::PolicyPropose), inside, "{role}");
            assert_eq!(role.has(Permission::PolicySign), inside, "{role}");
        }
    }

    #[test]
    fn admin_does_not_read_clinical_records() {
        assert!(!Role::Admin.has(Permission::ClientRead));
        assert!(Role::Admin.has(Permission::StaffManage));
    }

    #[test]
    fn role_names_round_trip_and_unknown_role_names_the_field() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        let err = "boss".parse::<Role>().unwrap_err();
        assert!(err.to_string().starts_with("role: unknown role `boss`"));
    }

    #[test]
    fn nobody_passes_a_guarded_route_without_logging_in() {
        assert!(Access::Public.allows(None));
        assert!(!Access::LoggedIn.allows(None));
        assert!(!Access::Needs(Permission::ClientRead).allows(None));
        assert!(Access::Needs(Permission::ClientRead).allows(Some(Role::Dispenser)));
        assert!(!Access::Needs(Permission::ClientRead).allows(Some(Role::PsbOfficer)));
    }

    #[test]
    fn managers_cannot_mint_admins_or_outside_accounts() {
        assert!(!Role::Manager.may_grant(Role::Admin));
        assert!(!Role::Manager.may_grant(Role::PsbOfficer));
        assert!(Role::Manager.may_grant(Role::Dispenser));
        assert!(!Role::Dispenser.may_grant(Role::Dispenser));
    }

    #[test]
    fn site_scope() {
        assert!(check_same_site(1, 1, "client 7").is_ok());
        // Refused as if it did not exist: the same words as a missing record.
        assert_eq!(
            check_same_site(1, 2, "client 7").unwrap_err().to_string(),
            DomainError::NotFound("client 7".into()).to_string()
        );
    }
}
