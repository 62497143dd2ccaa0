-- Platform lines derived from records (ADR 0019): an invocation's START, END and
-- REPORT lines are no longer stored as rows of `logs` but shown from its record, which
-- keeps what REPORT says. Records and log lines share one sequence from now on (the
-- `logs` AUTOINCREMENT counter): an invocation's block of seqs is START, its captured
-- lines, END, REPORT, and the record's own seq is the block's last (REPORT's).

-- Cold-start time and peak memory, as REPORT shows them.
ALTER TABLE invocations ADD COLUMN init_duration_us BIGINT;
ALTER TABLE invocations ADD COLUMN max_memory_mb BIGINT;
-- NULL: no platform lines (records written before this migration, whose lines are
-- rows of `logs`, and invocations refused before they ran). Otherwise the number of
-- captured lines between START (seq - log_lines - 2) and END (seq - 1).
ALTER TABLE invocations ADD COLUMN log_lines INTEGER;
-- END's and REPORT's capture time: the invocation's end, never before its last line.
ALTER TABLE invocations ADD COLUMN ended_at BIGINT;

-- Newest-first reads of END and REPORT lines, per function and per app.
CREATE INDEX invocations_end_by_function ON invocations (app, function, ended_at, seq)
    WHERE log_lines IS NOT NULL;
CREATE INDEX invocations_end_by_app ON invocations (app, ended_at, seq)
    WHERE log_lines IS NOT NULL;

-- The shared counter starts above every seq either table has used.
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'logs', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'logs');
UPDATE sqlite_sequence
    SET seq = MAX(seq, (SELECT COALESCE(MAX(seq), 0) FROM invocations))
    WHERE name = 'logs';
