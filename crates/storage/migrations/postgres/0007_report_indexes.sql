-- Indexes for the deployment-wide reports: the month's doses and urine tests of every site are
-- read straight from these covering indexes instead of scanning the whole tables.
CREATE INDEX doses_day_client ON doses(day, client_id, rule);
CREATE INDEX urine_tests_day ON urine_tests(collected_on, client_id, negative);
