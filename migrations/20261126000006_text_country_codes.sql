-- Country codes as text rather than char(2): filters bind their values as text, and a
-- char(2) column compared with text is cast, which hides its index and its statistics.
-- The CHECKs (two upper-case letters) stay. The citizenship trigger names the column, so it
-- is recreated around the change.
DROP TRIGGER observers_not_host_country_citizen ON observers;
ALTER TABLE elections ALTER COLUMN host_country TYPE text;
ALTER TABLE organizations ALTER COLUMN country TYPE text;
ALTER TABLE observers ALTER COLUMN citizenship TYPE text;
ALTER TABLE observer_tallies ALTER COLUMN citizenship TYPE text;
CREATE TRIGGER observers_not_host_country_citizen
    BEFORE INSERT OR UPDATE OF citizenship ON observers
    FOR EACH ROW EXECUTE FUNCTION observers_check_citizenship();
