-- Rejected input rows by column and reason, for one input.
--
-- Which columns of an input the ingest stage refused rows for, and why, most frequent first:
-- where to start when a run's reject count jumps. (An example of the saved-query format over
-- the `rejects` table, whose columns are `schema::REJECT_*`.)
--
-- Parameters:
--   :input    the input kind, as in the config's [inputs.KIND], e.g. patients
-- Columns:
--   column    the input column whose value was refused
--   reason    why it was refused
--   rows      rejected rows
--   files     input files the rows came from
--   example   one refused value (the smallest)
SELECT
    "column",
    reason,
    count(*) AS rows,
    count(DISTINCT file) AS files,
    min(value) AS example
FROM rejects
WHERE input = :input
GROUP BY "column", reason
ORDER BY rows DESC, "column", reason;
