"""A layer x layer CKA matrix as data, its results folder, and reading it back.

Folder layout (all-or-nothing, ``manifest.json`` last): ``cka.json`` (rows, columns, matrix, the diagonal
when both models have the same layers), ``hsic.npz`` (the HSIC sums the matrix comes from), ``cka.png``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convscope.diagnose.cka import HsicAccumulator
from convscope.diagnose.folder import read_manifest, write_result
from convscope.errors import InputError

FORMAT = "convscope-similarity"
FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class SimilarityResult:
    """Linear CKA of every row layer (model A) with every column layer (model B, or A again).

    Attributes:
        manifest: Format, identity, models, dataset, options (batch size, number of minibatches).
        rows: Activation keys of model A.
        cols: Activation keys of model B.
        sums: The HSIC sums over the minibatches.
        path: The results folder, or ``None``.
    """

    manifest: dict[str, Any]
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    sums: HsicAccumulator
    path: Path | None = None

    @property
    def matrix(self) -> np.ndarray:
        """float64 ``(len(rows), len(cols))`` linear CKA (NaN for a constant layer)."""
        return self.sums.cka()

    @property
    def names(self) -> tuple[str, str]:
        """How models A and B are named."""
        a, b = self.manifest["names"]
        return str(a), str(b)

    def diagonal(self) -> dict[str, float] | None:
        """``{layer: CKA of the layer with the same-named layer of B}``; ``None`` if the layers differ."""
        if self.rows != self.cols:
            return None
        return {k: float(v) for k, v in zip(self.rows, np.diag(self.matrix))}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able matrix (NaN as ``null``) with its labels."""
        m = self.matrix
        diag = self.diagonal()
        return {
            "model_a": self.names[0],
            "model_b": self.names[1],
            "images": int(self.sums.examples),
            "batches": int(self.sums.batches),
            "rows": list(self.rows),
            "cols": list(self.cols),
            "cka": [[_num(v) for v in row] for row in m],
            "diagonal": None if diag is None else {k: _num(v) for k, v in diag.items()},
        }

    def summary_text(self) -> str:
        """The matrix as a text table."""
        a, b = self.names
        width = max(len(r) for r in self.rows)
        lines = [
            f"linear CKA (unbiased HSIC, {self.sums.batches} minibatches, {self.sums.examples} images): "
            f"rows {a}, columns {b}",
            " " * width + "  " + "  ".join(f"{j:>6}" for j in range(len(self.cols))),
        ]
        for name, row in zip(self.rows, self.matrix):
            lines.append(f"{name:<{width}}  " + "  ".join(f"{v:6.3f}" for v in row))
        lines += [f"column {j}: {c}" for j, c in enumerate(self.cols)]
        return "\n".join(lines) + "\n"

    def picture(self) -> np.ndarray:
        """The heatmap (uint8 ``(H, W, 3)``)."""
        from convscope.diagnose.plots import heatmap_picture

        title = f"linear CKA over {self.sums.examples} images (unbiased HSIC, minibatches of {self.manifest['options']['batch_size']})"
        return heatmap_picture(self.matrix, self.rows, self.cols, title, self.names)


def _num(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def write_similarity(result: SimilarityResult, out: Path) -> SimilarityResult:
    """Write ``result`` to ``out``."""
    from convscope.render.encode import encode_png

    def fill(stage: Path) -> None:
        s = result.sums
        np.savez(stage / "hsic.npz", cross=s.cross, row_self=s.row_self, col_self=s.col_self,
                 counts=np.array([s.batches, s.examples]))  # fmt: skip
        (stage / "cka.json").write_text(json.dumps(result.to_dict(), indent=1, allow_nan=False))
        (stage / "cka.png").write_bytes(encode_png(result.picture()))
        (stage / "summary.txt").write_text(result.summary_text())

    write_result(out, "similarity", result.manifest, fill)
    return SimilarityResult(result.manifest, result.rows, result.cols, result.sums, out)


def load_similarity(folder: str | Path) -> SimilarityResult:
    """Read a folder written by :func:`~convscope.diagnose.similarity` back.

    Raises:
        InputError: Not a complete similarity folder.
    """
    manifest = read_manifest(folder, FORMAT)
    root = Path(folder).expanduser()
    rows, cols = manifest["identity"]["rows"], manifest["identity"]["cols"]
    try:
        with np.load(root / "hsic.npz", allow_pickle=False) as data:
            sums = HsicAccumulator(len(rows), len(cols))
            sums.cross, sums.row_self, sums.col_self = data["cross"], data["row_self"], data["col_self"]
            sums.batches, sums.examples = (int(v) for v in data["counts"])
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read {str(root / 'hsic.npz')!r}: {exc}") from None
    return SimilarityResult(manifest, tuple(rows), tuple(cols), sums, root)
