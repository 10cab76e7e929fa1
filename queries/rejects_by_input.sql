-- Rejected input rows by input and file, with the most common reason.
--
-- Data quality at a glance: for every input file the ingest stage refused rows from, how
-- many rows and values, over how many columns and distinct reasons, and the reason met
-- most often (ties: the first alphabetically). `rejects_by_reason` breaks one input down
-- further. The share of rows refused needs the rows read, which are in `manifest.json`
-- (`inputs[].rows_read`), not in a table.
--
-- Columns:
--   input              the input kind, as in the config's [inputs.KIND]
--   file               the input file
--   rows               rejected rows
--   refused_values     refused values (a row can have several)
--   columns            input columns with refused values
--   reasons            distinct reasons
--   top_reason         the most common reason
--   top_reason_values  values refused for it
WITH by_reason AS (
    SELECT input, file, reason, count(*) AS reason_values
    FROM rejects
    GROUP BY input, file, reason
),
most_values AS (
    SELECT input, file, max(reason_values) AS top_reason_values
    FROM by_reason
    GROUP BY input, file
),
top_reason AS (
    SELECT
        b.input,
        b.file,
        min(b.reason) AS top_reason,
        min(m.top_reason_values) AS top_reason_values
    FROM by_reason b
    JOIN most_values m
        ON b.input = m.input AND b.file = m.file AND b.reason_values = m.top_reason_values
    GROUP BY b.input, b.file
),
by_file AS (
    SELECT
        input,
        file,
        count(DISTINCT line) AS rows,
        count(*) AS refused_values,
        count(DISTINCT "column") AS columns,
        count(DISTINCT reason) AS reasons
    FROM rejects
    GROUP BY input, file
)
SELECT
    f.input,
    f.file,
    f.rows,
    f.refused_values,
    f.columns,
    f.reasons,
    t.top_reason,
    t.top_reason_values
FROM by_file f
JOIN top_reason t ON f.input = t.input AND f.file = t.file
ORDER BY f.rows DESC, f.input, f.file;
