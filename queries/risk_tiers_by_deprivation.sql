-- The risk-tier pyramid of a PCN by national IMD quintile.
--
-- People in each risk tier (1 very high … 4 low) by IMD quintile, with a last row for all
-- tiers: if the most deprived are over-represented at the top of the pyramid, `q1_percent`
-- rises from the bottom row to the top. Counts are sums of published cells of the segments
-- table (each rounded to 5), from the segmentation that loses the fewest people to
-- suppression; suppressed cells (1 to 7 people each) count as nothing and
-- `suppressed_cells` says how many there were.
--
-- Parameters:
--   :pcn_code  the PCN's ODS code, e.g. U35004
-- Columns:
--   risk_tier         the tier, or `all tiers`
--   people            people in the tier (sum of the published cells)
--   imd_q1            of whom in IMD quintile 1 (most deprived)
--   imd_q2            quintile 2
--   imd_q3            quintile 3
--   imd_q4            quintile 4
--   imd_q5            quintile 5 (least deprived)
--   imd_unknown       no deprivation match (Welsh or unmatched LSOAs)
--   q1_percent        imd_q1 as a percentage of the people with a quintile
--   q5_percent        imd_q5 as a percentage of the people with a quintile
--   suppressed_cells  cells of the tier with a suppressed count
WITH pcn_cells AS (
    SELECT segmentation, risk_tier, imd_quintile, population, suppressed
    FROM segments
    WHERE footprint_kind = 'pcn' AND footprint_code = :pcn_code
),
fullest AS (
    SELECT segmentation, sum(population) AS published
    FROM pcn_cells
    GROUP BY segmentation
    ORDER BY published DESC, segmentation
    LIMIT 1
),
cells AS (
    SELECT c.risk_tier, c.imd_quintile, c.population, c.suppressed
    FROM pcn_cells c
    JOIN fullest f ON c.segmentation = f.segmentation
),
tiers AS (
    SELECT risk_tier, imd_quintile, population, suppressed FROM cells
    UNION ALL
    SELECT 'all tiers' AS risk_tier, imd_quintile, population, suppressed FROM cells
),
by_tier AS (
    SELECT
        risk_tier,
        COALESCE(sum(population), 0) AS people,
        COALESCE(sum(CASE WHEN imd_quintile = 1 THEN population END), 0) AS imd_q1,
        COALESCE(sum(CASE WHEN imd_quintile = 2 THEN population END), 0) AS imd_q2,
        COALESCE(sum(CASE WHEN imd_quintile = 3 THEN population END), 0) AS imd_q3,
        COALESCE(sum(CASE WHEN imd_quintile = 4 THEN population END), 0) AS imd_q4,
        COALESCE(sum(CASE WHEN imd_quintile = 5 THEN population END), 0) AS imd_q5,
        COALESCE(sum(CASE WHEN imd_quintile IS NULL THEN population END), 0) AS imd_unknown,
        sum(CASE WHEN suppressed THEN 1 ELSE 0 END) AS suppressed_cells
    FROM tiers
    GROUP BY risk_tier
)
SELECT
    risk_tier,
    people,
    imd_q1,
    imd_q2,
    imd_q3,
    imd_q4,
    imd_q5,
    imd_unknown,
    ROUND(100 * imd_q1 / NULLIF(people - imd_unknown, 0), 1) AS q1_percent,
    ROUND(100 * imd_q5 / NULLIF(people - imd_unknown, 0), 1) AS q5_percent,
    suppressed_cells
FROM by_tier
ORDER BY risk_tier = 'all tiers', risk_tier;
