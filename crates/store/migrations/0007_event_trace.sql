-- The W3C traceparent of the span that accepted an async event, so that every attempt
-- runs in the accepting request's trace (ADR 0011). NULL for events stored before.
ALTER TABLE events ADD COLUMN traceparent TEXT;
