"""The views: one blueprint per audience, thin (parse, call the core, render)."""
