-- The five largest underserved cohorts in a PCN for one indicator.
--
-- Every cohort the indicators table breaks a PCN down by (IMD quintile, Core20, ethnic
-- group, sex, age band, segment, risk tier) whose value is significantly worse than the
-- PCN's own (its 95% interval excludes the PCN's value), ranked by its size times its gap:
-- the events (people, for a proportion) the cohort would lose or gain at the PCN's overall
-- rate, `denominator × (cohort rate − PCN rate)`. That is the shortfall for an indicator
-- where high is good (screening: people not screened) and the excess where low is good
-- (admissions). The tables do not record an indicator's polarity, so the query takes it as
-- a parameter, as written in the config. Cohorts overlap (a person is in one IMD quintile
-- and one ethnic group). Suppressed cohorts cannot be ranked and are left out; for
-- age-standardised rates (`dsr`) the size uses the crude rates.
--
-- Parameters:
--   :pcn_code   the PCN's ODS code, e.g. U35004
--   :indicator  the indicator id, e.g. cervical_screening
--   :polarity   high_is_good or low_is_good, as the indicator's `polarity` in the config,
--               e.g. high_is_good
-- Columns:
--   rank            1 = the largest
--   breakdown       what the cohort is a group of: imd_quintile, ethnic_group, …
--   cohort          the group: 1 (most deprived quintile), Asian or Asian British, …
--   denominator     people in the cohort the indicator counts (rounded to 5)
--   numerator       events or people with the outcome (rounded to 5)
--   value           the cohort's value, in the indicator's units
--   lower95         lower 95% confidence limit of value
--   upper95         upper 95% confidence limit of value
--   pcn_value       the PCN's overall value
--   gap             value - pcn_value
--   underserved     events (people, for a proportion) short of or beyond the PCN's rate,
--                   from the rounded counts
WITH pcn AS (
    SELECT value AS pcn_value, numerator / denominator AS pcn_rate
    FROM indicators
    WHERE footprint_kind = 'pcn' AND footprint_code = :pcn_code
        AND indicator = :indicator AND breakdown = 'all'
),
cohorts AS (
    SELECT
        c.breakdown,
        c.breakdown_value,
        c.denominator,
        c.numerator,
        c.value,
        c.lower95_0cl,
        c.upper95_0cl,
        pcn.pcn_value,
        CASE :polarity
            WHEN 'high_is_good' THEN c.denominator * pcn.pcn_rate - c.numerator
            WHEN 'low_is_good' THEN c.numerator - c.denominator * pcn.pcn_rate
        END AS underserved
    FROM indicators c
    CROSS JOIN pcn
    WHERE c.footprint_kind = 'pcn' AND c.footprint_code = :pcn_code
        AND c.indicator = :indicator
        AND c.breakdown IN ('imd_quintile', 'core20', 'ethnic_group', 'sex', 'age_band',
            'segment', 'risk_tier')
        AND NOT c.suppressed
)
SELECT
    -- Ties (Core20 is IMD quintile 1 by another name) in a fixed order; polars' OVER takes
    -- one direction only, hence the negated key.
    row_number() OVER (ORDER BY -underserved, breakdown, breakdown_value) AS rank,
    breakdown,
    breakdown_value AS cohort,
    denominator,
    numerator,
    ROUND(value, 2) AS value,
    ROUND(lower95_0cl, 2) AS lower95,
    ROUND(upper95_0cl, 2) AS upper95,
    ROUND(pcn_value, 2) AS pcn_value,
    ROUND(value - pcn_value, 2) AS gap,
    ROUND(underserved, 1) AS underserved
FROM cohorts
WHERE underserved > 0 AND (lower95_0cl > pcn_value OR upper95_0cl < pcn_value)
ORDER BY rank
LIMIT 5;
