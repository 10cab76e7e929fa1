-- The ten steepest deprivation gradients in an ICB: the ICB and its PCNs, every indicator.
--
-- Ranks each indicator × footprint (the ICB itself and each of its PCNs) by the size of its
-- slope index of inequality relative to the footprint's own value, `|SII| ÷ value`, so rates
-- per 1,000, per 100,000 and percentages compare: 50% means the fitted gap between the most
-- and least deprived ends is half the footprint's average. Only significant SIIs (95% limits
-- exclude 0) are ranked; footprints with fewer than 5 populated IMD deciles have no SII.
-- The sign of `sii` says which end is higher (negative: higher among the more deprived).
--
-- Parameters:
--   :icb_code  the ICB's ODS code, e.g. QHG
-- Columns:
--   rank              1 = the steepest
--   footprint_kind    icb or pcn
--   footprint_code    its ODS code
--   footprint_name    its name
--   indicator         the indicator id
--   indicator_name    what it measures
--   value             the footprint's overall value
--   sii               slope index of inequality (least minus most deprived, indicator's units)
--   sii_lower95       lower 95% limit of sii
--   sii_upper95       upper 95% limit of sii
--   rii               relative index of inequality (least ÷ most deprived)
--   relative_sii      |sii| as a percentage of value
--   q1_value          value in IMD quintile 1 (most deprived)
--   q5_value          value in IMD quintile 5 (least deprived)
--   flag_non_linear   the gradient is significantly curved: read the SII with care
WITH footprints AS (
    SELECT area_level AS footprint_kind, area_code AS footprint_code, area_name
    FROM area_deprivation
    WHERE (area_level = 'icb' AND area_code = :icb_code)
        OR (area_level = 'pcn' AND parent_code = :icb_code)
),
gradients AS (
    SELECT
        i.footprint_kind,
        i.footprint_code,
        f.area_name,
        i.indicator,
        i.indicator_name,
        i.value,
        i.sii,
        i.sii_lower95_0cl,
        i.sii_upper95_0cl,
        i.rii,
        100 * abs(i.sii) / i.value AS relative_sii,
        i.q1_value,
        i.q5_value,
        i.flag_non_linear
    FROM inequality i
    JOIN footprints f
        ON i.footprint_kind = f.footprint_kind AND i.footprint_code = f.footprint_code
    WHERE i.sii_significant AND i.value > 0
)
SELECT
    -- Ties (an ICB of one PCN has the PCN's gradients) in a fixed order; polars' OVER takes
    -- one direction only, hence the negated key.
    row_number() OVER (
        ORDER BY -relative_sii, footprint_kind, footprint_code, indicator
    ) AS rank,
    footprint_kind,
    footprint_code,
    area_name AS footprint_name,
    indicator,
    indicator_name,
    ROUND(value, 2) AS value,
    ROUND(sii, 2) AS sii,
    ROUND(sii_lower95_0cl, 2) AS sii_lower95,
    ROUND(sii_upper95_0cl, 2) AS sii_upper95,
    ROUND(rii, 2) AS rii,
    ROUND(relative_sii, 1) AS relative_sii,
    ROUND(q1_value, 2) AS q1_value,
    ROUND(q5_value, 2) AS q5_value,
    flag_non_linear
FROM gradients
ORDER BY rank
LIMIT 10;
