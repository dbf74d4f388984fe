"""Figures: indicators, accountability reports, scoring schemes and Gi* hot spots."""
