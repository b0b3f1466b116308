"""Artifact: what ``compile(..., backend="mcu")`` leaves in its build directory.

``run_host`` runs the host build; the firmware (``elf``) runs on a board through
``ajpq.boards.Board``: ``board.flash(artifact)``, then ``board.open()`` for a Session.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ajpq.errors import AjpqError


@dataclass
class Artifact:
    backend: str
    board: str
    out_dir: Path
    model_hash: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    sources: list[Path]
    host_library: Path
    elf: Path | None
    report: dict[str, Any] = field(default_factory=dict)

    def run_host(self, images: np.ndarray) -> np.ndarray:
        """Run the host build (the generated C, compiled by gcc) -> what ``HwGraph.run`` gives."""
        from ajpq.backends.mcu.host import HostModel

        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        model = HostModel(
            self.host_library, int(np.prod(self.input_shape)), int(np.prod(self.output_shape))
        )
        return model.run(images).reshape(len(images), *self.output_shape)

    def save(self) -> Path:
        """artifact.json, its paths relative to the build dir (which may then move)."""
        path = self.out_dir / "artifact.json"
        raw = {k: self._relative(v) for k, v in self.__dict__.items()}
        raw["out_dir"] = "."
        raw["sources"] = [self._relative(p) for p in self.sources]
        path.write_text(json.dumps(raw, indent=1))
        return path

    def _relative(self, value: Any) -> Any:
        if not isinstance(value, Path):
            return value
        return os.path.relpath(value.resolve(), self.out_dir.resolve())

    @classmethod
    def load(cls, out_dir: str | Path) -> "Artifact":
        """The artifact saved in ``out_dir``, its paths resolved against ``out_dir``."""
        out = Path(out_dir)
        path = out / "artifact.json"
        try:
            raw = json.loads(path.read_text())
            return cls(
                raw["backend"],
                raw["board"],
                out,
                raw["model_hash"],
                tuple(raw["input_shape"]),
                tuple(raw["output_shape"]),
                [out / p for p in raw["sources"]],
                out / raw["host_library"],
                out / raw["elf"] if raw["elf"] else None,
                raw["report"],
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AjpqError(
                f"{out_dir} holds no ajpq artifact ({type(exc).__name__}); build one "
                "with `ajpq compile`"
            ) from None
