-- 0012: an order may ask for a certificate validity shorter than the CA's
-- default (an ACME profile), kept with the order so that an order signed
-- later (after review, or resumed after a crash) gets it too. 0: the CA's
-- default.
ALTER TABLE orders ADD COLUMN validity_seconds BIGINT NOT NULL DEFAULT 0;
