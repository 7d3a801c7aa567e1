"""Assessment's own pure domain: scale risk per township. The rules for one household (facts, income, risks,
outcome, data problems) live in `povguard_rules`, shared with audit's dispute replay."""
