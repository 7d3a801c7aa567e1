"""`povguard demo`: a whole screening campaign on a synthetic county, driven through the public REST APIs as the
real roles would, stage by stage, with a summary at the end."""
