"""Uncertainty: ensembles and MC dropout, calibration fitted on the validation set, and
the metrics that score it (NLL, miscalibration area, ENCE, conformal coverage)."""

from molgraph.uncertainty.calibration import (
    ClassificationCalibration,
    RegressionCalibration,
    apply_calibration,
    conformal_quantile,
    spread,
)
from molgraph.uncertainty.ensemble import (
    ENSEMBLE_FILE,
    Ensemble,
    export_ensemble,
    is_ensemble,
    load_ensemble,
)
from molgraph.uncertainty.evaluate import (
    calibrate_and_evaluate,
    fit_calibration,
    uncertainty_metrics,
)

__all__ = [
    "ENSEMBLE_FILE",
    "ClassificationCalibration",
    "Ensemble",
    "RegressionCalibration",
    "apply_calibration",
    "calibrate_and_evaluate",
    "conformal_quantile",
    "export_ensemble",
    "fit_calibration",
    "is_ensemble",
    "load_ensemble",
    "spread",
    "uncertainty_metrics",
]
