"""Evaluating edit models on held-out (partial canvas, caption) records (`cofrida eval`).

- `metrics`: text alignment, preservation, paintability, diversity (definitions there).
- `candidates`: the rows compared (bundles, a model's multi-step teacher, a W4A4 copy, the
  reference sim painting) as `Candidate` objects with a ``propose(record, n, seed)`` function.
- `runner`: `load_records` and `evaluate` -> `EvalResult` (mean metrics per row, comparisons).
- `table`: the Markdown table, the contact sheet and the output files.
"""

from cofrida.evaluation.candidates import Candidate, EvalRecord
from cofrida.evaluation.metrics import Paintability, PaintabilityConfig, preservation
from cofrida.evaluation.runner import EvalResult, EvalSettings, evaluate, load_records
from cofrida.evaluation.table import markdown_table, write_outputs

__all__ = [
    "Candidate",
    "EvalRecord",
    "EvalResult",
    "EvalSettings",
    "Paintability",
    "PaintabilityConfig",
    "evaluate",
    "load_records",
    "markdown_table",
    "preservation",
    "write_outputs",
]
