-- One indicator for a PCN by ethnic group (or another breakdown), against the PCN's value.
--
-- The PCN's people split by ethnic group, sex, age band, segment, risk tier, Core20 or IMD
-- quintile or decile: each group's value with its 95% confidence interval and whether it is
-- significantly higher or lower than the PCN as a whole (the PCN's value outside the
-- group's interval). `Unknown` collects the people with no value for the breakdown (no
-- deprivation match, for the IMD breakdowns); ethnicity not recorded is `Not stated`.
-- Suppressed groups keep their row, with null counts and values and `suppressed` true.
--
-- Parameters:
--   :pcn_code   the PCN's ODS code, e.g. U35004
--   :indicator  the indicator id, e.g. cervical_screening
--   :breakdown  ethnic_group, sex, age_band, segment, risk_tier, core20, imd_quintile or
--               imd_decile, e.g. ethnic_group
-- Columns:
--   group_name      the group: White, Asian or Asian British, …
--   numerator       events or people with the outcome (rounded to 5)
--   denominator     people counted (rounded to 5)
--   value           the group's value, in the indicator's units
--   lower95         lower 95% confidence limit of value
--   upper95         upper 95% confidence limit of value
--   pcn_value       the PCN's overall value
--   against_pcn     higher, lower or similar (interval includes the PCN's value)
--   suppressed      the group's count was suppressed
WITH pcn AS (
    SELECT value AS pcn_value
    FROM indicators
    WHERE footprint_kind = 'pcn' AND footprint_code = :pcn_code
        AND indicator = :indicator AND breakdown = 'all'
)
SELECT
    g.breakdown_value AS group_name,
    g.numerator,
    g.denominator,
    ROUND(g.value, 2) AS value,
    ROUND(g.lower95_0cl, 2) AS lower95,
    ROUND(g.upper95_0cl, 2) AS upper95,
    ROUND(pcn.pcn_value, 2) AS pcn_value,
    CASE
        WHEN g.lower95_0cl > pcn.pcn_value THEN 'higher'
        WHEN g.upper95_0cl < pcn.pcn_value THEN 'lower'
        WHEN g.value IS NOT NULL THEN 'similar'
    END AS against_pcn,
    g.suppressed
FROM indicators g
CROSS JOIN pcn
WHERE g.footprint_kind = 'pcn' AND g.footprint_code = :pcn_code
    AND g.indicator = :indicator AND g.breakdown = :breakdown
-- Numbers and age bands in numeric order (2 before 10, 5-9 before 10-14), names by name.
ORDER BY TRY_CAST(rtrim(split_part(g.breakdown_value, '-', 1), '+') AS INT) NULLS LAST,
    g.breakdown_value;
