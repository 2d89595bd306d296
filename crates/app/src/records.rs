//! The records the use cases answer with, as the storage layer defines them. Adapters read
//! their fields; only the use cases of this crate reach the store that keeps them.

pub use anxin_storage::assessments::{Death, Overdose, StoredAssessment};
pub use anxin_storage::boxes::{Load, LockBox};
pub use anxin_storage::clinic::{
    Agreement, Confirmation, Consent, DoseFacts, Identity, StoredOrder,
};
pub use anxin_storage::outbox::OutboxMessage;
pub use anxin_storage::{AuditView, Client, NewUser, Site, User};
