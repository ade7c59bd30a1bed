-- Issue 19: the election says whether observers need an accepted invitation, and how long
-- personal data is kept after it. The range matches domain::election::Retention.
ALTER TABLE elections
    ADD COLUMN invitation_required boolean NOT NULL DEFAULT false,
    ADD COLUMN personal_data_retention_days integer NOT NULL DEFAULT 90
        CONSTRAINT elections_personal_data_retention_days_range
            CHECK (personal_data_retention_days BETWEEN 0 AND 3650),
    ADD COLUMN personal_data_erase_time timestamptz;
