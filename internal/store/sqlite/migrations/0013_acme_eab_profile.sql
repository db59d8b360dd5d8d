-- 0013: an external account binding key may bind its ACME account to an
-- OV or EV certificate profile and the organization reviewers check, so
-- that such orders go through ACME to the review queue. '' is dv.
ALTER TABLE acme_eab_keys ADD COLUMN cert_profile TEXT NOT NULL DEFAULT '';
ALTER TABLE acme_eab_keys ADD COLUMN organization BLOB;
