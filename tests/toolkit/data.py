"""Small seeded data sets for the toolkit tests (wide on purpose where the test is about width)."""

from __future__ import annotations

from typing import Any

Split = tuple[Any, Any, Any, Any]


def regression(rows: int = 80, columns: int = 30, *, test_rows: int = 20, seed: int = 0) -> Split:
    """float32 features named like CpG probes; the target depends on the first five columns."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    total = rows + test_rows
    x = rng.random((total, columns), dtype=np.float32)
    y = 40 + 10 * x[:, : min(5, columns)].sum(axis=1) + rng.normal(0, 0.5, total)
    frame = pd.DataFrame(x, columns=[f"cg{i:08d}" for i in range(columns)], copy=False)
    target = pd.Series(y, name="age")
    return frame.iloc[:rows], target.iloc[:rows], frame.iloc[rows:], target.iloc[rows:]


def classification(rows: int = 80, columns: int = 20, *, classes: int = 2, test_rows: int = 30, seed: int = 1) -> Split:
    """Labels 0..classes-1 from the first two columns, separable enough for every estimator."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    total = rows + test_rows
    x = rng.standard_normal((total, columns)).astype(np.float32)
    score = x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.3, total)
    edges = np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])
    y = np.digitize(score, edges).astype(np.int64)
    frame = pd.DataFrame(x, columns=[f"cg{i:08d}" for i in range(columns)], copy=False)
    target = pd.Series(y, name="label")
    return frame.iloc[:rows], target.iloc[:rows], frame.iloc[rows:], target.iloc[rows:]
