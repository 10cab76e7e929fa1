-- Core20 share of each PCN in an ICB, most deprived first.
--
-- The share of each PCN's registered people who live in England's most deprived 20% of
-- LSOAs (IMD quintile 1, the Core20 of Core20PLUS5), ranked within the ICB: where to start
-- when targeting Core20PLUS5 work. Shares are of the people with a deprivation match
-- (English LSOAs); `population_with_imd` says how many that is. A PCN with a suppressed count
-- (1 to 7 people) keeps its row with the count null and `suppressed` true.
--
-- Parameters:
--   :icb_code  the ICB's ODS code, e.g. QHG
-- Columns:
--   rank                 1 = the highest Core20 share in the ICB
--   pcn_code             the PCN's ODS code
--   pcn_name             its name
--   population           registered people (rounded to 5)
--   population_with_imd  of whom living in an English LSOA with a deprivation match
--   core20_population    of whom living in a Core20 LSOA
--   core20_percent       core20_population as a percentage of population_with_imd
--   imd_score            population-weighted mean IMD score of their LSOAs
--   deprivation_decile   the PCN's decile of imd_score among all PCNs (1 = most deprived)
--   suppressed           a count in the row was suppressed
SELECT
    rank() OVER (ORDER BY core20_share DESC NULLS LAST) AS rank,
    area_code AS pcn_code,
    area_name AS pcn_name,
    population,
    population_with_imd,
    core20_population,
    ROUND(100 * core20_share, 1) AS core20_percent,
    ROUND(imd_score, 1) AS imd_score,
    deprivation_decile,
    suppressed
FROM area_deprivation
WHERE area_level = 'pcn' AND parent_code = :icb_code
ORDER BY rank, pcn_code;
