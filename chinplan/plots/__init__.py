"""Stage 5 (figures): matplotlib figures of the plans, costs and posterior.

:mod:`.charts` draws the figures (fan chart, iso-loss map, cost against query volume, pair
plot); :mod:`.axes` holds what they share (figure and axes set-up, grids, levels, labels).
Imports the decisions, the engine and the core; never the command line.
"""

from chinplan.plots.charts import REFERENCE_MODELS, fan_chart, iso_loss, pair_plot, save, tco_vs_queries

__all__ = ["REFERENCE_MODELS", "fan_chart", "iso_loss", "pair_plot", "save", "tco_vs_queries"]
