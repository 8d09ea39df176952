# mypy: ignore-errors
"""Stock held per branch and part."""

from core import models as core_models
from django.db import models


class StockLevel(core_models.BranchScoped):
    """How many of a part a branch holds, and when to reorder."""

    part = models.ForeignKey("catalog.Part", on_delete=models.CASCADE, related_name="stock_levels")
    quantity = models.IntegerField(default=0)
    reorder_level = models.PositiveIntegerField(default=0)
    bin_location = models.CharField(max_length=16, blank=True)

    class Meta:
        """Table options."""

        db_table = "stock_level"
        unique_together = [("branch", "part")]
        constraints = [
            models.CheckConstraint(condition=models.Q(reorder_level__gte=0), name="stock_reorder_non_negative")
        ]
