//! The methadone clinic's rules: treatment stages, dose orders and titration, induction and titration limits, the missed-dose
//! safety rule, urine tests and their random selection, adherence figures, and methadone stock
//! accounting. Every function takes the day or instant it decides for; none reads a clock.

pub mod adherence;
pub mod guest;
pub mod induction;
pub mod missed;
pub mod orders;
pub mod stage;
pub mod stock;
pub mod urine;
