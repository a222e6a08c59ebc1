"""A progress bar over a run's stages, shown only when a person is watching a terminal."""

from __future__ import annotations

from types import TracebackType

from tqdm import tqdm

STAGES = ("pull", "merge", "compute", "select", "write")


class StageProgress:
    """``with StageProgress(enabled) as p: ... p.stage("pull")`` advances one bar over the run's stages."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: tqdm | None = None

    def __enter__(self) -> StageProgress:
        if self.enabled:
            self._bar = tqdm(total=len(STAGES), unit="stage", leave=False, bar_format="{desc:<10} {bar} {n}/{total}")
        return self

    def stage(self, name: str) -> None:
        """Mark the start of stage ``name``."""
        if self._bar is not None:
            if self._bar.desc:
                self._bar.update(1)
            self._bar.set_description_str(name)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
