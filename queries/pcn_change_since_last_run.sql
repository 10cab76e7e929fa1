-- How each of a PCN's indicators changed since the last run.
--
-- The PCN's overall value for every indicator in this run and in the run given by
-- `--compare` (its tables are `prev_*`), the change, and whether the two 95% confidence
-- intervals are apart (a conservative test: intervals that do not overlap mean a significant
-- change; overlapping ones can still hide one). Also the slope index of inequality (SII)
-- in both runs where the PCN's level is in `[gradient] levels`, so a change in the average
-- can be read beside a change in the gap. Indicators missing from one run are left out.
-- Run with `--compare PREVIOUS_RUN`.
--
-- Parameters:
--   :pcn_code  the PCN's ODS code, e.g. U35004
-- Columns:
--   indicator        the indicator id
--   indicator_name   what it measures
--   prev_value       last run's value
--   value            this run's value
--   change           value - prev_value
--   change_percent   the change as a percentage of prev_value
--   intervals_apart  the 95% intervals do not overlap: a significant change
--   prev_sii         last run's SII (null if not computed)
--   sii              this run's SII (least minus most deprived; negative: higher among the
--                    more deprived)
--   suppressed       either run's figure was suppressed
WITH this_run AS (
    SELECT indicator, indicator_name, value, lower95_0cl, upper95_0cl, suppressed
    FROM indicators
    WHERE footprint_kind = 'pcn' AND footprint_code = :pcn_code AND breakdown = 'all'
),
last_run AS (
    SELECT indicator, value, lower95_0cl, upper95_0cl, suppressed
    FROM prev_indicators
    WHERE footprint_kind = 'pcn' AND footprint_code = :pcn_code AND breakdown = 'all'
),
gradient AS (
    SELECT indicator, sii
    FROM inequality
    WHERE footprint_kind = 'pcn' AND footprint_code = :pcn_code
),
prev_gradient AS (
    SELECT indicator, sii
    FROM prev_inequality
    WHERE footprint_kind = 'pcn' AND footprint_code = :pcn_code
)
SELECT
    t.indicator,
    t.indicator_name,
    ROUND(l.value, 2) AS prev_value,
    ROUND(t.value, 2) AS value,
    ROUND(t.value - l.value, 2) AS change,
    ROUND(100 * (t.value - l.value) / l.value, 1) AS change_percent,
    t.lower95_0cl > l.upper95_0cl OR t.upper95_0cl < l.lower95_0cl AS intervals_apart,
    ROUND(pg.sii, 2) AS prev_sii,
    ROUND(g.sii, 2) AS sii,
    t.suppressed OR l.suppressed AS suppressed
FROM this_run t
JOIN last_run l ON t.indicator = l.indicator
LEFT JOIN gradient g ON t.indicator = g.indicator
LEFT JOIN prev_gradient pg ON t.indicator = pg.indicator
ORDER BY t.indicator;
