-- Per-app quotas (JSON of arcus_core::scaling::AppQuotas; '{}' = none).
ALTER TABLE apps ADD COLUMN quotas TEXT NOT NULL DEFAULT '{}';
