//! Which practices a run generates, and how many patients each.
//!
//! Owns the meaning of `--scale`, `--pcn`, `--icb` and `--patients`: a PCN (its member practices
//! at the extract date), an ICB (its practices by ODS parent), or England (every practice); each
//! practice at its real list size, or every list scaled so the total is exactly `--patients`
//! (largest-remainder rounding, ties to the earlier practice code). Defaults are chosen from
//! the data, not hard-coded: the PCN, or ICB, whose total list is the median.

use std::collections::BTreeMap;

use super::SynthError;
use super::frames::Reference;

/// How much of England a run covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// One Primary Care Network.
    Pcn,
    /// One Integrated Care Board.
    Icb,
    /// Every practice in England.
    England,
}

/// The practices of a run and their generated list sizes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Selection {
    /// The scale.
    pub scale: Scale,
    /// The PCN, at PCN scale.
    pub pcn: Option<String>,
    /// The ICB (ODS code), at ICB or PCN scale.
    pub icb: Option<String>,
    /// `(index into Reference::practices, patients to generate)`, in practice-code order;
    /// practices scaled to 0 patients are left out.
    pub practices: Vec<(usize, u32)>,
    /// Patients at real list sizes.
    pub listed: u64,
    /// Patients generated.
    pub patients: u64,
}

/// Choose the practices.
///
/// # Errors
/// [`SynthError::Selection`] for an unknown PCN or ICB code, an empty selection, or
/// `--patients 0`.
pub fn select(
    reference: &Reference,
    scale: Scale,
    pcn: Option<&str>,
    icb: Option<&str>,
    patients: Option<u64>,
) -> Result<Selection, SynthError> {
    if patients == Some(0) {
        return Err(SynthError::Selection(
            "--patients must be at least 1".to_string(),
        ));
    }
    let (indexes, pcn_code, icb_index) = match scale {
        Scale::England => ((0..reference.practices.len()).collect(), None, None),
        Scale::Icb => {
            let icb = match icb {
                Some(code) => find_icb(reference, code)?,
                None => median_icb(reference)?,
            };
            let indexes: Vec<usize> = reference
                .practices
                .iter()
                .enumerate()
                .filter(|(_, p)| p.icb == icb)
                .map(|(i, _)| i)
                .collect();
            (indexes, None, Some(icb))
        }
        Scale::Pcn => {
            let code = match pcn {
                Some(code) => code.trim().to_ascii_uppercase(),
                None => median_pcn(reference)?,
            };
            let indexes: Vec<usize> = reference
                .practices
                .iter()
                .enumerate()
                .filter(|(_, p)| p.pcn_code.as_deref() == Some(code.as_str()))
                .map(|(i, _)| i)
                .collect();
            if indexes.is_empty() {
                return Err(SynthError::Selection(format!(
                    "no active practice is in PCN {code} at {} (ePCN); e.g. {}",
                    reference.extract_date,
                    example_pcns(reference)
                )));
            }
            // A PCN's practices share an ICB in all but odd cases; report the commonest.
            let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
            for &i in &indexes {
                *counts.entry(reference.practices[i].icb).or_default() += 1;
            }
            let icb = counts
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(icb, _)| *icb);
            (indexes, Some(code), icb)
        }
    };
    let sizes: Vec<u32> = indexes
        .iter()
        .map(|&i| reference.practices[i].list_size)
        .collect();
    let listed: u64 = sizes.iter().map(|&s| u64::from(s)).sum();
    let generated = match patients {
        Some(total) => apportion(&sizes, total),
        None => sizes.clone(),
    };
    let practices: Vec<(usize, u32)> = indexes
        .into_iter()
        .zip(generated)
        .filter(|(_, n)| *n > 0)
        .collect();
    if practices.is_empty() {
        return Err(SynthError::Selection(
            "the selection has no practice with patients".to_string(),
        ));
    }
    Ok(Selection {
        scale,
        pcn: pcn_code,
        icb: icb_index.and_then(|i| reference.icbs.get(i).map(|icb| icb.ods_code.clone())),
        patients: practices.iter().map(|(_, n)| u64::from(*n)).sum(),
        practices,
        listed,
    })
}

/// The ICB with this ODS (`QHM`) or ONS (`E54000050`) code.
fn find_icb(reference: &Reference, code: &str) -> Result<usize, SynthError> {
    let wanted = code.trim().to_ascii_uppercase();
    reference
        .icbs
        .iter()
        .position(|icb| icb.ods_code == wanted || icb.ons_code == wanted)
        .ok_or_else(|| {
            let known: Vec<String> = reference
                .icbs
                .iter()
                .map(|i| format!("{} ({})", i.ods_code, i.ons_code))
                .collect();
            SynthError::Selection(format!(
                "unknown ICB {code}: expected an ODS or ONS code of one of {} ICBs: {}",
                known.len(),
                known.join(", ")
            ))
        })
}

/// The ICB whose total list is the median (lower median; ties by code).
fn median_icb(reference: &Reference) -> Result<usize, SynthError> {
    let mut totals: BTreeMap<usize, u64> = BTreeMap::new();
    for practice in &reference.practices {
        *totals.entry(practice.icb).or_default() += u64::from(practice.list_size);
    }
    let mut ranked: Vec<(u64, &str, usize)> = totals
        .into_iter()
        .filter_map(|(i, total)| Some((total, reference.icbs.get(i)?.ods_code.as_str(), i)))
        .collect();
    ranked.sort_unstable();
    ranked
        .get(ranked.len().saturating_sub(1) / 2)
        .map(|r| r.2)
        .ok_or_else(|| SynthError::Selection("no ICB has practices".to_string()))
}

/// The PCN whose total list is the median (lower median; ties by code).
fn median_pcn(reference: &Reference) -> Result<String, SynthError> {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for practice in &reference.practices {
        if let Some(pcn) = &practice.pcn_code {
            *totals.entry(pcn.as_str()).or_default() += u64::from(practice.list_size);
        }
    }
    let mut ranked: Vec<(u64, &str)> = totals.into_iter().map(|(p, t)| (t, p)).collect();
    ranked.sort_unstable();
    ranked
        .get(ranked.len().saturating_sub(1) / 2)
        .map(|r| r.1.to_string())
        .ok_or_else(|| SynthError::Selection("no practice is in a PCN".to_string()))
}

fn example_pcns(reference: &Reference) -> String {
    let mut codes: Vec<&str> = reference
        .practices
        .iter()
        .filter_map(|p| p.pcn_code.as_deref())
        .collect();
    codes.sort_unstable();
    codes.dedup();
    codes.iter().take(5).copied().collect::<Vec<_>>().join(", ")
}

/// Split `total` in proportion to `weights` into whole numbers that sum to `total`
/// (largest remainder; ties to the earlier index).
pub fn apportion(weights: &[u32], total: u64) -> Vec<u32> {
    let sum: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let mut out = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    let mut assigned: u64 = 0;
    for (i, &w) in weights.iter().enumerate() {
        // Exact in u128: total · w ≤ 2^64 · 2^32.
        let exact = u128::from(total) * u128::from(w);
        let whole = exact / u128::from(sum);
        let remainder = exact % u128::from(sum);
        let whole = u32::try_from(whole).unwrap_or(u32::MAX);
        assigned += u64::from(whole);
        out.push(whole);
        remainders.push((remainder, i));
    }
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let left = usize::try_from(total.saturating_sub(assigned)).unwrap_or(usize::MAX);
    for (_, i) in remainders.into_iter().take(left) {
        if let Some(n) = out.get_mut(i) {
            *n = n.saturating_add(1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_pick_practices_and_sizes() {
        let reference = crate::synth::frames::toy_reference();
        let england = select(&reference, Scale::England, None, None, Some(1000)).expect("england");
        assert_eq!(england.patients, 1000);
        assert_eq!(england.practices.len(), 8);
        let icb = select(&reference, Scale::Icb, None, Some("e54000002"), None).expect("icb");
        assert_eq!(icb.icb.as_deref(), Some("QBB"));
        assert_eq!(icb.patients, 36_000);
        let pcn = select(&reference, Scale::Pcn, Some("U00000"), None, None).expect("pcn");
        assert_eq!((pcn.icb.as_deref(), pcn.practices.len()), (Some("QAA"), 4));
        let unknown = select(&reference, Scale::Icb, None, Some("QZZ"), None);
        assert!(matches!(unknown, Err(SynthError::Selection(m)) if m.contains("unknown ICB QZZ")));
        let zero = select(&reference, Scale::England, None, None, Some(0));
        assert!(matches!(zero, Err(SynthError::Selection(_))));
    }

    #[test]
    fn apportion_sums_exactly_and_is_proportional() {
        let weights = [5000, 12000, 3000, 1];
        let out = apportion(&weights, 1000);
        assert_eq!(out.iter().map(|&n| u64::from(n)).sum::<u64>(), 1000);
        assert_eq!(out, vec![250, 600, 150, 0]);
        let out = apportion(&[1, 1, 1], 2);
        assert_eq!(out, vec![1, 1, 0]);
        assert_eq!(apportion(&[3, 4], 7), vec![3, 4]);
    }
}
