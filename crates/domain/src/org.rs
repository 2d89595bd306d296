//! Organisation units: the geography a deployment reports in (province → city → district), where
//! each centre sits (a city or a district), and which units and centres lie below a unit — what
//! a CDC or police account scoped to that unit may see. Pure rules; the store keeps the tree.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use crate::{validate, Code, Problem};

/// The level of an organisation unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrgLevel {
    Province,
    City,
    District,
}

impl OrgLevel {
    /// Every level, top first.
    pub const ALL: [OrgLevel; 3] = [OrgLevel::Province, OrgLevel::City, OrgLevel::District];

    /// The stable name stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgLevel::Province => "province",
            OrgLevel::City => "city",
            OrgLevel::District => "district",
        }
    }

    /// The level a unit of this level sits in, if any (a province is the top).
    pub fn parent_level(self) -> Option<OrgLevel> {
        match self {
            OrgLevel::Province => None,
            OrgLevel::City => Some(OrgLevel::Province),
            OrgLevel::District => Some(OrgLevel::City),
        }
    }

    /// Whether a centre may sit directly in a unit of this level (a city or a district).
    pub fn holds_centres(self) -> bool {
        matches!(self, OrgLevel::City | OrgLevel::District)
    }
}

impl fmt::Display for OrgLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrgLevel {
    type Err = Problem;
    fn from_str(s: &str) -> Result<Self, Problem> {
        OrgLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == s.trim())
            .ok_or_else(|| {
                Problem::new(Code::ChoiceUnknown)
                    .field("level")
                    .arg("value", s.trim())
            })
    }
}

/// Checks a new unit: its code (as a centre code: 2–16 capitals, digits, `-`), its name, and
/// its parent's level. A unit may be the top of a deployment (no parent: a city-only or
/// district-only deployment); given a parent, it must be exactly one level up.
pub fn check_unit(
    code: &str,
    name: &str,
    level: OrgLevel,
    parent: Option<OrgLevel>,
) -> Result<(), Problem> {
    if validate::site_code(code).is_err() {
        return Err(Problem::new(Code::OrgUnitCodeInvalid)
            .field("code")
            .arg("value", code));
    }
    if name.trim().is_empty() {
        return Err(Problem::new(Code::FieldRequired).field("name"));
    }
    if validate::site_name(name).is_err() {
        return Err(Problem::new(Code::FieldRequired).field("name"));
    }
    if let Some(p) = parent {
        if level.parent_level() != Some(p) {
            return Err(Problem::new(Code::OrgUnitParentWrong)
                .field("parent")
                .arg("level", level.as_str())
                .arg("parent_level", p.as_str()));
        }
    }
    Ok(())
}

/// Checks that a centre may be placed in a unit of `level`.
pub fn check_centre_place(level: OrgLevel) -> Result<(), Problem> {
    if level.holds_centres() {
        Ok(())
    } else {
        Err(Problem::new(Code::OrgUnitCentreLevel)
            .field("unit")
            .arg("level", level.as_str()))
    }
}

/// The tree of units and where the centres sit: ids only.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// unit id → parent unit id.
    pub parent: HashMap<i64, Option<i64>>,
    /// site id → unit id (placed centres only).
    pub site_unit: HashMap<i64, i64>,
}

impl Tree {
    /// `unit` and every unit below it.
    pub fn units_below(&self, unit: i64) -> BTreeSet<i64> {
        let mut out = BTreeSet::new();
        if !self.parent.contains_key(&unit) {
            return out;
        }
        out.insert(unit);
        // Grow the set until no unit's parent is newly inside (the tree is small).
        loop {
            let before = out.len();
            for (id, p) in &self.parent {
                if let Some(p) = p {
                    if out.contains(p) {
                        out.insert(*id);
                    }
                }
            }
            if out.len() == before {
                return out;
            }
        }
    }

    /// Whether `unit` is `root` or lies below it.
    pub fn is_within(&self, unit: i64, root: i64) -> bool {
        let mut at = Some(unit);
        let mut steps = 0;
        while let Some(u) = at {
            if u == root {
                return true;
            }
            steps += 1;
            if steps > self.parent.len() {
                return false; // a cycle: not within
            }
            at = self.parent.get(&u).copied().flatten();
        }
        false
    }

    /// The centres in `unit` or below it, by id.
    pub fn sites_below(&self, unit: i64) -> Vec<i64> {
        let units = self.units_below(unit);
        let mut out: Vec<i64> = self
            .site_unit
            .iter()
            .filter(|(_, u)| units.contains(u))
            .map(|(s, _)| *s)
            .collect();
        out.sort_unstable();
        out
    }

    /// Whether centre `site` lies in `unit` or below it.
    pub fn site_within(&self, site: i64, unit: i64) -> bool {
        self.site_unit
            .get(&site)
            .is_some_and(|u| self.is_within(*u, unit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> Tree {
        // 1 province; 2 city in 1; 3, 4 districts in 2; 5 another city in 1.
        let parent = HashMap::from([
            (1, None),
            (2, Some(1)),
            (3, Some(2)),
            (4, Some(2)),
            (5, Some(1)),
        ]);
        let site_unit = HashMap::from([(10, 3), (11, 4), (12, 2), (13, 5)]);
        Tree { parent, site_unit }
    }

    #[test]
    fn a_unit_holds_the_units_and_centres_below_it() {
        let t = tree();
        assert_eq!(t.sites_below(2), vec![10, 11, 12]);
        assert_eq!(t.sites_below(3), vec![10]);
        assert_eq!(t.sites_below(1), vec![10, 11, 12, 13]);
        assert!(t.sites_below(99).is_empty());
        assert!(t.is_within(3, 1) && t.is_within(3, 3) && !t.is_within(5, 2));
        assert!(t.site_within(11, 2) && !t.site_within(13, 2) && !t.site_within(99, 1));
    }

    #[test]
    fn levels_nest_province_city_district() {
        use OrgLevel::*;
        assert!(check_unit("YN", "云南省", Province, None).is_ok());
        assert!(check_unit("YX", "玉溪市", City, Some(Province)).is_ok());
        assert!(check_unit("HT", "红塔区", District, Some(City)).is_ok());
        let wrong = check_unit("HT", "红塔区", District, Some(Province)).unwrap_err();
        assert_eq!(
            (wrong.code, wrong.field.as_deref()),
            (Code::OrgUnitParentWrong, Some("parent"))
        );
        assert!(check_unit("YN2", "x", Province, Some(Province)).is_err());
        let code = check_unit("yx city", "玉溪", City, None).unwrap_err();
        assert_eq!(code.field.as_deref(), Some("code"));
        assert_eq!(
            check_unit("YX", " ", City, None)
                .unwrap_err()
                .field
                .as_deref(),
            Some("name")
        );
        assert!(check_centre_place(District).is_ok() && check_centre_place(City).is_ok());
        assert_eq!(
            check_centre_place(Province).unwrap_err().code,
            Code::OrgUnitCentreLevel
        );
        assert_eq!(
            "county".parse::<OrgLevel>().unwrap_err().field.as_deref(),
            Some("level")
        );
    }
}
