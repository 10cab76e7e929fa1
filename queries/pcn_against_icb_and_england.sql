-- Every indicator for one PCN beside its ICB and England.
--
-- The PCN's overall value for each indicator with its 95% confidence interval, its ICB's
-- value and England's, and whether the PCN is significantly higher or lower than England
-- (England's value outside the PCN's 95% interval) — the first table of a PCN's inequality
-- profile. The ICB is the PCN's parent in `area_deprivation`. England is the run's
-- `E92000001` row: all of England only in a national run or for indicators from national
-- practice figures. Suppressed values stay null with `suppressed` true.
--
-- Parameters:
--   :pcn_code  the PCN's ODS code, e.g. U35004
-- Columns:
--   indicator        the indicator id
--   indicator_name   what it measures
--   indicator_type   proportion, rate or dsr
--   numerator        the PCN's events or people with the outcome (rounded to 5)
--   denominator      the PCN's people counted (rounded to 5)
--   pcn_value        the PCN's value, in the indicator's units
--   pcn_lower95      lower 95% confidence limit of pcn_value
--   pcn_upper95      upper 95% confidence limit of pcn_value
--   icb_value        the PCN's ICB
--   england_value    England
--   against_england  higher, lower or similar (95% interval overlaps England's value)
--   suppressed       the PCN's figure was suppressed
WITH pcn AS (
    SELECT area_code AS pcn_code, parent_code AS icb_code
    FROM area_deprivation
    WHERE area_level = 'pcn' AND area_code = :pcn_code
),
overall AS (
    SELECT indicator, indicator_name, indicator_type, footprint_kind, footprint_code,
        numerator, denominator, value, lower95_0cl, upper95_0cl, suppressed
    FROM indicators
    WHERE breakdown = 'all' AND footprint_kind IN ('pcn', 'icb', 'england')
),
this_pcn AS (
    SELECT overall.*, pcn.icb_code
    FROM overall
    JOIN pcn ON overall.footprint_code = pcn.pcn_code
    WHERE overall.footprint_kind = 'pcn'
),
icb AS (
    SELECT indicator, footprint_code AS icb_code, value AS icb_value
    FROM overall
    WHERE footprint_kind = 'icb'
),
england AS (
    SELECT indicator, value AS england_value
    FROM overall
    WHERE footprint_kind = 'england'
)
SELECT
    p.indicator,
    p.indicator_name,
    p.indicator_type,
    p.numerator,
    p.denominator,
    ROUND(p.value, 2) AS pcn_value,
    ROUND(p.lower95_0cl, 2) AS pcn_lower95,
    ROUND(p.upper95_0cl, 2) AS pcn_upper95,
    ROUND(icb.icb_value, 2) AS icb_value,
    ROUND(england.england_value, 2) AS england_value,
    CASE
        WHEN p.lower95_0cl > england.england_value THEN 'higher'
        WHEN p.upper95_0cl < england.england_value THEN 'lower'
        WHEN p.value IS NOT NULL AND england.england_value IS NOT NULL THEN 'similar'
    END AS against_england,
    p.suppressed
FROM this_pcn p
LEFT JOIN icb ON p.indicator = icb.indicator AND p.icb_code = icb.icb_code
LEFT JOIN england ON p.indicator = england.indicator
ORDER BY p.indicator;
