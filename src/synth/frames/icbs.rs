//! ICB codes: ODS (`QHM`, the practices' parents in `epraccur`) to ONS (`E54000050`, the
//! boundaries), for the ICBs of `super::Reference`.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::{Frames, Icb, PRACTICES, strings};
use crate::ingest::{Footprints, InputKind};
use crate::schema;
use crate::synth::SynthError;

/// Normalise an organisation name for matching: upper case, "INTEGRATED CARE BOARD" → "ICB",
/// a trailing sub-ICB code (" - 16C": 3 to 5 letters and digits, with a digit) dropped,
/// punctuation runs to one space.
fn normalise_name(name: &str) -> String {
    let upper = name.to_uppercase().replace("INTEGRATED CARE BOARD", "ICB");
    let trimmed = match upper.rsplit_once(" - ") {
        Some((head, tail))
            if (3..=5).contains(&tail.trim().len())
                && tail.trim().chars().all(|c| c.is_ascii_alphanumeric())
                && tail.chars().any(|c| c.is_ascii_digit()) =>
        {
            head.to_string()
        }
        _ => upper,
    };
    trimmed
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The ICBs, matched from ODS codes (practice parents in `epraccur`) to the ONS codes of the
/// boundaries, by the first of these that names a boundary:
///
/// 1. the ICB lookup (`icb_codes`), when the config names one;
/// 2. the practice map (January 2022), whose STP codes are the ICBs' ODS codes; but eight ICBs
///    took new ONS codes when their boundaries changed in July 2022 (e.g. Greater Manchester
///    `E54000007` → `E54000057`), so
/// 3. the name: ePCN names each practice's sub-ICB location `"NHS <ICB NAME> ICB - <code>"`, and
///    the boundary file names the ICB `"NHS <ICB NAME> Integrated Care Board"`.
pub(super) fn icbs(frames: &Frames, footprints: &Footprints) -> Result<Vec<Icb>, SynthError> {
    let by_ons: BTreeMap<&str, &str> = footprints
        .features
        .iter()
        .map(|f| (f.code.as_str(), f.name.as_deref().unwrap_or("")))
        .collect();
    let by_name: BTreeMap<String, &str> = footprints
        .features
        .iter()
        .filter_map(|f| Some((normalise_name(f.name.as_deref()?), f.code.as_str())))
        .collect();

    let practice_parents = frames
        .required(InputKind::Epraccur)?
        .select([col(schema::PRACTICE_CODE), col(schema::ICB_CODE)]);
    let map = frames
        .required(InputKind::PracticeMap)?
        .select([col(schema::ICB_CODE), col(schema::ICB_ONS_CODE)])
        .filter(col(schema::ICB_CODE).is_not_null())
        .unique_stable(None, UniqueKeepStrategy::First);
    let sub_icb_names = frames
        .required(InputKind::EpcnMembers)?
        .select([col(schema::PRACTICE_CODE), col(schema::SUB_ICB_NAME)])
        .inner_join(
            practice_parents,
            col(schema::PRACTICE_CODE),
            col(schema::PRACTICE_CODE),
        )
        .filter(
            col(schema::ICB_CODE)
                .is_not_null()
                .and(col(schema::SUB_ICB_NAME).is_not_null()),
        )
        // The commonest name among the ICB's practices (ties: the first in order).
        .group_by([col(schema::ICB_CODE), col(schema::SUB_ICB_NAME)])
        .agg([len().alias(PRACTICES)])
        .sort(
            [schema::ICB_CODE, PRACTICES, schema::SUB_ICB_NAME],
            SortMultipleOptions::default().with_order_descending_multi([false, true, false]),
        )
        .group_by_stable([col(schema::ICB_CODE)])
        .agg([col(schema::SUB_ICB_NAME).first()]);
    // Per ODS code: the ONS code of the ICB lookup, of the practice map, and the ePCN name.
    let mut candidates: BTreeMap<String, [Option<String>; 3]> = BTreeMap::new();
    let mut gather = |frame: LazyFrame, column: &str, slot: usize| -> Result<(), SynthError> {
        let table = frame
            .collect()
            .map_err(|e| SynthError::polars("matching ICB codes to their boundaries", e))?;
        let codes = strings(&table, schema::ICB_CODE)?;
        let values = strings(&table, column)?;
        for (code, value) in codes.into_iter().zip(values) {
            if let (Some(code), Some(value)) = (code, value) {
                candidates.entry(code).or_default()[slot].get_or_insert(value);
            }
        }
        Ok(())
    };
    if let Some(lookup) = frames.get(InputKind::IcbCodes) {
        gather(lookup, schema::ICB_ONS_CODE, 0)?;
    }
    gather(map, schema::ICB_ONS_CODE, 1)?;
    gather(sub_icb_names, schema::SUB_ICB_NAME, 2)?;
    let mut icbs = Vec::new();
    for (ods, [lookup, map, name]) in candidates {
        let in_boundaries = |code: &Option<String>| {
            code.as_deref()
                .and_then(|c| by_ons.get_key_value(c).map(|(k, _)| *k))
        };
        let matched = in_boundaries(&lookup)
            .or_else(|| in_boundaries(&map))
            .or_else(|| {
                name.as_deref()
                    .and_then(|n| by_name.get(&normalise_name(n)).copied())
            });
        if let Some(ons) = matched {
            icbs.push(Icb {
                ods_code: ods,
                ons_code: ons.to_string(),
                name: by_ons.get(ons).copied().unwrap_or_default().to_string(),
            });
        }
    }
    if icbs.is_empty() {
        return Err(SynthError::Data(format!(
            "no ICB code of {} or {} matches a boundary in {}",
            frames.label(InputKind::PracticeMap),
            frames.label(InputKind::EpcnMembers),
            footprints.path.display()
        )));
    }
    Ok(icbs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_name_matches_epcn_and_boundary_spellings() {
        assert_eq!(
            normalise_name("NHS NORTH EAST AND NORTH CUMBRIA ICB - 16C"),
            normalise_name("NHS North East and North Cumbria Integrated Care Board")
        );
        assert_eq!(
            normalise_name("NHS STAFFORDSHIRE AND STOKE-ON-TRENT ICB - 05W"),
            "NHS STAFFORDSHIRE AND STOKE ON TRENT ICB"
        );
        assert_eq!(normalise_name("Leeds - West"), "LEEDS WEST");
    }
}
