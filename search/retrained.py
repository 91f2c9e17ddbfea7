"""The chosen configuration after retraining, measured on the search result's held-out images.

``axhw search`` -> ``axhw retrain --config RESULT.json`` -> ``axhw report --retrained
summary.json``: :func:`score_retrained` is the report's measurement of the last step.
It rebuilds the retrained model from the retraining summary
(:func:`axhw.emulator.load_retrained`), refuses it unless it applies the result's
chosen per-op assignment to the same model and data, and scores it on the split the
result's final figures come from (``test``, which no choice read), image for image the
same as the int8 reference scored there, so the drop below int8 is a paired quantity.
The number the summary records is only compared with the measurement, never reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from axhw.errors import ConfigError, DataError
from axhw.stats import DropEstimate, pack_outcomes, paired_drop, unpack_outcomes, wilson_interval

__all__ = ["RetrainedScore", "score_retrained"]

#: |measured − recorded| (fraction) above which the summary's own figure is said to disagree:
#: far below one image of any split, far above float rounding of k / n.
DISAGREEMENT = 1e-9


@dataclass(frozen=True)
class RetrainedScore:
    """Top-1 of a retrained model on the held-out split, measured by the caller.

    Attributes:
        summary: the retraining ``summary.json`` read.
        weights: the weights file measured, and ``weights_sha256`` its SHA-256.
        grad: gradient method of those weights (``"ste"`` or ``"lut"``).
        epochs, best_epoch, lr: the retraining run's recorded settings (``None`` when not recorded).
        split: the split measured (the result's held-out split, ``test`` by default).
        n_images: images of it.
        correct: per-image correctness, packed by :func:`axhw.stats.pack_outcomes`.
        accuracy: top-1 in [0, 1].
        interval: its Wilson 95 % interval (fractions).
        drop: paired drop below the result's int8 all-exact model on the same images,
            in points (``None`` when the result carries no held-out reference).
        recorded_accuracy: what the summary records for ``grad`` (fraction), with
            ``recorded_split`` and ``recorded_n_images``; compared, never reported.
        disagreement: one line when the recorded figure is on the same images but differs
            from the measurement (``None`` otherwise).
        device, backend: where and with which kernel backend it was measured.
    """

    summary: str
    weights: str
    weights_sha256: str
    grad: str
    epochs: int | None
    best_epoch: int | None
    lr: float | None
    split: str
    n_images: int
    correct: str
    accuracy: float
    interval: tuple[float, float]
    drop: DropEstimate | None
    recorded_accuracy: float | None
    recorded_split: str | None
    recorded_n_images: int | None
    disagreement: str | None
    device: str
    backend: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the report's ``config.json`` ``retraining`` entry)."""
        return {
            "source": "measured", "accuracy": self.accuracy, "interval": list(self.interval), "split": self.split,
            "n_images": self.n_images, "correct": self.correct,
            "drop": None if self.drop is None else {"drop": self.drop.drop, "lower": self.drop.lower,
                                                    "upper": self.drop.upper, "n_images": self.drop.n_images,
                                                    "worse": self.drop.worse, "better": self.drop.better},
            "grad": self.grad, "epochs": self.epochs, "best_epoch": self.best_epoch, "lr": self.lr,
            "summary": self.summary, "weights": self.weights, "weights_sha256": self.weights_sha256,
            "recorded": {"accuracy": self.recorded_accuracy, "split": self.recorded_split,
                         "n_images": self.recorded_n_images},
            "disagreement": self.disagreement, "device": self.device, "backend": self.backend,
        }


def _check_same_run(result: Any, loaded: Any) -> None:
    """Refuse weights of another model, data or assignment than the result's chosen configuration."""
    from axhw.emulator import FP32

    where = loaded.summary_path
    if loaded.data != result.dataset:
        raise ConfigError(f"{where}: retrained on data {loaded.data!r}, but the search result is on {result.dataset!r}; "
                          "its accuracy would not be on the result's images")
    if loaded.model_name != result.model_name:
        raise ConfigError(f"{where}: retrained model {loaded.model_name!r}, but the search result is of "
                          f"{result.model_name!r} (a search given a model object records its class name unless "
                          "run(..., model_name=...) names it)")
    chosen = dict(result.best().config)
    ops = sorted(set(chosen) | set(loaded.config))
    differ = [op for op in ops if loaded.config.get(op, FP32) != chosen.get(op, FP32)]
    if differ:
        op = differ[0]
        raise ConfigError(
            f"{where}: the retrained model applies another assignment than the result's chosen configuration "
            f"({len(differ)} of {len(ops)} ops differ, e.g. {op}: {loaded.config.get(op, FP32)} retrained, "
            f"{chosen.get(op, FP32)} chosen); retrain the chosen one: `axhw retrain --config RESULT.json`")


def _recorded(loaded: Any) -> tuple[float | None, str | None, int | None]:
    data = loaded.summary
    try:
        accuracy = float(data["retrained_accuracy"][loaded.grad])
    except (KeyError, TypeError, ValueError):
        accuracy = None
    n = data.get("n_images")
    return accuracy, (str(data["split"]) if "split" in data else None), (int(n) if isinstance(n, int) else None)


def score_retrained(
    result: Any,
    retrained: str | os.PathLike,
    *,
    grad: str | None = None,
    device: str | None = None,
    backend: str = "auto",
    batch_size: int = 256,
) -> RetrainedScore:
    """Measure a retraining run's model on the search result's held-out split.

    Args:
        result: the :class:`~axhw.search.SearchResult` whose chosen configuration was retrained.
        retrained: the run's ``summary.json`` or its folder (``axhw retrain --out``).
        grad: which retrained weights (``None``: the method whose kept epoch scored best on val).
        device: where to evaluate (``None``: CPU; ``"cuda"`` when asked).
        backend: kernel backend of the approximate ops.
        batch_size: images per evaluation batch.

    Returns:
        :class:`RetrainedScore`; its ``disagreement`` says when the summary's own figure
        on the same images differs from the measurement.

    Raises:
        ConfigError: not a retraining summary, missing weights, or a run of another
            model, data or per-op assignment than ``result.best()``.
        DataError: the held-out split is not the one the result scored (other image count),
            or the data cannot be loaded.
    """
    from axhw.data import get_loader
    from axhw.emulator import load_retrained, model_input_size
    from axhw.emulator.scoring import correct_per_image

    if not result.history:
        raise DataError("the search result has no evaluated configuration; nothing was chosen to retrain")
    loaded = load_retrained(retrained, grad, device=device, backend=backend)
    _check_same_run(result, loaded)
    holdout = result.holdout or {}
    split = str(holdout.get("split") or "test")  # the split the result's final figures are on
    channels, height, _ = model_input_size(loaded.model)
    loader = get_loader(loaded.data, split, batch_size=batch_size, image_size=height, channels=channels)
    correct = correct_per_image(loaded.model, loader, device=device)
    n = int(correct.size)
    drop = None
    reference = (holdout.get("reference") or {}).get("correct")
    if reference:
        if int(holdout["n_images"]) != n:
            raise DataError(f"the {split} split of {loaded.data!r} has {n} images now, but the search result scored "
                            f"{holdout['n_images']}: the data changed since the search, so no paired drop exists")
        drop = paired_drop(unpack_outcomes(reference, n), correct)
    k = int(correct.sum())
    accuracy = k / n
    rec_acc, rec_split, rec_n = _recorded(loaded)
    disagreement = None
    if rec_acc is not None and rec_split == split and rec_n == n and abs(rec_acc - accuracy) > DISAGREEMENT:
        disagreement = (f"{loaded.summary_path} records {100 * rec_acc:.2f} % for the {loaded.grad} weights on the same "
                        f"{n} {split} images, but they score {100 * accuracy:.2f} % here ({loaded.weights_path}); the "
                        "summary does not describe these weights (edited, or the weights replaced): the report shows "
                        "the measured figure")
    run = loaded.run
    return RetrainedScore(
        summary=str(loaded.summary_path), weights=str(loaded.weights_path), weights_sha256=loaded.weights_sha256,
        grad=loaded.grad, epochs=run.get("epochs"), best_epoch=run.get("best_epoch"), lr=run.get("lr"),
        split=split, n_images=n, correct=pack_outcomes(correct), accuracy=accuracy, interval=wilson_interval(k, n),
        drop=drop, recorded_accuracy=rec_acc, recorded_split=rec_split, recorded_n_images=rec_n,
        disagreement=disagreement, device=str(device or "cpu"), backend=backend,
    )

