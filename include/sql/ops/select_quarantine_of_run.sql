-- Records one run quarantined for one source (the digest a DAG sends after loading), in the order they were read.
-- params: run_id STRING, source STRING
SELECT target_table, record_ref, reason, payload
FROM ops.quarantine
WHERE run_id = @run_id AND source = @source
ORDER BY target_table, quarantined_at, record_ref
