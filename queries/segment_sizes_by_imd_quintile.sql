-- People in each population segment of a footprint, by national IMD quintile.
--
-- The segments table crossed with deprivation: for one segmentation (Bridges to Health, or
-- Core20PLUS5) and one footprint (a PCN, an ICB or England), how many people are in each
-- segment and how they spread across IMD quintiles, with the share living in quintile 1
-- (most deprived) to compare with the footprint's own. Sums are of published cells
-- (segment × risk tier × quintile × age band × sex), each rounded to 5, so they may differ
-- from the registered population; suppressed cells (1 to 7 people each) count as nothing
-- (a segment whose every cell is suppressed shows 0 people) and `suppressed_cells` says how
-- many there were.
--
-- Parameters:
--   :footprint_code  a PCN or ICB ODS code, or E92000001 for England, e.g. U35004
--   :segmentation    the segmentation's name in the config, e.g. bridges_to_health
-- Columns:
--   segment           the segment
--   people            people in the segment (sum of the published cells)
--   imd_q1            of whom in IMD quintile 1 (most deprived)
--   imd_q2            quintile 2
--   imd_q3            quintile 3
--   imd_q4            quintile 4
--   imd_q5            quintile 5 (least deprived)
--   imd_unknown       no deprivation match (Welsh or unmatched LSOAs)
--   q1_percent        imd_q1 as a percentage of the people with a quintile
--   suppressed_cells  cells of the segment with a suppressed count
WITH cells AS (
    SELECT segment, imd_quintile, population, suppressed
    FROM segments
    WHERE footprint_code = :footprint_code AND segmentation = :segmentation
),
by_segment AS (
    SELECT
        segment,
        sum(population) AS people,
        sum(CASE WHEN imd_quintile = 1 THEN population END) AS imd_q1,
        sum(CASE WHEN imd_quintile = 2 THEN population END) AS imd_q2,
        sum(CASE WHEN imd_quintile = 3 THEN population END) AS imd_q3,
        sum(CASE WHEN imd_quintile = 4 THEN population END) AS imd_q4,
        sum(CASE WHEN imd_quintile = 5 THEN population END) AS imd_q5,
        sum(CASE WHEN imd_quintile IS NULL THEN population END) AS imd_unknown,
        sum(CASE WHEN suppressed THEN 1 ELSE 0 END) AS suppressed_cells
    FROM cells
    GROUP BY segment
)
SELECT
    segment,
    COALESCE(people, 0) AS people,
    COALESCE(imd_q1, 0) AS imd_q1,
    COALESCE(imd_q2, 0) AS imd_q2,
    COALESCE(imd_q3, 0) AS imd_q3,
    COALESCE(imd_q4, 0) AS imd_q4,
    COALESCE(imd_q5, 0) AS imd_q5,
    COALESCE(imd_unknown, 0) AS imd_unknown,
    ROUND(100 * COALESCE(imd_q1, 0) / (people - COALESCE(imd_unknown, 0)), 1) AS q1_percent,
    suppressed_cells
FROM by_segment
ORDER BY segment;
