-- The LSOAs attributed to a PCN, with their deprivation, most deprived first.
--
-- The neighbourhoods (LSOAs) a PCN is responsible for, as the attribute stage assigned
-- them from where its registered patients live (`footprint_weights`, `footprint_kind =
-- 'pcn'`), with each LSOA's IMD score, rank decile and quintile and whether it is in the
-- Core20: the list to map, or to match against local services. The deprivation comes from
-- the LSOA's index values on the restricted `patients_enriched` table, as no publishable
-- table holds it per LSOA; the result holds only published index values and counts of
-- residents, which are rounded to 5 and null from 1 to 7 as in the publishable tables.
--
-- Parameters:
--   :pcn_code  the PCN's ODS code, e.g. U35004
-- Columns:
--   lsoa_code     the LSOA's ONS code
--   imd_score     its IMD score (higher: more deprived; 3 decimals, as published)
--   imd_decile    its national IMD decile (1 = most deprived)
--   imd_quintile  its national IMD quintile (1 = most deprived)
--   core20        in England's most deprived 20% of LSOAs
--   method        how it was attributed: registered_plurality, registered_share, …
--   weight        the share of the LSOA counted in the PCN (1 unless shared)
--   registered    the LSOA's residents registered with the PCN (rounded to 5; null for 1 to 7)
--   share         their share of the LSOA's registered residents
WITH attributed AS (
    SELECT lsoa_code, method, weight, registered, share
    FROM footprint_weights
    WHERE footprint_kind = 'pcn' AND footprint_code = :pcn_code
),
lsoa_deprivation AS (
    -- A join, not `WHERE lsoa_code IN (SELECT …)`: polars runs the join far faster.
    SELECT
        p.lsoa_code,
        min(p.imd_score) AS imd_score,
        min(p.imd_decile) AS imd_decile,
        min(p.imd_quintile) AS imd_quintile,
        max(CASE WHEN p.core20 THEN 1 ELSE 0 END) = 1 AS core20
    FROM patients_enriched p
    JOIN attributed a ON p.lsoa_code = a.lsoa_code
    GROUP BY p.lsoa_code
)
SELECT
    a.lsoa_code,
    ROUND(d.imd_score, 3) AS imd_score,
    d.imd_decile,
    d.imd_quintile,
    d.core20,
    a.method,
    ROUND(a.weight, 3) AS weight,
    CASE
        WHEN a.registered BETWEEN 1 AND 7 THEN NULL
        ELSE 5 * ROUND(a.registered / 5.0, 0)
    END AS registered,
    ROUND(a.share, 3) AS share
FROM attributed a
LEFT JOIN lsoa_deprivation d ON a.lsoa_code = d.lsoa_code
ORDER BY d.imd_score DESC NULLS LAST, a.lsoa_code;
