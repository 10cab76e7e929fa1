-- Practices of an ICB whose value for an indicator is outside the 99.8% funnel limits.
--
-- A practice is outside when its 99.8% confidence interval excludes England's value (the
-- interval form of the funnel-plot test: about 3 standard errors, so roughly 1 practice in
-- 500 would be outside by chance). Practices are those of the ICB in this run's population
-- (`area_deprivation`, practice → PCN → ICB); England is the run's `E92000001` row, which is
-- all of England only in a national run or for indicators from national practice figures
-- (such as QOF prevalence). Furthest outside first. A suppressed practice has no interval
-- and is not listed. For the levels in `[gradient] levels`, `inequality.funnel_significance`
-- gives the same test against the level's average.
--
-- Parameters:
--   :icb_code   the ICB's ODS code, e.g. QHG
--   :indicator  the indicator id, e.g. smoking
-- Columns:
--   practice_code    the practice's ODS code
--   pcn_code         its PCN
--   indicator_name   the indicator
--   numerator        events or people with the outcome (rounded to 5)
--   denominator      people counted (rounded to 5)
--   value            the practice's value, in the indicator's units
--   lower99_8        lower 99.8% confidence limit of value
--   upper99_8        upper 99.8% confidence limit of value
--   england_value    England's value
--   position         above or below the funnel (above: higher than England)
--   distance         how far the nearer limit is from England's value, in the indicator's units
WITH practices AS (
    SELECT p.area_code AS practice_code, p.parent_code AS pcn_code
    FROM area_deprivation p
    JOIN area_deprivation pcn ON pcn.area_code = p.parent_code
    WHERE p.area_level = 'practice' AND pcn.area_level = 'pcn' AND pcn.parent_code = :icb_code
),
england AS (
    SELECT value AS england_value
    FROM indicators
    WHERE footprint_kind = 'england' AND indicator = :indicator AND breakdown = 'all'
),
practice_values AS (
    SELECT
        i.footprint_code AS practice_code,
        i.indicator_name,
        i.numerator,
        i.denominator,
        i.value,
        i.lower99_8cl,
        i.upper99_8cl,
        england.england_value
    FROM indicators i
    CROSS JOIN england
    WHERE i.footprint_kind = 'practice' AND i.indicator = :indicator AND i.breakdown = 'all'
        AND NOT i.suppressed
)
SELECT
    v.practice_code,
    practices.pcn_code,
    v.indicator_name,
    v.numerator,
    v.denominator,
    ROUND(v.value, 2) AS value,
    ROUND(v.lower99_8cl, 2) AS lower99_8,
    ROUND(v.upper99_8cl, 2) AS upper99_8,
    ROUND(v.england_value, 2) AS england_value,
    CASE WHEN v.lower99_8cl > v.england_value THEN 'above' ELSE 'below' END AS position,
    ROUND(CASE
        WHEN v.lower99_8cl > v.england_value THEN v.lower99_8cl - v.england_value
        ELSE v.england_value - v.upper99_8cl
    END, 2) AS distance
FROM practice_values v
JOIN practices ON v.practice_code = practices.practice_code
WHERE v.lower99_8cl > v.england_value OR v.upper99_8cl < v.england_value
ORDER BY distance DESC, practice_code;
