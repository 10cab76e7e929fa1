//! Is a deprivation gradient straight? A curvature test for the SII's linear fit.
//!
//! The SII summarises a gradient by a straight line across the relative rank of deprivation; a
//! strongly curved gradient (a step at the most deprived decile, say) is then summarised badly.
//! This fits value = a + b·r + c·r² by weighted least squares, with weights 1/SE² of each
//! quantile's value, and reports the squared term's coefficient and its standard error. The
//! pipeline flags a gradient as non-linear when |c / se(c)| exceeds the 95% z value. This is a
//! healthgap check, not part of the reference methods.

use super::{Argument, StatsError};

/// The fitted curvature of a gradient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Curvature {
    /// Coefficient of the squared relative rank.
    pub coefficient: f64,
    /// Its standard error.
    pub standard_error: f64,
}

impl Curvature {
    /// `coefficient / standard_error`.
    pub fn z(&self) -> f64 {
        self.coefficient / self.standard_error
    }
}

/// Relative rank of each quantile: the cumulative population share at its midpoint, with the
/// quantiles ordered as given (most deprived first), as the SII uses.
///
/// # Examples
/// ```
/// use healthgap::stats::linearity::relative_rank;
/// assert_eq!(relative_rank(&[1.0, 1.0, 2.0]), [0.125, 0.375, 0.75]);
/// ```
pub fn relative_rank(population: &[f64]) -> Vec<f64> {
    let total: f64 = population.iter().sum();
    let mut before = 0.0;
    population
        .iter()
        .map(|&p| {
            let mid = (before + p / 2.0) / total;
            before += p;
            mid
        })
        .collect()
}

/// Fit value = a + b·r + c·r² with weights 1/SE² and return c with its standard error.
///
/// # Errors
/// - slices of different lengths, or fewer than 4 points: "a curvature test needs at least 4
///   quantiles"
/// - a non-positive or missing SE: "standard errors must be greater than zero"
/// - collinear ranks (all the same): "the relative ranks do not vary"
///
/// # Examples
/// ```
/// use healthgap::stats::linearity::curvature;
/// let rank = [0.1, 0.3, 0.5, 0.7, 0.9];
/// // A straight line: no curvature.
/// let straight = curvature(&rank, &[1.0, 2.0, 3.0, 4.0, 5.0], &[0.1; 5])?;
/// assert!(straight.coefficient.abs() < 1e-9);
/// // A parabola value = r²: curvature 1.
/// let bent = curvature(&rank, &rank.map(|r| r * r), &[0.1; 5])?;
/// assert!((bent.coefficient - 1.0).abs() < 1e-9);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn curvature(rank: &[f64], value: &[f64], se: &[f64]) -> Result<Curvature, StatsError> {
    if rank.len() != value.len() || rank.len() != se.len() || rank.len() < 4 {
        return Err(StatsError::general(
            "a curvature test needs at least 4 quantiles",
        ));
    }
    if se.iter().any(|&s| s.is_nan() || s <= 0.0) {
        return Err(StatsError::new(
            Argument::Se,
            "standard errors must be greater than zero",
        ));
    }
    // Normal equations XᵀWX β = XᵀWy for X = [1, r, r²].
    let mut xtwx = [[0.0f64; 3]; 3];
    let mut xtwy = [0.0f64; 3];
    for ((&r, &y), &s) in rank.iter().zip(value).zip(se) {
        let w = 1.0 / (s * s);
        let x = [1.0, r, r * r];
        for (i, xi) in x.iter().enumerate() {
            for (j, xj) in x.iter().enumerate() {
                if let Some(cell) = xtwx.get_mut(i).and_then(|row| row.get_mut(j)) {
                    *cell += w * xi * xj;
                }
            }
            if let Some(cell) = xtwy.get_mut(i) {
                *cell += w * xi * y;
            }
        }
    }
    let inverse =
        invert3(&xtwx).ok_or_else(|| StatsError::general("the relative ranks do not vary"))?;
    let coefficient: f64 = inverse[2].iter().zip(&xtwy).map(|(a, b)| a * b).sum();
    // With weights 1/SE² the coefficients' covariance is (XᵀWX)⁻¹.
    let standard_error = inverse[2][2].max(0.0).sqrt();
    Ok(Curvature {
        coefficient,
        standard_error,
    })
}

/// Inverse of a 3×3 matrix by cofactors, `None` when (nearly) singular.
fn invert3(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let [[a, b, c], [d, e, f], [g, h, i]] = *m;
    let co = [
        [e * i - f * h, -(d * i - f * g), d * h - e * g],
        [-(b * i - c * h), a * i - c * g, -(a * h - b * g)],
        [b * f - c * e, -(a * f - c * d), a * e - b * d],
    ];
    let det = a * co[0][0] + b * co[0][1] + c * co[0][2];
    let scale = m.iter().flatten().fold(0.0f64, |acc, v| acc.max(v.abs()));
    if !det.is_finite() || det.abs() <= 1e-12 * scale.powi(3) {
        return None;
    }
    let mut inverse = [[0.0; 3]; 3];
    for (r, row) in inverse.iter_mut().enumerate() {
        for (col, cell) in row.iter_mut().enumerate() {
            // The inverse is the transposed cofactor matrix over the determinant.
            *cell = co[col][r] / det;
        }
    }
    Some(inverse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_at_the_most_deprived_end_is_curved() {
        let rank = relative_rank(&[1.0; 10]);
        let value: Vec<f64> = (0..10).map(|i| if i == 0 { 40.0 } else { 20.0 }).collect();
        let fit = curvature(&rank, &value, &[0.5; 10]).expect("fit");
        assert!(fit.z().abs() > 5.0, "{fit:?}");
    }

    #[test]
    fn noise_around_a_line_is_not_curved() {
        let rank = relative_rank(&[1.0; 10]);
        let noise = [0.1, -0.2, 0.05, 0.15, -0.1, 0.0, 0.2, -0.15, 0.1, -0.05];
        let value: Vec<f64> = rank
            .iter()
            .zip(noise)
            .map(|(r, e)| 30.0 - 10.0 * r + e)
            .collect();
        let fit = curvature(&rank, &value, &[0.5; 10]).expect("fit");
        assert!(fit.z().abs() < 1.96, "{fit:?}");
    }

    #[test]
    fn too_few_points_and_bad_se_are_errors() {
        assert!(curvature(&[0.1, 0.5, 0.9], &[1.0, 2.0, 3.0], &[1.0; 3]).is_err());
        assert!(curvature(&[0.1, 0.3, 0.5, 0.9], &[1.0; 4], &[1.0, 0.0, 1.0, 1.0]).is_err());
        assert!(curvature(&[0.5; 4], &[1.0, 2.0, 3.0, 4.0], &[1.0; 4]).is_err());
    }
}
