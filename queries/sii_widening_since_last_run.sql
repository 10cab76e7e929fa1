-- PCNs whose deprivation gradient for an indicator is significant and wider than last run.
--
-- Compares this run's slope index of inequality (SII) for each PCN with the run given by
-- `--compare` (its tables are `prev_*`): the PCNs whose SII is significant now (95% limits
-- exclude 0) and further from 0 than before, in the same direction. The tables do not record
-- whether high values are good, so "wider" means a bigger gap between the most and the least
-- deprived whichever way it runs; the sign of `sii` says which end is higher (negative:
-- higher among the more deprived). `beyond_limits` is true when last run's SII lies outside
-- this run's 95% limits, a rough sign that the change is more than noise. Largest widening
-- first. Run with `--compare PREVIOUS_RUN`.
--
-- Parameters:
--   :indicator  the indicator id, as in the config's [[indicators]], e.g. smoking
-- Columns:
--   pcn_code         the PCN's ODS code
--   pcn_name         its name (null when its people are not in this run's population)
--   indicator_name   the indicator
--   value            the PCN's overall value this run
--   prev_value       last run's
--   sii              this run's SII (least minus most deprived, the indicator's units)
--   sii_lower95      lower 95% limit of sii
--   sii_upper95      upper 95% limit of sii
--   prev_sii         last run's SII
--   prev_significant whether last run's SII was significant
--   widened_by       how much further from 0 the SII is (|sii| - |prev_sii|)
--   beyond_limits    last run's SII is outside this run's 95% limits
WITH this_run AS (
    SELECT footprint_code, indicator_name, value, sii, sii_lower95_0cl, sii_upper95_0cl
    FROM inequality
    WHERE footprint_kind = 'pcn' AND indicator = :indicator
        AND sii_significant AND sii IS NOT NULL
),
last_run AS (
    SELECT footprint_code, value AS prev_value, sii AS prev_sii,
        sii_significant AS prev_significant
    FROM prev_inequality
    WHERE footprint_kind = 'pcn' AND indicator = :indicator AND sii IS NOT NULL
),
names AS (
    SELECT area_code AS footprint_code, area_name
    FROM area_deprivation
    WHERE area_level = 'pcn'
)
SELECT
    this_run.footprint_code AS pcn_code,
    names.area_name AS pcn_name,
    this_run.indicator_name,
    ROUND(this_run.value, 2) AS value,
    ROUND(last_run.prev_value, 2) AS prev_value,
    ROUND(this_run.sii, 2) AS sii,
    ROUND(this_run.sii_lower95_0cl, 2) AS sii_lower95,
    ROUND(this_run.sii_upper95_0cl, 2) AS sii_upper95,
    ROUND(last_run.prev_sii, 2) AS prev_sii,
    last_run.prev_significant,
    ROUND(abs(this_run.sii) - abs(last_run.prev_sii), 2) AS widened_by,
    last_run.prev_sii < this_run.sii_lower95_0cl OR last_run.prev_sii > this_run.sii_upper95_0cl
        AS beyond_limits
FROM this_run
JOIN last_run ON this_run.footprint_code = last_run.footprint_code
LEFT JOIN names ON this_run.footprint_code = names.footprint_code
WHERE abs(this_run.sii) > abs(last_run.prev_sii) AND sign(this_run.sii) = sign(last_run.prev_sii)
ORDER BY abs(this_run.sii) - abs(last_run.prev_sii) DESC, pcn_code;
