"""Loading ESM checkpoints in fair-esm's own format, without unpickling arbitrary objects.

fair-esm's loader calls ``torch.load`` with full pickle. Here every file goes through
``torch.load(weights_only=True)`` with ``argparse.Namespace`` as the one extra allowed
global (the ``cfg``/``args`` of the released checkpoints); the model itself is then built
by fair-esm's ``load_model_and_alphabet_core`` from the already-loaded dicts.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import warnings
from pathlib import Path
from typing import Any

import esm
import torch

from molgraph.errors import ESMWeightsError

__all__ = ["ESM_MODELS", "load_esm", "model_url", "regression_url"]

log = logging.getLogger(__name__)

#: ESM-2 family: name -> (num_layers, embed_dim, attention_heads).
ESM_MODELS: dict[str, tuple[int, int, int]] = {
    "esm2_t6_8M_UR50D": (6, 320, 20),
    "esm2_t12_35M_UR50D": (12, 480, 20),
    "esm2_t30_150M_UR50D": (30, 640, 20),
    "esm2_t33_650M_UR50D": (33, 1280, 20),
    "esm2_t36_3B_UR50D": (36, 2560, 40),
    "esm2_t48_15B_UR50D": (48, 5120, 40),
}

_BASE_URL = "https://dl.fbaipublicfiles.com/fair-esm"
_REGRESSION_SUFFIX = "-contact-regression.pt"


def model_url(name: str) -> str:
    """URL of fair-esm's released checkpoint ``name``."""
    return f"{_BASE_URL}/models/{name}.pt"


def regression_url(name: str) -> str:
    """URL of the contact-regression weights that go with checkpoint ``name``."""
    return f"{_BASE_URL}/regression/{name}{_REGRESSION_SUFFIX}"


def _regression_path(path: Path) -> Path:
    return path.with_name(path.stem + _REGRESSION_SUFFIX)


def _safe_load(path: Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` allowing only ``argparse.Namespace`` besides tensors."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
            asked = ", ".join(g for g in unsafe if g != "argparse.Namespace") or str(error)
        except Exception:  # not a zip checkpoint: the unpickler's own words name the global
            asked = str(error).splitlines()[-1] if str(error) else repr(error)
        raise ESMWeightsError(
            f"{path}: refused to load; the file asks for objects that are not weights "
            f"({asked}). Only tensors, plain containers and argparse.Namespace are allowed."
        ) from None
    except (OSError, RuntimeError, EOFError) as error:
        raise ESMWeightsError(f"{path}: not a readable torch checkpoint ({error})") from error
    if not isinstance(data, dict) or "model" not in data:
        raise ESMWeightsError(f"{path}: not a fair-esm checkpoint (no 'model' state dict)")
    return data


def _build(path: Path) -> tuple[torch.nn.Module, esm.data.Alphabet]:
    model_data = _safe_load(path)
    regression_file = _regression_path(path)
    regression_data = _safe_load(regression_file) if regression_file.is_file() else None
    if regression_data is None:
        log.info("%s: no %s beside it; contact prediction unavailable", path, regression_file.name)
    name = path.stem
    if "cfg" in model_data and not name.startswith("esm2"):
        # fair-esm picks the ESM-2 builder by name; a renamed ESM-2 file keeps its format.
        name = f"esm2_{name}"
    try:
        with warnings.catch_warnings():
            # Missing contact-regression weights are expected here (embeddings only).
            warnings.filterwarnings("ignore", message="Regression weights not found")
            model, alphabet = esm.pretrained.load_model_and_alphabet_core(
                name, model_data, regression_data
            )
    except (KeyError, AttributeError, ValueError, RuntimeError) as error:
        raise ESMWeightsError(
            f"{path}: not a fair-esm checkpoint that fair-esm can build ({type(error).__name__}: "
            f"{error})"
        ) from error
    return model.eval(), alphabet


def load_esm(
    name: str = "esm2_t33_650M_UR50D",
    path: str | Path | None = None,
    *,
    download: bool = True,
) -> tuple[torch.nn.Module, esm.data.Alphabet]:
    """Load an ESM model and its alphabet from a fair-esm checkpoint, safely.

    Parameters
    ----------
    name
        fair-esm model name (e.g. ``esm2_t33_650M_UR50D``); used when ``path`` is None to
        find ``<torch hub dir>/checkpoints/<name>.pt`` or download it.
    path
        A local checkpoint in fair-esm's format. Its contact-regression weights
        (``<stem>-contact-regression.pt``) are loaded when they lie beside it; without
        them the model embeds normally and only contact prediction is unavailable.
        The model is named after the file's stem, as fair-esm does.
    download
        When no local file exists, download the checkpoint (and its regression weights)
        from fair-esm's URL into torch hub's cache.

    Returns
    -------
    model, alphabet
        The model in eval mode on the CPU (float32), and its ``esm.data.Alphabet``.

    Raises
    ------
    ESMWeightsError
        No weights reachable (the message names every path and URL tried), or a file that
        asks for objects other than tensors and ``argparse.Namespace`` when unpickled.
    """
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise ESMWeightsError(
                f"ESM weights not found: tried {path} (esm.path). Set esm.path to an existing "
                f"fair-esm checkpoint such as {name}.pt."
            )
        return _build(path)

    cached = Path(torch.hub.get_dir()) / "checkpoints" / f"{name}.pt"
    if cached.is_file():
        return _build(cached)
    tried = [str(cached)]
    reason = "download=False"
    if download:
        tried.append(model_url(name))
        reason = _download(name, cached)
        if not reason:
            return _build(cached)
    raise ESMWeightsError(
        f"ESM weights for {name!r} not found: tried {', '.join(tried)} ({reason}). "
        f"Download {model_url(name)} on a machine with network access and pass "
        f"esm.path=/path/to/{name}.pt, or put it in {cached.parent}."
    )


def _download(name: str, cached: Path) -> str:
    """Download checkpoint ``name`` (and its contact-regression weights, where fair-esm has
    them) to ``cached``; ``""`` when it worked, else why not."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(model_url(name), str(cached), progress=True)
    except Exception as error:  # urllib, socket and HTTP errors alike
        return f"download failed: {type(error).__name__}: {error}"
    if esm.pretrained._has_regression_weights(name):
        try:
            torch.hub.download_url_to_file(regression_url(name), str(_regression_path(cached)))
        except Exception as error:
            log.info("%s: no contact-regression weights (%s)", name, error)
    return ""
