"""Task: masked loss, metrics per target and averaged, monitored key and mode."""

from __future__ import annotations

import math

import pytest
import torch

from molgraph.models import Task

NAN = float("nan")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# Two graphs × two targets; entry (1, 0) has no label. Its target holds 0 (as GraphBatch
# stores a missing label) and its output is arbitrary.
OUTPUT = [[0.5, -1.0], [3.0, 2.0]]
TARGET = [[1.0, 0.0], [0.0, 1.0]]
MASK = [[True, True], [False, True]]
LABELLED = [(0, 0), (0, 1), (1, 1)]


def _tensors(output=OUTPUT) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.tensor(output, dtype=torch.float64, requires_grad=True),
        torch.tensor(TARGET, dtype=torch.float64),
        torch.tensor(MASK),
    )


def _hand_loss(kind: str) -> float:
    """Mean over the labelled entries of squared error or binary cross-entropy."""
    terms = []
    for g, t in LABELLED:
        x, y = OUTPUT[g][t], TARGET[g][t]
        if kind == "regression":
            terms.append((x - y) ** 2)
        else:
            p = _sigmoid(x)
            terms.append(-(y * math.log(p) + (1 - y) * math.log(1 - p)))
    return sum(terms) / len(terms)


def _hand_grad(kind: str) -> list[list[float]]:
    """d loss / d output: 2 (x - y) / n (MSE) or (sigmoid(x) - y) / n (BCE); 0 if masked."""
    grad = [[0.0, 0.0], [0.0, 0.0]]
    for g, t in LABELLED:
        x, y = OUTPUT[g][t], TARGET[g][t]
        d = 2 * (x - y) if kind == "regression" else _sigmoid(x) - y
        grad[g][t] = d / len(LABELLED)
    return grad


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_loss_is_mean_over_labelled_entries(kind: str) -> None:
    output, target, mask = _tensors()
    loss = Task(kind, ("a", "b")).loss(output, target, mask)
    loss.backward()
    assert loss.item() == pytest.approx(_hand_loss(kind), rel=1e-12)
    expected_grad = torch.tensor(_hand_grad(kind), dtype=torch.float64)
    torch.testing.assert_close(output.grad, expected_grad, rtol=1e-12, atol=1e-15)
    assert output.grad[1, 0] == 0.0


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_masked_output_does_not_change_loss(kind: str) -> None:
    task = Task(kind, ("a", "b"))
    reference = task.loss(*_tensors()).item()
    for value in (-50.0, 0.0, 1e4):
        changed = [row[:] for row in OUTPUT]
        changed[1][0] = value
        output, target, mask = _tensors(changed)
        loss = task.loss(output, target, mask)
        loss.backward()
        assert loss.item() == pytest.approx(reference, rel=1e-12)
        assert output.grad[1, 0] == 0.0


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_loss_with_no_label_is_zero_not_nan(kind: str) -> None:
    output, target, _ = _tensors()
    loss = Task(kind, ("a", "b")).loss(output, target, torch.zeros(2, 2, dtype=torch.bool))
    assert loss.item() == 0.0


def test_regression_metrics_against_hand_values() -> None:
    # Target a: errors 0, -1, 1, -2 → MSE 6/4, MAE 4/4; mean 3 so SS_tot = 14, R² = 1 - 6/14;
    # ranks of the targets 1, 3, 2, 4 → Σd² = 2, Spearman = 1 - 6·2 / (4·15) = 0.8.
    # Target b: errors 1, 1, 1, 1 on targets 0, 1, 2, 3 → RMSE 1, MAE 1, R² = 1 - 4/5,
    # Spearman 1.
    pred = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]])
    target = torch.tensor([[1.0, 0.0], [3.0, 1.0], [2.0, 2.0], [6.0, 3.0]])
    mask = torch.ones(4, 2, dtype=torch.bool)
    metrics = Task("regression", ("a", "b")).metrics(pred, target, mask)
    expected = {
        "rmse/a": math.sqrt(1.5),
        "rmse/b": 1.0,
        "mae/a": 1.0,
        "mae/b": 1.0,
        "r2/a": 1 - 6 / 14,
        "r2/b": 1 - 4 / 5,
        "spearman/a": 0.8,
        "spearman/b": 1.0,
    }
    for name in ("rmse", "mae", "r2", "spearman"):
        expected[name] = (expected[f"{name}/a"] + expected[f"{name}/b"]) / 2
    assert metrics.keys() == expected.keys()
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-6), key


def test_regression_metrics_ignore_masked_entries() -> None:
    pred = torch.tensor([[1.0], [2.0], [3.0], [4.0], [1e6]])
    target = torch.tensor([[1.0], [3.0], [2.0], [6.0], [0.0]])
    mask = torch.tensor([[True], [True], [True], [True], [False]])
    metrics = Task("regression", ("a",)).metrics(pred, target, mask)
    assert metrics["rmse"] == pytest.approx(math.sqrt(1.5), rel=1e-9)
    assert metrics["mae"] == pytest.approx(1.0, rel=1e-9)


def test_classification_metrics_against_hand_values() -> None:
    # Task a separates the classes: ROC-AUC 1, average precision 1.
    # Task b, ranked by score: 0.8 (+), 0.4 (-), 0.35 (+), 0.1 (-). Of the 4 (+, -) pairs,
    # 3 are ordered right → ROC-AUC 0.75; precision at the positives 1/1 and 2/3 → AP 5/6.
    pred = torch.tensor([[0.1, 0.1], [0.2, 0.4], [0.8, 0.35], [0.9, 0.8]])
    target = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    mask = torch.ones(4, 2, dtype=torch.bool)
    metrics = Task("classification", ("a", "b")).metrics(pred, target, mask)
    expected = {
        "roc_auc/a": 1.0,
        "roc_auc/b": 0.75,
        "roc_auc": 0.875,
        "pr_auc/a": 1.0,
        "pr_auc/b": 5 / 6,
        "pr_auc": (1 + 5 / 6) / 2,
    }
    assert metrics.keys() == expected.keys()
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-6), key


def test_one_class_task_is_nan_and_left_out_of_the_mean() -> None:
    # Task b has only positives among its labelled entries (the negative one is masked).
    pred = torch.tensor([[0.1, 0.3], [0.2, 0.9], [0.8, 0.5], [0.9, 0.7]])
    target = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    mask = torch.tensor([[True, False], [True, True], [True, True], [True, True]])
    metrics = Task("classification", ("a", "b")).metrics(pred, target, mask)
    assert math.isnan(metrics["roc_auc/b"])
    assert math.isnan(metrics["pr_auc/b"])
    assert metrics["roc_auc"] == pytest.approx(1.0)
    assert metrics["pr_auc"] == pytest.approx(1.0)


@pytest.mark.filterwarnings("error")
def test_metrics_defined_for_no_target_are_nan() -> None:
    pred = torch.tensor([[0.1], [0.9]])
    target = torch.tensor([[1.0], [1.0]])
    metrics = Task("classification", ("a",)).metrics(pred, target, torch.ones(2, 1, dtype=bool))
    assert math.isnan(metrics["roc_auc"])
    one_label = torch.tensor([[True], [False]])
    regression = Task("regression", ("a",)).metrics(pred, target, one_label)
    assert all(math.isnan(v) for v in regression.values())


@pytest.mark.parametrize(
    ("kind", "monitor", "mode"),
    [("regression", "val/rmse", "min"), ("classification", "val/roc_auc", "max")],
)
def test_monitor_and_mode_follow_the_kind(kind: str, monitor: str, mode: str) -> None:
    task = Task(kind, ("a",))
    assert (task.monitor, task.mode) == (monitor, mode)
    # The monitored key is one the task's own metrics produce (logged as "val/<name>").
    pred = torch.tensor([[0.1], [0.9], [0.4]])
    target = torch.tensor([[0.0], [1.0], [1.0]])
    names = task.metrics(pred, target, torch.ones(3, 1, dtype=torch.bool))
    assert monitor.removeprefix("val/") in names


def test_activation_gives_probabilities_for_classification_only() -> None:
    output = torch.tensor([[-2.0, 0.0, 3.0]])
    torch.testing.assert_close(Task("classification", ("a",)).activation(output), output.sigmoid())
    assert torch.equal(Task("regression", ("a",)).activation(output), output)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="regression or classification"):
        Task("ranking", ("a",))  # type: ignore[arg-type]


def test_names_are_stored_as_a_tuple() -> None:
    assert Task("regression", ["a", "b"]).names == ("a", "b")  # type: ignore[arg-type]
