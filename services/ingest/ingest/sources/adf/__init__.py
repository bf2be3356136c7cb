"""ADF 1.0 (Auto-lead Data Format) XML, and La Centrale's ADF-like XML leads."""
