-- Intake: the term of the order behind community treatment or rehabilitation, and a keyed
-- phone index so the window can find a client by phone without decrypting every record.
ALTER TABLE clients ADD COLUMN order_start TEXT;
ALTER TABLE clients ADD COLUMN order_end TEXT;
-- Keyed hash of the normalised (E.164) phone number; filled for older records at start.
ALTER TABLE clients ADD COLUMN phone_index TEXT;
CREATE INDEX clients_phone_index ON clients(phone_index);
