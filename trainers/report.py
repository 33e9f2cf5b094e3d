"""The evaluation protocol's written report: one JSON and one Markdown table for a
checkpoint evaluated on one or more named sets of shards."""
from __future__ import annotations

import math

COLUMNS = ("auc", "ap", "eer", "accuracy")


class BadSetSpec(ValueError):
    """A --set is not NAME=PATTERN, or two --set options give the same name."""


def parse_sets(specs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """'name=PATTERN' strings -> {name: pattern}, in the order given. Raises
    BadSetSpec on a repeated name or a spec without "="."""
    sets: dict[str, str] = {}
    for spec in specs:
        name, equals, pattern = spec.partition("=")
        if not equals or not name or name in sets:
            raise BadSetSpec(f"--set {spec!r}: give each set once, as NAME=PATTERN")
        sets[name] = pattern
    return sets


def selection_note(state: dict) -> str:
    """The line stating what model selection used, from a checkpoint's training config."""
    val = list(state.get("config", {}).get("val") or [])
    if not val:
        return "Model selection: none (the run had no --val shards; this is its last checkpoint's state)."
    return (f"Model selection used only the training run's --val shards ({', '.join(val)}); "
            "no set below took part in it.")


def _cell(value: float) -> str:
    return "n/a" if isinstance(value, float) and math.isnan(value) else f"{value:.4f}"


def markdown(checkpoint: str, sets: dict[str, dict], note: str, postprocess: str = "none") -> str:
    """A Markdown table: one row per set ('all') and per manipulation method, frame and
    video AUC / AP / EER / accuracy, sample and video counts; then the selection note."""
    header = (["set", "method"] + [f"frame {c}" for c in COLUMNS] + [f"video {c}" for c in COLUMNS]
              + ["samples", "videos"])
    lines = [f"# Evaluation of `{checkpoint}`", "", f"Post-processing: {postprocess}.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, report in sets.items():
        for method, metrics in [("all", report)] + list(report["per_method"].items()):
            cells = [name, method] + [_cell(metrics["frame"][c]) for c in COLUMNS] \
                + [_cell(metrics["video"][c]) for c in COLUMNS] \
                + [str(metrics["frame"]["count"]), str(metrics["video"]["count"])]
            lines.append("| " + " | ".join(cells) + " |")
    unread = [f"{name}: {r['unreadable_shard_count']} shard(s), {r['unreadable_sample_count']} sample(s)"
              for name, r in sets.items() if r["unreadable_shard_count"] or r["unreadable_sample_count"]]
    if unread:
        lines += ["", "Could not read (names in the JSON): " + "; ".join(unread) + "."]
    return "\n".join(lines + ["", note, ""])
