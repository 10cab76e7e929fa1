-- Core20 against everyone else in a PCN, for every indicator.
--
-- For each indicator, the value among the PCN's people living in Core20 LSOAs (England's
-- most deprived 20%) beside the value among the rest, the absolute and relative gap, and
-- whether the two 95% confidence intervals are apart (a conservative test of a real
-- difference): the Core20 part of a Core20PLUS5 report. The tables do not record whether
-- high values are good, so the sign of `gap` is read with the indicator: a positive gap
-- in screening favours Core20, in admissions it is an excess. Suppressed groups keep their
-- row with null values and `suppressed` true; the `Unknown` group (no deprivation match) is
-- left out.
--
-- Parameters:
--   :pcn_code  the PCN's ODS code, e.g. U35004
-- Columns:
--   indicator          the indicator id
--   indicator_name     what it measures
--   core20_people      people counted in Core20 LSOAs (rounded to 5)
--   core20_value       the value among them
--   core20_lower95     lower 95% confidence limit of core20_value
--   core20_upper95     upper 95% confidence limit of core20_value
--   rest_value         the value among the PCN's other people
--   rest_lower95       lower 95% confidence limit of rest_value
--   rest_upper95       upper 95% confidence limit of rest_value
--   gap                core20_value - rest_value
--   ratio              core20_value ÷ rest_value
--   intervals_apart    the 95% intervals do not overlap
--   suppressed         either group's count was suppressed
WITH groups AS (
    SELECT indicator, indicator_name, breakdown_value, denominator, value, lower95_0cl,
        upper95_0cl, suppressed
    FROM indicators
    WHERE footprint_kind = 'pcn' AND footprint_code = :pcn_code AND breakdown = 'core20'
),
core20 AS (
    SELECT * FROM groups WHERE breakdown_value = 'Core20'
),
rest AS (
    SELECT * FROM groups WHERE breakdown_value = 'Not Core20'
)
SELECT
    c.indicator,
    c.indicator_name,
    c.denominator AS core20_people,
    ROUND(c.value, 2) AS core20_value,
    ROUND(c.lower95_0cl, 2) AS core20_lower95,
    ROUND(c.upper95_0cl, 2) AS core20_upper95,
    ROUND(r.value, 2) AS rest_value,
    ROUND(r.lower95_0cl, 2) AS rest_lower95,
    ROUND(r.upper95_0cl, 2) AS rest_upper95,
    ROUND(c.value - r.value, 2) AS gap,
    ROUND(c.value / NULLIF(r.value, 0), 2) AS ratio,
    c.lower95_0cl > r.upper95_0cl OR c.upper95_0cl < r.lower95_0cl AS intervals_apart,
    c.suppressed OR r.suppressed AS suppressed
FROM core20 c
JOIN rest r ON c.indicator = r.indicator
ORDER BY c.indicator;
