//! Refusals as stable codes: what was refused ([`Code`]), which input field it concerns, and
//! the values a message needs (`uic`, `at`, …). Adapters translate a code into the user's
//! language (Fluent messages `err-<code>` in the server's locales); the code itself never
//! changes once published, so programs can match on it.
//!
//! New rules and use cases refuse with a [`Problem`]; the older free-text
//! [`crate::DomainError`] variants are being moved over to codes.

use std::fmt;

/// How a refusal is classed: the HTTP adapter maps each class to one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Input that breaks a rule (422).
    Invalid,
    /// Not allowed for this caller (403).
    Forbidden,
    /// Nothing of that name (404).
    NotFound,
    /// Contradicts the current state (409).
    Conflict,
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident => ($code:literal, $kind:ident), )*) => {
        /// Every refusal Anxin can give by code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code { $( $(#[$doc])* $variant, )* }

        impl Code {
            /// Every code, for the translation tests.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The stable code, e.g. `dose.already_given`.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code, )* }
            }

            /// Its class.
            pub fn kind(self) -> Kind {
                match self { $( Code::$variant => Kind::$kind, )* }
            }
        }
    };
}

codes! {
    /// A path or form id that is not a number.
    IdMalformed => ("id.malformed", Invalid),
    /// A UIC with characters a UIC never has.
    UicMalformed => ("uic.malformed", Invalid),
    /// No client has this UIC here: none in the deployment, or one of another centre without a
    /// guest arrangement here today (the two are one answer, so nothing leaks across centres).
    UicUnknown => ("uic.unknown", Invalid),
    /// The client's record is at another centre.
    ClientNotHere => ("client.not_here", NotFound),
    /// The client left treatment.
    ClientDischarged => ("client.discharged", Invalid),
    /// The client is in compulsory isolated treatment (not dosed at the centre).
    ClientInCit => ("client.in_cit", Invalid),
    /// No dose order in force today.
    DoseNoOrder => ("dose.no_order", Conflict),
    /// The missed-dose rule withholds today's dose until a prescriber acts.
    DoseWithheld => ("dose.withheld", Conflict),
    /// Today's dose is in the client's take-home box and its code went out (or goes out later).
    DoseInBox => ("dose.in_box", Conflict),
    /// Today's dose (every portion) was already given.
    DoseAlreadyGiven => ("dose.already_given", Conflict),
    /// A phone number that is not one.
    PhoneInvalid => ("phone.invalid", Invalid),
    /// A national ID number that is not 18 characters with a valid check character.
    NationalIdInvalid => ("national_id.invalid", Invalid),
    /// An identity form with nothing in it (it would wipe the identity).
    IdentityEmpty => ("identity.empty", Invalid),
    /// A client photo that is not a JPEG, PNG or WebP image (by its bytes, not its name).
    PhotoNotAnImage => ("photo.not_an_image", Invalid),
    /// A client photo larger than the limit (`size`, `max` in KB).
    PhotoTooLarge => ("photo.too_large", Invalid),
    /// A reason that must be given was left empty.
    ReasonRequired => ("reason.required", Invalid),
    /// A field longer than its limit.
    TextTooLong => ("text.too_long", Invalid),
    /// A dose above the ceiling without a clinical reason.
    OrderReasonRequired => ("order.reason_required", Invalid),
    /// A dose of 0 mg or an implausible amount.
    OrderMgOutOfRange => ("order.mg_out_of_range", Invalid),
    /// Not 1 or 2 portions.
    OrderSplitInvalid => ("order.split_invalid", Invalid),
    /// An order starting more than a week ago.
    OrderStartTooEarly => ("order.start_too_early", Invalid),
    /// Steps that do not follow the start and each other.
    OrderStepsOutOfOrder => ("order.steps_out_of_order", Invalid),
    /// A kind of order that does not exist.
    OrderKindUnknown => ("order.kind_unknown", Invalid),
    /// A referral code that cannot be one (length, characters).
    ReferralCodeMalformed => ("referral.code_malformed", Invalid),
    /// No referral waits under this code: none was issued, or it was already used (one answer,
    /// so that nothing is told about the code).
    ReferralUnknown => ("referral.unknown", Invalid),
    /// Marking a referral arrived without the person's agreement that the police be told.
    ReferralConsentRequired => ("referral.consent_required", Invalid),
    /// Enrolling on a referral that is not waiting at this centre as arrived.
    ReferralNotArrived => ("referral.not_arrived", Conflict),
    /// A first dose above the induction limit, without a reason for a second prescriber.
    OrderFirstDoseAboveLimit => ("order.first_dose_above_limit", Invalid),
    /// A first day's total above the induction limit, without a reason.
    OrderFirstDayAboveLimit => ("order.first_day_above_limit", Invalid),
    /// A rise of the daily dose larger than the titration limit, without a reason.
    OrderIncreaseAboveLimit => ("order.increase_above_limit", Invalid),
    /// A rise sooner after the one before than the titration limit, without a reason.
    OrderIncreaseTooSoon => ("order.increase_too_soon", Invalid),
    /// Confirming an order that awaits no confirmation (never needed one, or already given).
    OrderNotAwaiting => ("order.not_awaiting", Conflict),
    /// A prescriber confirming their own order beyond the limits.
    OrderConfirmOwn => ("order.confirm_own", Conflict),
    /// A date field that is not `YYYY-MM-DD`.
    DateMalformed => ("date.malformed", Invalid),
    /// A number field that is not a number in range.
    NumberInvalid => ("number.invalid", Invalid),
    /// The hand-out without the client confirming the phone for the codes.
    HandOutPhoneUnconfirmed => ("handout.phone_unconfirmed", Invalid),
    /// A load of other than 2 to 6 days.
    LoadDaysOutOfRange => ("load.days_out_of_range", Invalid),
    /// More days than the client is eligible for.
    LoadOverEligible => ("load.over_eligible", Invalid),
    /// More days than the police approved.
    LoadOverApproved => ("load.over_approved", Invalid),
    /// No police approval in force.
    LoadNotApproved => ("load.not_approved", Conflict),
    /// A day of the load not covered by a dose order.
    LoadNoOrder => ("load.no_order", Conflict),
    /// The first day in the box is not within the coming week.
    LoadStartOutOfWindow => ("load.start_out_of_window", Invalid),
    /// An hour for the codes outside 0–23.
    LoadCodeHourInvalid => ("load.code_hour_invalid", Invalid),
    /// The client has no phone number for the codes.
    LoadNoPhone => ("load.no_phone", Invalid),
    /// The client's treatment has ended (discharge, CIT).
    LoadTreatmentEnded => ("load.treatment_ended", Conflict),
    /// No box of that serial at this centre.
    BoxUnknown => ("box.unknown", Invalid),
    /// A box serial empty or too long.
    BoxSerialInvalid => ("box.serial_invalid", Invalid),
    /// A box serial already registered in the deployment.
    BoxSerialTaken => ("box.serial_taken", Conflict),
    /// The box is not in the clinic (out with a client, lost, retired).
    BoxNotInClinic => ("box.not_in_clinic", Conflict),
    /// A load in a state that does not allow the action.
    LoadWrongState => ("load.wrong_state", Conflict),
    /// A box export that is not base64.
    ExportMalformed => ("export.malformed", Invalid),
    /// A box export whose MAC chain does not verify for this load.
    ExportDoesNotVerify => ("export.does_not_verify", Invalid),
    /// A return without a challenge issued: the return must be started first.
    ExportNoChallenge => ("export.no_challenge", Conflict),
    /// An export that carries another challenge than the one issued (an old export).
    ExportStale => ("export.stale", Invalid),
    /// A split dose's next portion before the interval since the last one has passed.
    DosePortionTooSoon => ("dose.portion_too_soon", Conflict),
    /// A tracker IMEI that is not 15 digits.
    TrackerImeiInvalid => ("tracker.imei_invalid", Invalid),
    /// No box station is set up (`boxes.station`): a box cannot be written or read.
    StationNone => ("station.none", Conflict),
    /// The box station's line does not answer (nothing plugged in, cable, timeout).
    StationUnreachable => ("station.unreachable", Conflict),
    /// The box on the station is not the one the load names.
    StationWrongBox => ("station.wrong_box", Conflict),
    /// The box on the station still holds a load that was not returned.
    StationBoxHoldsLoad => ("station.box_holds_load", Conflict),
    /// The box on the station does not hold the load being returned.
    StationNotThisLoad => ("station.not_this_load", Conflict),
    /// The box refused a request, or answered with a frame the station refused.
    StationRefused => ("station.refused", Conflict),
    /// After a provision the box's status does not show the load just written.
    StationCheckFailed => ("station.check_failed", Conflict),
    /// Today's code asked for without the caller's answers to the identity questions.
    RevealUnchecked => ("reveal.unchecked", Invalid),
    /// The caller's answers do not match the record.
    RevealMismatch => ("reveal.mismatch", Invalid),
    /// No compartment of the box is for today (or the box is not out).
    RevealNoCompartment => ("reveal.no_compartment", Conflict),
    /// Today's code was stopped (withheld, lost, ended): the client comes to the window.
    RevealStopped => ("reveal.stopped", Conflict),
    /// A load of another centre.
    LoadNotHere => ("load.not_here", NotFound),
    /// A police request without the client's active consent to the check.
    RequestNoConsent => ("request.no_consent", Conflict),
    /// A police request for a client not eligible for take-home doses today.
    RequestNotEligible => ("request.not_eligible", Conflict),
    /// Requested days outside 2 to the eligible days.
    RequestDaysOutOfRange => ("request.days_out_of_range", Invalid),
    /// A police answer other than approve or deny.
    RequestDecisionInvalid => ("request.decision_invalid", Invalid),
    /// A police answer to a request already answered.
    RequestAnswered => ("request.answered", Conflict),
    /// A police answer after the request expired.
    RequestExpired => ("request.expired", Conflict),
    /// A request addressed to another police office.
    RequestOtherOffice => ("request.other_office", Forbidden),
    /// An agreement without its treatment method.
    AgreementMethodRequired => ("agreement.method_required", Invalid),
    /// An agreement duration outside the allowed months.
    AgreementDurationOutOfRange => ("agreement.duration_out_of_range", Invalid),
    /// An agreement without the rules the client agrees to.
    AgreementRulesRequired => ("agreement.rules_required", Invalid),
    /// A guardian's signature without the guardian's name.
    AgreementGuardianRequired => ("agreement.guardian_required", Invalid),
    /// A signer other than the client or a guardian.
    AgreementSignedByInvalid => ("agreement.signed_by_invalid", Invalid),
    /// A new police request while an approval is in force.
    RequestApprovalHolds => ("request.approval_holds", Conflict),
    /// A discharge of a client already discharged.
    ClientAlreadyDischarged => ("client.already_discharged", Conflict),
    /// A readmission of a client still in treatment.
    ClientInTreatment => ("client.in_treatment", Conflict),
    /// A transfer to the client's own centre.
    TransferSameSite => ("transfer.same_site", Invalid),
    /// No centre of the deployment has this code.
    SiteUnknown => ("site.unknown", Invalid),
    /// A date after today where only today or earlier makes sense.
    DateInFuture => ("date.in_future", Invalid),
    /// A role the acting manager may not give.
    StaffRoleNotGrantable => ("staff.role_not_grantable", Forbidden),
    /// The current password given to change it is wrong.
    PasswordWrong => ("password.wrong", Invalid),
    /// The new password is the current one.
    PasswordUnchanged => ("password.unchanged", Invalid),
    /// The new password and its confirmation differ.
    PasswordMismatch => ("password.mismatch", Invalid),
    /// A password shorter than the policy's minimum.
    PasswordTooShort => ("password.too_short", Invalid),
    /// A password longer than the policy's maximum.
    PasswordTooLong => ("password.too_long", Invalid),
    /// A password that is one character repeated.
    PasswordRepeated => ("password.repeated", Invalid),
    /// A password that is a short pattern repeated.
    PasswordPattern => ("password.pattern", Invalid),
    /// A password that is a run of consecutive characters.
    PasswordSequence => ("password.sequence", Invalid),
    /// A password that contains the username.
    PasswordHasUsername => ("password.has_username", Invalid),
    /// A password that contains the centre's name or code.
    PasswordHasCentre => ("password.has_centre", Invalid),
    /// A password that contains the system's name.
    PasswordHasSystem => ("password.has_system", Invalid),
    /// A password on the list of common and breached passwords.
    PasswordCommon => ("password.common", Invalid),
    /// A common password with digits or symbols around it.
    PasswordCommonDecorated => ("password.common_decorated", Invalid),
    /// A stock variance above the threshold without a reason.
    StockVarianceUnexplained => ("stock.variance_unexplained", Invalid),
    /// A year of birth outside the plausible range.
    BirthYearImplausible => ("client.birth_year_implausible", Invalid),
    /// A date range that ends before it starts.
    DateRangeReversed => ("date.range_reversed", Invalid),
    /// Ending a treatment while a box is out, without confirming that its codes stop.
    TreatmentEndBoxOut => ("treatment.box_out", Conflict),
    /// A needle exchange that neither gave nor took back a needle.
    ServiceNothingExchanged => ("service.nothing_exchanged", Invalid),
    /// More needles returned than one person can carry, without a reason.
    ServiceReturnsImplausible => ("service.returns_implausible", Invalid),
    /// A number of kits or condoms below one.
    ServiceCountTooSmall => ("service.count_too_small", Invalid),
    /// A service field that must be named (topic, course, educator).
    ServiceFieldRequired => ("service.field_required", Invalid),
    /// A test result without the date of its test.
    ServiceResultUndated => ("service.result_undated", Invalid),
    /// A person told a result that is not recorded.
    ServiceToldWithoutResult => ("service.told_without_result", Invalid),
    /// An ARV outcome dated before its referral.
    ArvOutcomeBeforeReferral => ("arv.outcome_before_referral", Invalid),
    /// A referral linked to treatment without the day treatment started.
    ArvLinkedUndated => ("arv.linked_undated", Invalid),
    /// A pending referral with an outcome date.
    ArvPendingDated => ("arv.pending_dated", Invalid),
    /// A service kind the page does not know.
    ServiceKindUnknown => ("service.kind_unknown", Invalid),
    /// A guest-dosing arrangement that starts before today.
    GuestFromPast => ("guest.from_past", Invalid),
    /// A guest-dosing arrangement that ends before it starts or lasts too long.
    GuestPeriodInvalid => ("guest.period_invalid", Invalid),
    /// A DHIS2 export of a period that is not one whole month or quarter.
    Dhis2PeriodNotWhole => ("dhis2.period_not_whole", Invalid),
    /// A DHIS2 export before any mapping is set.
    Dhis2NoMapping => ("dhis2.no_mapping", Conflict),
    /// A DHIS2 mapping line for the denominator of a count.
    Dhis2NoDenominator => ("dhis2.no_denominator", Invalid),
    /// A DHIS2 mapping line that is already there.
    Dhis2DuplicateEntry => ("dhis2.duplicate_entry", Conflict),
    /// A required field left empty.
    FieldRequired => ("field.required", Invalid),
    /// A month that is not `YYYY-MM`, or not over yet.
    MonthInvalid => ("month.invalid", Invalid),
    /// A period asked by the CDC or the police that is not a calendar month, quarter or year.
    PeriodNotReporting => ("period.not_reporting", Invalid),
    /// A value that is not one of a list's choices.
    ChoiceUnknown => ("choice.unknown", Invalid),
    /// A UIC that another client of the deployment already has.
    ClientUicTaken => ("client.uic_taken", Conflict),
    /// A consent that expires on or before the day it is given.
    ConsentExpiresTooSoon => ("consent.expires_too_soon", Invalid),
    /// Order dates given for a stage that rests on no order.
    StageOrderNotApplicable => ("stage.order_not_applicable", Invalid),
    /// An order term longer than the law allows.
    StageOrderTooLong => ("stage.order_too_long", Invalid),
    /// A take-home policy without any tier.
    PolicyNoTiers => ("policy.no_tiers", Invalid),
    /// A tier's take-home period outside 2 to 6 days.
    PolicyDaysOutOfRange => ("policy.days_out_of_range", Invalid),
    /// An attendance threshold outside 0 to 100 percent.
    PolicyPercentOutOfRange => ("policy.percent_out_of_range", Invalid),
    /// Days in treatment outside what a tier may ask for (0 to 3650).
    PolicyTreatmentDaysOutOfRange => ("policy.treatment_days_out_of_range", Invalid),
    /// A count of negative urine tests outside 0 to 12.
    PolicyUrineCountOutOfRange => ("policy.urine_count_out_of_range", Invalid),
    /// Tiers not in increasing order of days (or two tiers of the same days).
    PolicyTiersOutOfOrder => ("policy.tiers_out_of_order", Invalid),
    /// A longer take-home period asking less than a shorter one (`days`, `shorter`).
    PolicyTierLooser => ("policy.tier_looser", Invalid),
    /// The days a police approval stays valid outside 1 to 366.
    PolicyApprovalDaysOutOfRange => ("policy.approval_days_out_of_range", Invalid),
    /// A policy version name already adopted at this centre (`version`).
    PolicyVersionTaken => ("policy.version_taken", Conflict),
    /// A policy proposal starting before today (`today`).
    PolicyEffectiveInPast => ("policy.effective_in_past", Invalid),
    /// A signature by a role that signs for no party (`role`).
    PolicySignRoleRefused => ("policy.sign_role_refused", Forbidden),
    /// A party signing a proposal it signed already (`party`).
    PolicyAlreadySigned => ("policy.already_signed", Conflict),
    /// The centre's manager signing before both the CDC and the police.
    PolicyCentreSignsLast => ("policy.centre_signs_last", Conflict),
    /// An edit of a proposal somebody signed: a new proposal supersedes it.
    PolicyProposalSigned => ("policy.proposal_signed", Conflict),
    /// A therapeutic-community episode with a leaving date but no way of ending.
    TcExitRequired => ("tc.exit_required", Invalid),
    /// An exit without the day the resident left.
    TcLeftOnRequired => ("tc.left_on_required", Invalid),
    /// A leaving date before the admission (`left`, `admitted`).
    TcLeftBeforeAdmission => ("tc.left_before_admission", Invalid),
    /// Follow-up urine for a resident who has not left.
    TcFollowUpBeforeLeaving => ("tc.follow_up_before_leaving", Invalid),
    /// Follow-up urine recorded before its month (`months`, `due`).
    TcFollowUpNotDue => ("tc.follow_up_not_due", Invalid),
    /// An episode's admission date changed.
    TcAdmissionFixed => ("tc.admission_fixed", Invalid),
    /// A phase before the current one.
    TcPhaseBackwards => ("tc.phase_backwards", Invalid),
    /// An ended episode's exit changed.
    TcExitFixed => ("tc.exit_fixed", Invalid),
    /// A closure day before today (`day`): the calendar plans, it does not rewrite the past.
    ClosureInPast => ("closure.in_past", Invalid),
    /// The centre is already closed that day (`day`).
    ClosureExists => ("closure.exists", Conflict),
    /// An age at first use outside the plausible range (`min`, `max`).
    AssessmentAgeOutOfRange => ("assessment.age_out_of_range", Invalid),
    /// An age at first use above the client's age (`age`) from the year of birth.
    AssessmentAgeAboveClientAge => ("assessment.age_above_client_age", Invalid),
    /// A medicine that is not in the catalogue (`value`).
    AssessmentMedicineUnknown => ("assessment.medicine_unknown", Invalid),
    /// An ARV regimen recorded for a client whose HIV status is negative.
    AssessmentArvHivNegative => ("assessment.arv_hiv_negative", Invalid),
    /// An assessment that names no substance used.
    AssessmentNoSubstance => ("assessment.no_substance", Invalid),
    /// A death recorded for a client whose death is already recorded (`day`).
    DeathAlreadyRecorded => ("death.already_recorded", Conflict),
    /// An organisation-unit code that is not 2–16 capital letters, digits or `-` (`value`).
    OrgUnitCodeInvalid => ("org_unit.code_invalid", Invalid),
    /// An organisation-unit code another unit already has (`code`).
    OrgUnitCodeTaken => ("org_unit.code_taken", Conflict),
    /// No organisation unit has this code (`code`): said only to the administrator.
    OrgUnitUnknown => ("org_unit.unknown", Invalid),
    /// A parent of the wrong level (`level`, `parent_level`): province → city → district.
    OrgUnitParentWrong => ("org_unit.parent_wrong", Invalid),
    /// A centre placed in a province (`level`): a centre sits in a city or a district.
    OrgUnitCentreLevel => ("org_unit.centre_level", Invalid),
    /// A unit scope given to a centre's own account (`role`): only the CDC and the police are
    /// scoped to a unit.
    OrgUnitScopeInsideRole => ("org_unit.scope_inside_role", Invalid),
    /// A centre or unit outside the caller's unit (or no such code: the same answer, so
    /// nothing is disclosed).
    ScopeOutside => ("scope.outside", Forbidden),
    /// A comparison or DHIS2 export asked for a period that is not one month (`value`).
    PeriodNotMonth => ("period.not_month", Invalid),
}

impl Code {
    /// The Fluent message id of this code: `err-` and the code with `.` and `_` as `-`.
    pub fn message_id(self) -> String {
        format!("err-{}", self.as_str().replace(['.', '_'], "-"))
    }
}

/// One refusal: its code, the input field it concerns and the values its message names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: Code,
    pub field: Option<String>,
    pub args: Vec<(&'static str, String)>,
}

impl Problem {
    /// A refusal with `code`.
    pub fn new(code: Code) -> Self {
        Problem {
            code,
            field: None,
            args: Vec::new(),
        }
    }

    /// The input field it concerns.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// A value its message names.
    pub fn arg(mut self, name: &'static str, value: impl ToString) -> Self {
        self.args.push((name, value.to_string()));
        self
    }

    /// The value of argument `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Its class.
    pub fn kind(&self) -> Kind {
        self.code.kind()
    }
}

impl fmt::Display for Problem {
    /// The code, field and arguments, for logs (users read the translated message).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(self.code.as_str())?;
        if !self.args.is_empty() {
            let args: Vec<String> = self.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, " ({})", args.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_dotted_and_have_message_ids() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {}", c.as_str());
            assert!(
                c.as_str().contains('.'),
                "{} has no feature prefix",
                c.as_str()
            );
            assert!(c.message_id().starts_with("err-"));
            assert!(!c.message_id().contains(['.', '_']));
        }
    }

    #[test]
    fn display_names_field_code_and_args() {
        let p = Problem::new(Code::DoseAlreadyGiven)
            .field("uic")
            .arg("uic", "YX-0001")
            .arg("at", "07:58");
        assert_eq!(
            p.to_string(),
            "uic: dose.already_given (uic=YX-0001, at=07:58)"
        );
        assert_eq!(p.get("at"), Some("07:58"));
        assert_eq!(p.kind(), Kind::Conflict);
    }
}
